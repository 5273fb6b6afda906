"""Raw IP protocol 112 sockets: one per (interface, address family), shared by all instances.

The daemon demultiplexes by VRID (:mod:`vrrpd.daemon.receiver`).  This module only moves bytes
and reports what the codec cannot see: source, destination and TTL / hop limit.

RFC 5798 §5.1.1 (IPv4) / §5.1.2 (IPv6): adverts go to 224.0.0.18 / ff02::12 with TTL / hop
limit 255, from the interface's primary IPv4 address / IPv6 link-local address.  §7.1 says to
drop what arrives with any other TTL; the caller does that with :attr:`ReceivedPacket.ttl`.

Receiving: an IPv4 raw socket hands us the IP header, which we parse and strip (RFC 791 §3.1);
an IPv6 raw socket never does (RFC 3542 §3), so the hop limit and destination come as
ancillary data (IPV6_HOPLIMIT, IPV6_PKTINFO).

Sending: the source address is forced per packet with IP_PKTINFO / IPV6_PKTINFO (RFC 3542
§6.1) rather than ``bind()``, because a raw socket bound to an address only receives packets
*to* that address, which would lose unicast adverts sent to another of our addresses.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from vrrpd.kernel import link
from vrrpd.proto.numbers import IPPROTO_VRRP, VRRP_GROUP, VRRP_TTL

log = logging.getLogger("vrrpd.kernel.socket")

IPAddress = IPv4Address | IPv6Address

RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes: some 5,000 queued adverts
SO_RCVBUFFORCE = 33  # Linux socket(7); not in Python's socket module
IP_PKTINFO = 8  # <linux/in.h>; missing from Python's socket module
RECV_BUFFER = 2048  # a VRRP message is at most 8 + 255 * 16 + 8 bytes only in theory;
#                     real ones (a handful of VIPs) are far below an Ethernet MTU
_CMSG_SPACE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20)
KNOWN_MAX = 1024  # addresses (and send arguments) kept parsed; more start the table over


@dataclass(frozen=True, slots=True)
class ReceivedPacket:
    """One VRRP message (the IP payload) with the IP facts the codec needs.

    ``ttl`` is the IPv4 TTL or the IPv6 hop limit, as received.
    """

    payload: bytes
    src: IPAddress
    dst: IPAddress
    ttl: int


class VrrpSocket:
    """A non-blocking raw VRRP socket on ``ifname`` for IP version ``family`` (4 or 6).

    ``exclude``: addresses never used as the source (the non-owners' VIPs on this interface,
    see :func:`vrrpd.kernel.link.source_address`); the attribute may be replaced later.
    """

    def __init__(self, ifname: str, family: int, exclude: Iterable[IPAddress] = ()) -> None:
        if family not in VRRP_GROUP:
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        self.ifname = ifname
        self.family = family
        self.exclude = frozenset(exclude)
        self.ifindex = link.ifindex(ifname)
        self.own_source_dropped = 0  # packets from one of our own addresses, see receive()
        self._own: frozenset[IPAddress] = frozenset()
        self._primary: IPAddress | None = None
        # The same few peers send every interval: parse their addresses, and build the
        # arguments of our own sends, once (bounded, so spoofed sources cannot grow them).
        self._known: dict[bytes | str, IPAddress] = {}
        self._send_args: dict[tuple[IPAddress, IPAddress], tuple[list[tuple[int, int, bytes]],
                                                                  tuple[Any, ...]]] = {}
        self.refresh_addresses()
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self._sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            self._configure()
        except OSError as exc:
            self._sock.close()
            raise OSError(exc.errno, f"cannot set up the IPv{family} VRRP socket on "
                                     f"{ifname}: {exc.strerror}") from None

    def _configure(self) -> None:
        sock, index = self._sock, self.ifindex
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
        # A deep receive queue, so a burst of junk (a flood from the LAN, a stalled loop)
        # does not crowd the peer's adverts out of the buffer.  FORCE needs CAP_NET_ADMIN
        # (the daemon has it); without, the kernel caps SO_RCVBUF at net.core.rmem_max.
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        if self.family == 4:
            group = VRRP_GROUP[4].packed
            mreqn = group + bytes(4) + struct.pack("@i", index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            bytes(4) + self.primary_address.packed + struct.pack("@i", index))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        else:
            mreq = VRRP_GROUP[6].packed + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.setblocking(False)

    def refresh_addresses(self) -> None:
        """Re-read the interface's addresses: the send source and the own-address filter.

        Raises OSError when the interface has no primary IPv4 / usable link-local address
        of its own (a VIP does not count).
        """
        infos = link.addresses(self.ifname, self.family)
        self._own = frozenset(info.interface.ip for info in infos)
        primary = link.source_address(infos, self.family, self.exclude)
        if primary is None:
            raise OSError(link.NO_SOURCE[self.family].format(ifname=self.ifname))
        self._primary = primary

    @property
    def primary_address(self) -> IPAddress:
        """The source of our adverts: primary IPv4 or IPv6 link-local address."""
        assert self._primary is not None  # set by refresh_addresses() in __init__
        return self._primary

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self) -> ReceivedPacket | None:
        """Read one packet; None when there is nothing (more) to read.

        Packets whose source is one of this host's addresses on the interface are dropped,
        counted in :attr:`own_source_dropped` and logged: they are our own adverts coming
        back (a looping switch, a second local socket), never a peer.
        """
        while True:
            try:
                packet = self._receive_one()
            except BlockingIOError:
                return None
            if packet.src not in self._own:
                return packet
            self.own_source_dropped += 1
            log.debug("[%s] dropped VRRP packet from own address %s", self.ifname, packet.src)

    def _receive_one(self) -> ReceivedPacket:
        if self.family == 4:
            data, (src, _port) = self._sock.recvfrom(RECV_BUFFER)
            ihl = (data[0] & 0x0F) * 4
            return ReceivedPacket(payload=data[ihl:], src=self._address(data[12:16]),
                                  dst=self._address(data[16:20]), ttl=data[8])
        data, ancillary, _flags, address = self._sock.recvmsg(RECV_BUFFER, _CMSG_SPACE)
        ttl, dst = -1, VRRP_GROUP[6]
        for level, kind, value in ancillary:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                ttl = struct.unpack("@i", value[:4])[0]
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                dst = self._address(value[:16])
        src = self._address(address[0])
        return ReceivedPacket(payload=data, src=src, dst=dst, ttl=ttl)

    def _address(self, raw: bytes | str) -> IPAddress:
        """``raw`` (4 or 16 bytes, or the text recvmsg gives, ``fe80::1%eth0``) parsed once."""
        address = self._known.get(raw)
        if address is None:
            if len(self._known) >= KNOWN_MAX:
                self._known.clear()
            address = self._known[raw] = ip_address(
                raw.split("%", 1)[0] if isinstance(raw, str) else raw)
        return address

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None:
        """Send one VRRP message to the group or a unicast peer, from ``src`` (an address of
        this host, the instance's ``src_ip``) or else :attr:`primary_address`."""
        src = src or self.primary_address
        args = self._send_args.get((src, dst))
        if args is None:
            if len(self._send_args) >= KNOWN_MAX:
                self._send_args.clear()
            args = self._send_args[(src, dst)] = self._sendmsg_args(src, dst)
        ancillary, address = args
        self._sock.sendmsg([payload], ancillary, 0, address)

    def _sendmsg_args(self, src: IPAddress, dst: IPAddress
                      ) -> tuple[list[tuple[int, int, bytes]], tuple[Any, ...]]:
        """The ancillary data (source address, RFC 3542 §6.1) and destination of a send."""
        if self.family == 4:
            pktinfo = struct.pack("@i4s4s", self.ifindex, src.packed, bytes(4))
            return [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], (str(dst), 0)
        pktinfo = src.packed + struct.pack("@I", self.ifindex)
        return ([(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                (str(dst), 0, 0, self.ifindex))

    def close(self) -> None:
        self._sock.close()
