"""The virtual router MAC (``virtual_mac: true``): one macvlan link per instance.

RFC 5798 §7.3 (RFC 3768 §7.3 for VRRPv2): the master sends its adverts from the virtual router
MAC 00-00-5E-00-01-{VRID} (IPv4) / 00-00-5E-00-02-{VRID} (IPv6) and answers ARP / Neighbor
Solicitations for the VIPs with it (§8.1.2), so hosts keep the same neighbour entry through a
failover and need no gratuitous ARP to follow it.  Linux gives an interface one MAC, so each
such instance gets a macvlan link (bridge mode) on its interface carrying the virtual MAC:

* name ``vrrp4-<ifindex>-<vrid>`` / ``vrrp6-...`` (at most 15 characters, IFNAMSIZ; when the
  interface index is too long for that, ``vr4.<ifindex hex>.<vrid hex>``), marked as vrrpd's
  by its alias ``vrrpd <interface> vrid <vrid> ipv<family>``.  A link of that name without that
  alias is not vrrpd's: the instance refuses to start.  Links vrrpd did not create are never
  changed or deleted.
* administratively **down** except while MASTER, so a backup never sends from (or answers
  for) the shared MAC: :meth:`VirtualMac.up` before the VIPs are added, :meth:`VirtualMac.down`
  after they are removed.  It is made at start when the interface exists, else (and again
  after the interface was re-created) just before the instance takes over
  (:meth:`VirtualMac.ensure`).  The link is deleted when the instance goes away; on start, a
  link left by a crash is adopted (same name and alias) and links of instances no longer
  configured are deleted (:meth:`VirtualMacs.remove_stale`).
* sysctls, so that only the master answers, and only with the virtual MAC: on the
  *interface*, ``arp_ignore=1`` (answer ARP only for addresses on the receiving interface: the
  VIPs live on the macvlan) and ``arp_announce=2`` (ARP requests it sends carry its own
  address, never a VIP, which would point hosts back at the physical MAC); on the macvlan the
  same two, ``rp_filter=2`` (loose: client traffic arrives on the macvlan but the route back
  is via the interface) and for IPv6 ``addr_gen_mode=1`` with ``accept_ra=0`` (no link-local
  of its own: the virtual MAC would give both routers the same EUI-64 address), for IPv4
  ``disable_ipv6=1``.  IPv6 needs nothing on the interface: Linux answers a Neighbor
  Solicitation only for addresses on the interface it arrived on.

Adverts leave through the macvlan from the interface's own address (RFC 5798 §5.1.1.1 /
§5.1.2.1; the IPv6 socket sets IPV6_FREEBIND because that link-local is not on the macvlan).
Unicast adverts (``unicast_peers``) leave through the interface itself, from its own MAC
(keepalived's ``vmac_xmit_base``): sent from the macvlan they would make the peer resolve and
cache our source address at the virtual MAC, which the next backup does not answer.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2.iproute.linux import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vrrpd.kernel import link
from vrrpd.kernel.announcer import Announcer
from vrrpd.kernel.link import RtnlClient
from vrrpd.kernel.vrrp_socket import IP_PKTINFO
from vrrpd.proto.announce import virtual_router_mac
from vrrpd.proto.numbers import IPPROTO_VRRP, VRRP_TTL

log = logging.getLogger("vrrpd.kernel.vmac")

IPAddress = IPv4Address | IPv6Address
IFNAMSIZ = 15  # usable characters of an interface name
ARPHRD_ETHER = 1
IFF_LOOPBACK = 0x8
IPV6_FREEBIND = 78  # <linux/in6.h>
ALIAS_PREFIX = "vrrpd "
INTERFACE_SYSCTLS = {"ipv4/conf/{}/arp_ignore": 1, "ipv4/conf/{}/arp_announce": 2}
LINK_SYSCTLS = {4: {**INTERFACE_SYSCTLS, "ipv4/conf/{}/rp_filter": 2,
                    "ipv6/conf/{}/disable_ipv6": 1},
                6: {**INTERFACE_SYSCTLS, "ipv4/conf/{}/rp_filter": 2,
                    "ipv6/conf/{}/addr_gen_mode": 1, "ipv6/conf/{}/accept_ra": 0}}


def link_name(ifindex: int, family: int, vrid: int) -> str:
    """``vrrp4-<ifindex>-<vrid>``, or ``vr4.<ifindex hex>.<vrid hex>`` past 15 characters."""
    name = f"vrrp{family}-{ifindex}-{vrid}"
    return name if len(name) <= IFNAMSIZ else f"vr{family}.{ifindex:x}.{vrid:x}"


def alias(interface: str, family: int, vrid: int) -> str:
    """The IFLA_IFALIAS that marks a link as this instance's."""
    return f"{ALIAS_PREFIX}{interface} vrid {vrid} ipv{family}"


def problem(interface: str, family: int, vrid: int) -> str | None:
    """Why ``interface`` cannot carry this instance's macvlan now; None when it can (or when
    the interface does not exist yet: that is the instance's FAULT, not a configuration
    mistake)."""
    found = {info.name: info for info in link.links()}
    parent = found.get(interface)
    if parent is None:
        return None
    if parent.arphrd != ARPHRD_ETHER or parent.flags & IFF_LOOPBACK:
        return (f"{interface} is not an Ethernet interface (ARPHRD {parent.arphrd}), so it "
                "cannot host the macvlan link that carries the virtual MAC")
    name = link_name(parent.index, family, vrid)
    other = found.get(name)
    if other is not None and other.alias != alias(interface, family, vrid):
        return (f"the virtual MAC link name {name} is taken by an interface vrrpd did not "
                f"create (alias {other.alias!r}); rename or remove it, vrrpd never touches it")
    return None


class VirtualMac:
    """One instance's macvlan link, its advert socket and its announcer.

    ``source`` returns the interface's own advert source (primary IPv4 / link-local), read at
    each send: it may change when the link comes back.
    """

    def __init__(self, rtnl: AsyncIPRoute, interface: str, family: int, vrid: int,
                 source: Callable[[], IPAddress]) -> None:
        self.rtnl = rtnl
        self.interface = interface
        self.family = family
        self.vrid = vrid
        self.mac = virtual_router_mac(family, vrid)
        self.name = ""  # known once the interface exists (it holds the interface's index)
        self.index = 0
        self.announcer: Announcer | None = None
        self._source = source
        self._sock: socket.socket | None = None

    async def open(self) -> None:
        """At start: make the link now when the interface exists, so that a problem is refused
        at once; otherwise the instance waits in FAULT and :meth:`ensure` makes the link when
        it first takes over."""
        if link.exists(self.interface):
            await self.ensure()

    async def ensure(self) -> None:
        """Make sure the link exists: create it (or adopt the one a crashed run left), down,
        with its sysctls, socket and announcer.  Cheap when it is there already; after the
        interface was re-created (the kernel deletes a macvlan with its parent) it makes the
        link again.  OSError when the interface does not exist or cannot carry the link."""
        name = link_name(link.ifindex(self.interface), self.family, self.vrid)
        if self.index and name == self.name and link.exists(name) \
                and link.ifindex(name) == self.index:
            return
        why = problem(self.interface, self.family, self.vrid)
        if why is not None:
            raise OSError(errno.EINVAL, why)
        self._close_sockets()
        self.name = name
        if link.exists(name):
            log.warning("[%s] adopting %s, left by an earlier run", self.interface, name)
        else:
            await self.rtnl.link("add", ifname=name, kind="macvlan",
                                 link=link.ifindex(self.interface), macvlan_mode="bridge",
                                 address=self.mac.hex(":"))
        self.index = link.ifindex(name)
        await self.rtnl.link("set", index=self.index, state="down",
                             ifalias=alias(self.interface, self.family, self.vrid))
        for template, value in INTERFACE_SYSCTLS.items():
            link.set_sysctl(template, self.interface, value)
        for template, value in LINK_SYSCTLS[self.family].items():
            link.set_sysctl(template, name, value)
        self._sock = self._open_socket()
        self.announcer = Announcer(name)
        self.announcer.refresh_addresses()  # binds to the link we just made, reads its MAC

    async def send_burst(self, vips: Iterable[Any], count: int, interval: float, *,
                         na_source: IPv6Address | None = None, na_router: bool = True) -> None:
        """Gratuitous ARPs / NAs from the virtual MAC (the announcer of the current link)."""
        if self.announcer is None:
            raise OSError(f"{self.interface}: the virtual MAC link does not exist yet")
        await self.announcer.send_burst(vips, count, interval, na_source=na_source,
                                        na_router=na_router)

    def _open_socket(self) -> socket.socket:
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.name.encode())
        if self.family == 4:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        # Send only (adverts are received on the interface): the smallest receive buffer.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
        sock.setblocking(False)
        return sock

    async def up(self) -> None:
        await self.rtnl.link("set", index=self.index, state="up")

    async def down(self) -> None:
        await self.rtnl.link("set", index=self.index, state="down")

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None:
        """Send one advert to the VRRP group from the virtual MAC and ``src`` (the instance's
        ``src_ip``) or our own address."""
        assert self._sock is not None
        src = src or self._source()
        if self.family == 4:
            pktinfo = struct.pack("@i4s4s", self.index, src.packed, bytes(4))
            self._sock.sendmsg([payload], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0,
                               (str(dst), 0))
        else:
            pktinfo = src.packed + struct.pack("@I", self.index)
            self._sock.sendmsg([payload], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                               0, (str(dst), 0, 0, self.index))

    def _close_sockets(self) -> None:
        if self.announcer is not None:
            self.announcer.close()
            self.announcer = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def close(self) -> None:
        """Delete the link (its VIPs go with it) and close the sockets."""
        self._close_sockets()
        if self.index:
            try:
                await self.rtnl.link("del", index=self.index)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise
            self.index = 0


class VirtualMacs:
    """Makes the instances' :class:`VirtualMac` links over the daemon's netlink socket (that
    of the address manager, opened first)."""

    def __init__(self, client: RtnlClient) -> None:
        self._client = client

    def create(self, interface: str, family: int, vrid: int,
               source: Callable[[], IPAddress]) -> VirtualMac:
        return VirtualMac(self._client.rtnl, interface, family, vrid, source)

    async def remove_stale(self, wanted: Iterable[str]) -> list[str]:
        """Delete the links vrrpd created (by alias) that no configured instance wants."""
        keep = set(wanted)
        stale = [info for info in link.links()
                 if info.alias.startswith(ALIAS_PREFIX) and info.kind == "macvlan"
                 and info.name not in keep]
        for info in stale:
            await self._client.rtnl.link("del", index=info.index)
        return [info.name for info in stale]
