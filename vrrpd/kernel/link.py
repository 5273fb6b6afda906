"""Interface facts (index, MAC, addresses) and a netlink link-state watcher.

The lookups are synchronous and cheap: an ioctl or one RTM_GETADDR dump on a throw-away
netlink socket, so they can run at startup and inside the event loop alike (pyroute2's
synchronous ``IPRoute`` cannot run inside a running loop).  They act in the network namespace
of the calling thread.

:class:`LinkWatcher` listens to RTNLGRP_LINK notifications (RFC 3549 §3.1.1 RTM_NEWLINK /
RTM_DELLINK) on the daemon's loop: no polling.  It feeds the ``interface`` tracker and lets an
instance go to FAULT when its VRRP interface loses carrier.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_interface
from typing import Any, NamedTuple, Self

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.rtnl import (
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
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


def why_unusable(name: str, family: int, exclude: Iterable[IPAddress] = ()) -> str | None:
    """Why VRRP for IP version ``family`` cannot run on ``name`` now; None when it can.

    It can when the interface exists, is up with carrier, and has a source address for
    adverts other than the VIPs in ``exclude`` (:func:`source_address`).  An IPv6 link-local
    address is unusable while duplicate address detection runs (tentative, RFC 4862 §5.4), a
    second or two after the link comes up.
    """
    try:
        up = flags(name)
        infos = addresses(name, family)
    except OSError:
        return f"interface {name} does not exist"
    if not up & IFF_UP:
        return f"{name} is administratively down (`ip link set {name} up`)"
    if not up & IFF_RUNNING:
        return f"{name} has no carrier (cable, switch port or peer link down)"
    if source_address(infos, family, exclude) is not None:
        return None
    if family == 4:
        return f"{name} has no IPv4 address to send VRRP adverts from"
    link_locals = [i for i in infos if i.interface.ip.is_link_local]
    if any(i.flags & IFA_F_DADFAILED for i in link_locals):
        return (f"{name}'s IPv6 link-local address failed duplicate address detection "
                "(another host uses it)")
    if link_locals:
        return (f"{name}'s IPv6 link-local address is tentative (duplicate address detection "
                "is running)")
    return (f"{name} has no IPv6 link-local address of its own to send VRRP adverts from "
            "(RFC 5798 §5.1.2.1; a link-local VIP does not count)")


class LinkEvent(NamedTuple):
    """``(ifname, up)``: ``up`` is administratively up *and* carrier present."""

    ifname: str
    up: bool


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


class LinkWatcher(RtnlClient):
    """Reports interfaces going up or down from RTM_NEWLINK / RTM_DELLINK notifications.

    ``open()`` subscribes to RTMGRP_LINK and then dumps the current states, so nothing that
    happens in between is missed; :meth:`events` yields only changes of ``up``.  ``ifnames``
    limits the watcher to those interfaces (default: all).
    """

    def __init__(self, ifnames: Iterable[str] | None = None) -> None:
        super().__init__()
        self._names = frozenset(ifnames) if ifnames is not None else None
        self.states: dict[str, bool] = {}

    async def open(self) -> None:
        await super().open()
        await self.rtnl.bind(groups=RTMGRP_LINK)
        async for msg in await self.rtnl.link("dump"):
            event = self._event(msg)
            if event is not None:
                self.states[event.ifname] = event.up

    def _event(self, msg: Any) -> LinkEvent | None:
        name = msg.get("ifname")
        if name is None or (self._names is not None and name not in self._names):
            return None
        flags = msg["flags"]
        up = msg["header"]["type"] != RTM_DELLINK and bool(flags & IFF_UP and
                                                          flags & IFF_RUNNING)
        return LinkEvent(name, up)

    async def events(self) -> AsyncIterator[LinkEvent]:
        """Yield a :class:`LinkEvent` each time a watched interface changes state."""
        rtnl = self.rtnl
        while True:
            async for msg in rtnl.get():
                event = self._event(msg)
                if event is not None and self.states.get(event.ifname) != event.up:
                    self.states[event.ifname] = event.up
                    yield event
