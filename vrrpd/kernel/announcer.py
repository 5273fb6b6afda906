"""Sends gratuitous ARPs / unsolicited NAs for the VIPs on an AF_PACKET socket.

RFC 5798 §6.4.1 / §6.4.2: when a router becomes Master it announces every virtual address so
that hosts and switches update their ARP / neighbor caches and forwarding tables at once.  One
frame can be lost, so the daemon sends ``count`` of each, ``interval`` seconds apart (and a
second burst later, see :class:`vrrpd.config.model.AnnounceConfig`).  The frames themselves are
built sans I/O in :mod:`vrrpd.proto.announce`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface

from vrrpd.kernel import link
from vrrpd.proto.announce import gratuitous_arp, unsolicited_na

log = logging.getLogger("vrrpd.kernel.announcer")

IPInterface = IPv4Interface | IPv6Interface


class Announcer:
    """Announces VIPs on ``ifname`` with that interface's MAC address (the interface's own, or
    the virtual router MAC when ``ifname`` is an instance's macvlan link).

    Creating it touches nothing: the interface may not exist yet.  :meth:`refresh_addresses`
    (the daemon calls it whenever the interface becomes usable) binds the packet socket and
    reads the MAC, in the calling thread's network namespace.  The IPv6 source of NAs is the
    caller's: the same link-local address its adverts come from
    (:mod:`vrrpd.kernel.vrrp_socket`).
    """

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.mac: bytes | None = None
        self._sock: socket.socket | None = None
        self._index: int | None = None

    def refresh_addresses(self) -> None:
        """(Re)bind to the interface if it is new (or re-created), re-read its MAC."""
        index = link.ifindex(self.ifname)
        if index != self._index:
            self.close()
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # send only
            try:
                sock.bind((self.ifname, 0))
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"cannot bind a packet socket to {self.ifname}: "
                                         f"{exc.strerror}") from None
            sock.setblocking(False)
            self._sock, self._index = sock, index
        self.mac = link.mac(self.ifname)

    def frames(self, vips: Iterable[IPInterface], na_source: IPv6Address | None = None,
               na_router: bool = True) -> list[bytes]:
        """One announcement frame per VIP; IPv6 ones need ``na_source`` (a link-local)."""
        if self.mac is None:
            raise OSError(f"{self.ifname} has not been usable yet: nothing to announce from")
        frames: list[bytes] = []
        for vip in vips:
            if isinstance(vip, IPv4Interface):
                frames.append(gratuitous_arp(self.mac, vip.ip))
            elif na_source is None:
                raise OSError(f"{self.ifname}: no IPv6 link-local source address to send "
                              f"neighbor advertisements from")
            else:
                frames.append(unsolicited_na(self.mac, na_source, vip.ip, router=na_router))
        return frames

    async def send_burst(self, vips: Iterable[IPInterface], count: int, interval: float, *,
                         na_source: IPv6Address | None = None, na_router: bool = True) -> None:
        """Send ``count`` rounds of announcements ``interval`` s apart, the first at once."""
        frames = self.frames(vips, na_source, na_router)
        assert self._sock is not None  # bound together with self.mac
        for round_number in range(count):
            if round_number:
                await asyncio.sleep(interval)
            for frame in frames:
                try:
                    self._sock.send(frame)
                except BlockingIOError:  # full transmit queue: a later round will repeat it
                    log.warning("[%s] announcement frame dropped: transmit queue full",
                                self.ifname)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock, self._index = None, None
