"""One VRRP endpoint per (interface, address family): receive, check, decode, demultiplex.

The endpoint's socket is open only while the interface is usable for VRRP
(:func:`vrrpd.kernel.link.readiness`): the daemon starts in any network state, and its
instances wait in FAULT until :meth:`VrrpEndpoint.follow` is told the interface is usable.

All virtual routers on an interface share one raw socket; this module reads it, applies the
checks that need the IP header (TTL / hop limit = 255, RFC 5798 §7.1), decodes with the codec
and hands each well-formed advert to the driver of its VRID.  Everything dropped here is
counted by reason and logged, rate-limited.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from vrrpd.daemon.logs import RateLimitedLog
from vrrpd.kernel.link import Readiness
from vrrpd.proto.numbers import VRRP_TTL
from vrrpd.proto.packet import Advertisement, DecodeError, DropReason, IPAddress, decode

log = logging.getLogger("vrrpd.receiver")

NOT_LOOKED_AT = "not looked at yet"  # an endpoint's problem until the daemon first looks
READ_BATCH = 256  # packets per wake-up, so a flood cannot starve the timers
DRAIN_MAX = 8192  # packets read before a backup acts on silence: the whole receive buffer
DECODED_MAX = 1024  # decoded adverts kept, by (bytes, source, destination)


class Driver(Protocol):
    def on_advert(self, adv: Advertisement, source: IPAddress) -> None: ...


class RawSocket(Protocol):
    """:class:`vrrpd.kernel.vrrp_socket.VrrpSocket` as seen from here."""

    exclude: frozenset[IPAddress]  # never a source address (VIPs)
    ifindex: int

    @property
    def primary_address(self) -> IPAddress: ...

    def fileno(self) -> int: ...

    def refresh_addresses(self) -> None: ...

    def receive(self) -> Any: ...

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None: ...

    def close(self) -> None: ...


class VrrpEndpoint:
    """Reads a raw VRRP socket and dispatches adverts by VRID.

    ``open_socket(ifname, family, exclude)`` makes the socket when the interface becomes
    usable; ``exclude`` (set by the daemon: the VIPs) is never taken as the source address.
    """

    def __init__(self, ifname: str, family: int,
                 open_socket: Callable[[str, int, frozenset[IPAddress]], RawSocket],
                 group: IPAddress) -> None:
        self.ifname = ifname
        self.family = family
        self.group = group
        self.exclude: frozenset[IPAddress] = frozenset()
        self.sock: RawSocket | None = None
        self.problem: str | None = NOT_LOOKED_AT  # why VRRP cannot run here, or None
        self.drivers: dict[int, Driver] = {}
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self._open_socket = open_socket
        self._log = RateLimitedLog(log)
        self._loop = asyncio.get_running_loop()
        # A master sends the same bytes every interval: decode each distinct advert once.
        # Bounded, so random junk only makes it start over; failures are never kept.
        self._decoded: dict[tuple[bytes, IPAddress, IPAddress], Advertisement] = {}

    @property
    def primary_address(self) -> IPAddress | None:
        """The source of our adverts; None while the interface is not usable."""
        return self.sock.primary_address if self.sock is not None else None

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None:
        if self.sock is None:
            raise OSError(errno.ENETDOWN, f"{self.ifname}: {self.problem}")
        self.sock.send(payload, dst, src)

    def follow(self, state: Readiness) -> None:
        """Open, re-read or close the socket as the interface's state says.

        Opening can still fail (the interface vanished meanwhile): :attr:`problem` then says
        why, and the next change of the interface tries again.
        """
        self.problem = state.problem
        if state.problem is not None or (self.sock is not None
                                         and self.sock.ifindex != state.ifindex):
            self._close_socket()  # unusable, or deleted and re-created with a new index
        if state.problem is None:
            try:
                if self.sock is None:
                    self.sock = self._open_socket(self.ifname, self.family, self.exclude)
                    self._loop.add_reader(self.sock.fileno(), self._readable)
                else:
                    self.sock.exclude = self.exclude
                    self.sock.refresh_addresses()
            except OSError as exc:
                self._close_socket()
                self.problem = exc.strerror or str(exc)

    def _close_socket(self) -> None:
        if self.sock is not None:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _readable(self, batch: int = READ_BATCH) -> None:
        for _ in range(batch):
            if self.sock is None:
                return
            try:
                pkt = self.sock.receive()
            except OSError as exc:
                self._log.warning("recv", "[%s] receive error: %s", self.ifname, exc)
                return
            if pkt is None:
                return
            self.counters["packets"] += 1
            self._packet(pkt.payload, pkt.src, pkt.dst, pkt.ttl)

    def drain(self) -> None:
        """Read everything queued now (up to :data:`DRAIN_MAX`), before a deadline that acts on
        silence: an advert that arrived in time must count even if the loop was busy."""
        self._readable(DRAIN_MAX)

    def _packet(self, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int) -> None:
        if ttl != VRRP_TTL:
            self._drop(DropReason.TTL, src, f"TTL/hop limit {ttl}, must be 255 (sent from "
                       "another subnet, or by something that is not a VRRP router)")
            return
        key = (payload, src, dst)
        adv = self._decoded.get(key)
        if adv is None:
            try:
                adv = decode(payload, src, dst)
            except DecodeError as exc:
                self._drop(exc.reason, src, str(exc))
                return
            if len(self._decoded) >= DECODED_MAX:
                self._decoded.clear()
            self._decoded[key] = adv
        driver = self.drivers.get(adv.vrid)
        if driver is None:
            self._drop(DropReason.UNKNOWN_VRID, src,
                       f"VRID {adv.vrid} is not configured on this interface")
            return
        driver.on_advert(adv, src)

    def _drop(self, reason: DropReason, src: IPAddress, detail: str) -> None:
        self.drops[reason.value] += 1
        self._log.warning(reason.value, "[%s IPv%d] dropped packet from %s: %s", self.ifname,
                          self.family, src, detail)

    def status(self) -> dict[str, Any]:
        counters = dict(self.counters)
        own = getattr(self.sock, "own_source_dropped", 0)
        if own:
            counters["own_source"] = own  # our own adverts looped back by another path
        source = self.primary_address
        return {"interface": self.ifname, "family": self.family,
                "primary_address": str(source) if source else None, "problem": self.problem,
                "vrids": sorted(self.drivers),
                "counters": counters, "dropped": dict(self.drops)}

    def close(self) -> None:
        self._close_socket()
