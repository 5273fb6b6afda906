"""Interface facts (index, MAC, addresses) and a netlink link-state watcher.

The lookups are synchronous and cheap: an ioctl or one RTM_GETADDR dump on a throw-away
netlink socket, so they can run at startup and inside the event loop alike (pyroute2's
synchronous ``IPRoute`` cannot run inside a running loop).  They act in the network namespace
of the calling thread.

:class:`InterfaceWatcher` listens to link and address notifications (RFC 3549 §3.1.1
RTM_NEWLINK / RTM_DELLINK, RTM_NEWADDR / RTM_DELADDR) on the daemon's loop, no polling, and says
when VRRP can run on an interface (:func:`readiness`): an instance waits in FAULT while its
interface is missing, down, without its source address or still running DAD.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
    ip_interface,
)
from pathlib import Path
from typing import Any, NamedTuple, Self

from pyroute2.iproute.linux import AsyncIPRoute
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
IFF_RUNNING = 0x40  # operationally up (RFC 2863 ifOperStatus up), i.e. carrier present
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
NO_SOURCE = {  # what is missing, and what to do about it
    4: "{ifname} has no primary IPv4 address of its own to send VRRP adverts from (RFC 5798 "
       "§5.1.1.1; a VIP does not count): add one",
    6: "{ifname} has no usable IPv6 link-local address of its own to send VRRP adverts from "
       "(RFC 5798 §5.1.2.1; a link-local VIP does not count): `ip -6 addr show dev {ifname}` "
       "must list a fe80:: address that is not tentative; check "
       "net.ipv6.conf.{ifname}.disable_ipv6 = 0 and addr_gen_mode",
}


@dataclass(frozen=True, slots=True)
class AddressInfo:
    """One address as the kernel reports it (``ifaddrmsg`` + IFA_FLAGS)."""

    interface: IPInterface
    flags: int

    @property
    def usable(self) -> bool:
        """Neither tentative nor failed duplicate address detection (RFC 4862 §5.4)."""
        return not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)


def ifindex(name: str) -> int:
    """The interface index of ``name``; OSError naming the interface if there is none."""
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise OSError(exc.errno, f"no interface {name!r} in this network namespace") from None


def exists(name: str) -> bool:
    """Whether there is an interface ``name`` in this network namespace."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def mac(name: str) -> bytes:
    """The interface's 6-byte hardware address (SIOCGIFHWADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            ifreq = fcntl.ioctl(sock, SIOCGIFHWADDR, struct.pack("16s16x", name.encode()))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot read the MAC address of {name!r}: "
                                     f"{exc.strerror}") from None
    return ifreq[18:24]


def flags(name: str) -> int:
    """The interface's IFF_* flags (SIOCGIFFLAGS); OSError when it does not exist."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16s16x", name.encode()))
    return int(struct.unpack_from("H", ifreq, 16)[0])


def _dump(request: ifaddrmsg | ifinfmsg, kind: int) -> Iterator[Any]:
    """The messages of type ``kind`` that one netlink dump ``request`` returns."""
    request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
    request["header"]["sequence_number"] = 1
    request.encode()
    marshal = MarshalRtnl()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.sendall(request.data)
        while True:
            for msg in marshal.parse(sock.recv(65536)):
                if msg["header"]["type"] == NLMSG_DONE:
                    return
                if msg["header"]["type"] == NLMSG_ERROR:
                    raise OSError(-msg["header"]["error"].code, "netlink dump failed")
                if msg["header"]["type"] == kind:
                    yield msg


def addresses(name: str, family: int | None = None) -> list[AddressInfo]:
    """The addresses on ``name`` in kernel order (IPv4 primaries before secondaries).

    ``family`` is 4, 6 or None for both.  One RTM_GETADDR dump on a private netlink socket.
    """
    index = ifindex(name)
    request = ifaddrmsg()
    request["family"] = {4: socket.AF_INET, 6: socket.AF_INET6, None: socket.AF_UNSPEC}[family]
    request["header"]["type"] = RTM_GETADDR
    return [address_info(msg) for msg in _dump(request, RTM_NEWADDR) if msg["index"] == index]


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One interface as RTM_GETLINK reports it (what :mod:`vrrpd.kernel.vmac` checks)."""

    name: str
    index: int
    arphrd: int  # ARPHRD_* hardware type, 1 = Ethernet
    flags: int
    kind: str | None  # IFLA_INFO_KIND: "macvlan", "veth", ...; None for plain devices
    parent: int  # IFLA_LINK: the lower device's index (0 if none)
    mac: bytes
    alias: str  # IFLA_IFALIAS


def links() -> list[LinkInfo]:
    """Every interface of this network namespace (one RTM_GETLINK dump)."""
    request = ifinfmsg()
    request["family"] = socket.AF_UNSPEC
    request["header"]["type"] = RTM_GETLINK
    found = []
    for msg in _dump(request, RTM_NEWLINK):
        info = msg.get_attr("IFLA_LINKINFO")
        address = msg.get_attr("IFLA_ADDRESS") or ""
        found.append(LinkInfo(
            name=msg.get_attr("IFLA_IFNAME"), index=msg["index"], arphrd=msg["ifi_type"],
            flags=msg["flags"], kind=info.get_attr("IFLA_INFO_KIND") if info else None,
            parent=msg.get_attr("IFLA_LINK") or 0,
            mac=bytes.fromhex(address.replace(":", "")) if len(address) == 17 else b"",
            alias=msg.get_attr("IFLA_IFALIAS") or ""))
    return found


def address_info(msg: ifaddrmsg) -> AddressInfo:
    """Convert an RTM_NEWADDR message (from a dump or from pyroute2) to :class:`AddressInfo`."""
    return AddressInfo(ip_interface(f"{msg.get('address')}/{msg['prefixlen']}"),
                       msg.get("flags"))


def source_address(infos: Iterable[AddressInfo], family: int,
                   exclude: Iterable[IPAddress] = ()) -> IPAddress | None:
    """Pick the VRRP source address from an interface's ``infos`` (kernel order).

    IPv4, RFC 5798 §5.1.1.1 / RFC 3768 §5.2.1: "the primary IPv4 address of the interface the
    packet is being sent from", i.e. the first address that is not secondary.  IPv6, RFC 5798
    §5.1.2.1: "the IPv6 link-local address of the interface", here the first usable one.
    Addresses in ``exclude`` are never picked: the VIPs, which are not the interface's own and
    may be there only for a while (or left by a crash, RFC 5798 §5.2.9 makes the first IPv6
    VIP a link-local one).
    """
    skip = frozenset(exclude)
    for info in infos:
        ip = info.interface.ip
        if ip in skip:
            continue
        if family == 4 and isinstance(ip, IPv4Address) and not info.flags & IFA_F_SECONDARY:
            return ip
        if family == 6 and isinstance(ip, IPv6Address) and ip.is_link_local and info.usable:
            return ip
    return None


class Readiness(NamedTuple):
    """Whether VRRP for IP version ``family`` can run on ``ifname``.

    ``problem`` is None when it can, else why not, for the operator; ``source`` is the address
    adverts go out from (:func:`source_address`), ``ifindex`` the interface index (a deleted and
    re-created interface gets a new one, and sockets bound to the old one must be reopened).
    """

    ifname: str
    family: int
    problem: str | None
    source: IPAddress | None = None
    ifindex: int | None = None


def readiness(name: str, family: int, exclude: Iterable[IPAddress] = ()) -> Readiness:
    """Can VRRP for ``family`` run on ``name`` now?

    It can when the interface exists, is up with carrier, and has a source address for
    adverts other than the VIPs in ``exclude`` (:func:`source_address`).  An IPv6 link-local
    address is unusable while duplicate address detection runs (tentative, RFC 4862 §5.4), a
    second or two after the link comes up.
    """
    try:
        index, iff, infos = ifindex(name), flags(name), addresses(name, family)
    except OSError:
        return Readiness(name, family, f"interface {name} does not exist")
    source = source_address(infos, family, exclude)
    link_locals = [i for i in infos if i.interface.ip.is_link_local and i.interface.ip
                   not in exclude]
    if not iff & IFF_UP:
        problem: str | None = f"{name} is administratively down (`ip link set {name} up`)"
    elif not iff & IFF_RUNNING:
        problem = f"{name} has no carrier (cable, switch port or peer link down)"
    elif source is not None:
        problem = None
    elif family == 6 and any(i.flags & IFA_F_DADFAILED for i in link_locals):
        problem = (f"{name}'s IPv6 link-local address failed duplicate address detection "
                   "(another host uses it)")
    elif family == 6 and link_locals:
        problem = (f"{name}'s IPv6 link-local address is tentative (duplicate address "
                   "detection is running)")
    else:
        problem = NO_SOURCE[family].format(ifname=name)
    return Readiness(name, family, problem, source if problem is None else None, index)


def sysctl_path(template: str, ifname: str) -> Path:
    """``/proc/sys/net/<template with ifname>``, e.g. ``ipv4/conf/{}/arp_ignore``."""
    return Path("/proc/sys/net", template.format(ifname))


def set_sysctl(template: str, ifname: str, value: int) -> None:
    sysctl_path(template, ifname).write_text(f"{value}\n")


class RtnlClient:
    """Owns one long-lived :class:`AsyncIPRoute` on the daemon's loop: ``open()`` /
    ``close()`` or ``async with``."""

    def __init__(self) -> None:
        self._ipr: AsyncIPRoute | None = None

    async def open(self) -> None:
        self._ipr = AsyncIPRoute()

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def rtnl(self) -> AsyncIPRoute:
        if self._ipr is None:
            raise RuntimeError(f"{type(self).__name__}.open() was not called")
        return self._ipr


class InterfaceWatcher(RtnlClient):
    """Follows :func:`readiness` of watched (interface, family) pairs from rtnetlink events.

    ``open()`` subscribes to link and IPv4/IPv6 address notifications; :meth:`watch` then reads
    a pair's state, so nothing that happens in between is missed.  After each batch of
    notifications about a watched interface :meth:`events` re-reads its pairs and yields the
    ones that changed.  DAD completing is an RTM_NEWADDR that clears IFA_F_TENTATIVE, so a
    waiting IPv6 instance joins as soon as its link-local address is usable.
    """

    GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[tuple[str, int], Readiness] = {}
        self._exclude: dict[tuple[str, int], frozenset[IPAddress]] = {}

    async def open(self) -> None:
        await super().open()
        await self.rtnl.bind(groups=self.GROUPS)

    def watch(self, ifname: str, family: int, exclude: frozenset[IPAddress]) -> Readiness:
        """Follow ``ifname`` for ``family`` (never picking a source in ``exclude``, the VIPs)
        from now on; its state now.  Watching a pair again updates ``exclude``."""
        self._exclude[(ifname, family)] = exclude
        state = self.states[(ifname, family)] = readiness(ifname, family, exclude)
        return state

    def _concerns(self, msg: Any) -> set[tuple[str, int]]:
        """The watched pairs a notification is about (addresses name only the index).

        A link change concerns both families of the interface, an address change only its
        family, and never when the address is one of the pair's ``exclude`` (a VIP): those
        cannot change :func:`readiness`, and a master of 255 instances adds or removes 255 of
        them at once; re-reading the interface for each would stall the daemon in a flap.
        """
        kind = msg["header"]["type"]
        if kind in (RTM_NEWADDR, RTM_DELADDR):
            family = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(msg["family"])
            address = msg.get("address")
            return {key for key, state in self.states.items()
                    if key[1] == family and state.ifindex == msg["index"]
                    and (address is None or ip_address(address) not in self._exclude[key])}
        names = {name for name, _ in self.states}
        name = msg.get("ifname") if msg.get("ifname") in names else next(
            (s.ifname for s in self.states.values() if s.ifindex == msg.get("index")), None)
        return {key for key in self.states if key[0] == name}

    async def events(self) -> AsyncIterator[Readiness]:
        """Yield the new :class:`Readiness` of a watched pair each time it changes."""
        rtnl = self.rtnl
        while True:
            touched: set[tuple[str, int]] = set()
            async for msg in rtnl.get():
                touched |= self._concerns(msg)
            for key, old in list(self.states.items()):
                if key not in touched:
                    continue
                # a netlink dump on a socket of its own: off the loop, like any blocking
                # call (the worker thread shares the daemon's network namespace)
                new = await asyncio.to_thread(readiness, *key, self._exclude[key])
                if new != old:
                    self.states[key] = new
                    yield new
