"""What an instance puts on the wire: its adverts (RFC 5798 §5, §6.4.3) and, on becoming
master, gratuitous ARP / unsolicited Neighbor Advertisements for its VIPs (§6.4.2).

Multicast adverts leave from the virtual MAC link when there is one; unicast ones from the
interface (see :mod:`vrrpd.kernel.vmac`).  Announcements come in bursts: one at once, one
``announce.repeat_delay`` later if still master, then (``announce.refresh``, keepalived's
garp_master_refresh) one every ``refresh`` seconds while master.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from vrrpd.proto.events import State
from vrrpd.proto.packet import (
    AUTH_NONE,
    AUTH_SIMPLE_TEXT,
    V2_AUTH_DATA,
    Advertisement,
    ChecksumForm,
    IPAddress,
    encode,
)

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver
    from vrrpd.proto.router import RouterParams

WIRE_CACHE = 64  # encoded adverts kept per instance (priority x checksum form x destination)


class Transmitter:
    """Adverts and announcement bursts of one instance; counts what it sent or could not."""

    def __init__(self, driver: InstanceDriver) -> None:
        self.driver = driver
        self._announce: asyncio.Task[None] | None = None
        # The advert's bytes change only with priority, checksum form, addresses: encode once.
        self._wire: dict[tuple[int, ChecksumForm, IPAddress, IPAddress], bytes] = {}
        self._wire_params: RouterParams | None = None

    def advert_bytes(self, priority: int, src: IPAddress, dst: IPAddress) -> bytes:
        """Our advert with ``priority`` from ``src`` to ``dst``, encoded once and kept until
        the router's parameters change (reload, a new source address)."""
        router = self.driver.router
        params, form = router.params, router.send_form
        if self._wire_params is not params or len(self._wire) >= WIRE_CACHE:
            self._wire.clear()
            self._wire_params = params
        key = (priority, form, src, dst)
        data = self._wire.get(key)
        if data is None:
            auth = params.auth_data
            adv = Advertisement(params.version, params.vrid, priority,
                                params.advert_interval_cs, params.addresses,
                                AUTH_NONE if auth is None else AUTH_SIMPLE_TEXT,
                                auth_data=V2_AUTH_DATA if auth is None else auth)
            data = self._wire[key] = encode(adv, src, dst, form)
        return data

    def advert(self, priority: int) -> None:
        d, cfg = self.driver, self.driver.cfg
        src = d.router.params.primary_address  # src_ip, else the interface's
        if src is None:  # the interface became unusable: this instance is going to FAULT
            d.counters["send_errors"] += 1
            return
        transmit = d.vmac if d.vmac is not None and not cfg.unicast_peers else d.endpoint
        for dst in cfg.unicast_peers or (d.endpoint.group,):
            try:
                transmit.send(self.advert_bytes(priority, src, dst), dst, cfg.src_ip)
            except OSError as exc:
                d.counters["send_errors"] += 1
                d.drops_log.warning("send", "cannot send advert to %s: %s (is %s up?)", dst,
                                    exc, cfg.interface)
                continue
            d.counters["adverts_sent"] += 1
            if priority == 0:
                d.counters["priority_zero_sent"] += 1

    async def announce(self) -> None:
        """Start the bursts (replacing any running), and let the first round leave before the
        caller's next action: the old master drops its VIPs on our advert, and hosts must
        already be pointed here by then (make-before-break)."""
        self.stop()
        self._announce = asyncio.get_running_loop().create_task(self._bursts())
        await asyncio.sleep(0)

    def stop(self) -> None:
        if self._announce is not None and not self._announce.done():
            self._announce.cancel()
        self._announce = None

    async def _bursts(self) -> None:
        d = self.driver
        await self.burst(d.cfg.held)
        if d.cfg.announce.repeat_delay > 0:
            await asyncio.sleep(d.cfg.announce.repeat_delay)
            if d.router.state is State.MASTER:
                await self.burst(d.cfg.held)
        while d.cfg.announce.refresh > 0 and d.router.state is State.MASTER:
            await asyncio.sleep(d.cfg.announce.refresh)
            if d.router.state is State.MASTER:
                await self.burst(d.cfg.held, d.cfg.announce.refresh_count)

    async def burst(self, vips: Any, count: int | None = None) -> None:
        """One burst for ``vips`` (``count`` frames each, default ``announce.count``); NAs come
        from our advert source, the link-local address."""
        d, cfg = self.driver, self.driver.cfg
        source = d.endpoint.primary_address
        na_source = source if source is not None and source.version == 6 else None
        for ifname, group in cfg.by_interface(vips, d.vip_interface).items():
            if ifname not in d.ports.announcers:
                await d.ports.announcer.send_burst(group, count or cfg.announce.count,
                                             cfg.announce.interval, na_source=na_source,
                                             na_router=cfg.na_router_flag)
                continue
            # a VIP with another dev (IPv4, the loader says so): gratuitous ARP there; that
            # interface is not watched, so bind and read its MAC now
            try:
                d.ports.announcers[ifname].refresh_addresses()
                await d.ports.announcers[ifname].send_burst(group, count or cfg.announce.count,
                                                      cfg.announce.interval)
            except OSError as exc:
                d.drops_log.warning("announce", "cannot announce %s on %s: %s (is it up?)",
                                    ", ".join(map(str, group)), ifname, exc)
        d.counters["announcements"] += 1
