"""One VRRP endpoint per (interface, address family): receive, check, decode, demultiplex.

All virtual routers on an interface share one raw socket; this module reads it, applies the
checks that need the IP header (TTL / hop limit = 255, RFC 5798 §7.1), decodes with the codec
and hands each well-formed advert to the driver of its VRID.  Everything dropped here is
counted by reason and logged, rate-limited.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Protocol

from vrrpd.daemon.logs import RateLimitedLog
from vrrpd.proto.packet import Advertisement, DecodeError, DropReason, IPAddress, decode

log = logging.getLogger("vrrpd.receiver")

READ_BATCH = 256  # packets per wake-up, so a flood cannot starve the timers
VRRP_TTL = 255  # RFC 5798 §5.1.1.3 / §5.1.2.3


class Driver(Protocol):
    def on_advert(self, adv: Advertisement, source: IPAddress) -> None: ...


class RawSocket(Protocol):
    """:class:`vrrpd.kernel.vrrp_socket.VrrpSocket` as seen from here."""

    exclude: frozenset[IPAddress]  # never a source address (VIPs)

    @property
    def primary_address(self) -> IPAddress: ...

    def fileno(self) -> int: ...

    def refresh_addresses(self) -> None: ...

    def receive(self) -> Any: ...

    def send(self, payload: bytes, dst: IPAddress) -> None: ...

    def close(self) -> None: ...


class VrrpEndpoint:
    """Reads a raw VRRP socket and dispatches adverts by VRID."""

    def __init__(self, ifname: str, family: int, sock: RawSocket, group: IPAddress) -> None:
        self.ifname = ifname
        self.family = family
        self.sock = sock
        self.group = group
        self.drivers: dict[int, Driver] = {}
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self._log = RateLimitedLog(log)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def primary_address(self) -> IPAddress:
        return self.sock.primary_address

    def send(self, payload: bytes, dst: IPAddress) -> None:
        self.sock.send(payload, dst)

    def refresh(self) -> None:
        """Re-read the interface's addresses (after a link or address change)."""
        try:
            self.sock.refresh_addresses()
        except OSError as exc:
            log.warning("[%s] cannot re-read addresses: %s", self.ifname, exc)

    def _readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                pkt = self.sock.receive()
            except OSError as exc:
                self._log.warning("recv", "[%s] receive error: %s", self.ifname, exc)
                return
            if pkt is None:
                return
            self.counters["packets"] += 1
            self._packet(pkt.payload, pkt.src, pkt.dst, pkt.ttl)

    def _packet(self, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int) -> None:
        if ttl != VRRP_TTL:
            self._drop(DropReason.TTL, src, f"TTL/hop limit {ttl}, must be 255 (sent from "
                       "another subnet, or by something that is not a VRRP router)")
            return
        try:
            adv = decode(payload, src, dst)
        except DecodeError as exc:
            self._drop(exc.reason, src, str(exc))
            return
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
        return {"interface": self.ifname, "family": self.family,
                "primary_address": str(self.primary_address), "vrids": sorted(self.drivers),
                "counters": counters, "dropped": dict(self.drops)}

    def close(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
