"""The running virtual routers: one raw-socket endpoint per (interface, family), one announcer
per interface, one :class:`~vrrpd.daemon.instance.InstanceDriver` per configured instance.

Building a driver (:meth:`Instances.build`) opens what it needs (a new endpoint, a virtual
MAC link) but does not put it into service; :meth:`Instances.register` does.  That split lets
a reload build every new instance first and give up without a trace if one cannot be built
(:mod:`vrrpd.daemon.reload`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from vrrpd.config.model import InstanceConfig
from vrrpd.daemon.history import TransitionListener
from vrrpd.daemon.instance import InstanceDriver
from vrrpd.daemon.ports import AnnouncePort, HandoverPort, InstancePorts, Kernel
from vrrpd.daemon.receiver import NOT_LOOKED_AT, VrrpEndpoint
from vrrpd.daemon.scheduler import Scheduler
from vrrpd.daemon.status import instance_status
from vrrpd.proto.events import FaultChanged, Shutdown, State
from vrrpd.proto.numbers import OWNER_PRIORITY

log = logging.getLogger("vrrpd")

SHUTDOWN_DRAIN_WAIT = 10.0  # seconds the last adverts and VIP removals get at shutdown


class Instances:
    """Endpoints, announcers and drivers of the running configuration, by name."""

    def __init__(self, kernel: Kernel, on_transition: TransitionListener) -> None:
        self.kernel = kernel
        self.endpoints: dict[tuple[str, int], VrrpEndpoint] = {}
        self.announcers: dict[str, AnnouncePort] = {}
        self.drivers: dict[str, InstanceDriver] = {}
        self._on_transition = on_transition
        self.handover: HandoverPort | None = None  # draining hand-over, set by the daemon
        self.scheduler = Scheduler()  # every driver's deadlines (vrrpd.daemon.scheduler)
        self.scheduler.before_expiry.append(self._read_sockets)

    def _read_sockets(self) -> None:
        """Before a backup acts on silence, hear what the sockets hold (scheduler)."""
        for endpoint in self.endpoints.values():
            endpoint.drain()

    def endpoint(self, ifname: str, family: int) -> VrrpEndpoint:
        """The endpoint of ``ifname`` and ``family``, opened on first use."""
        key = (ifname, family)
        if key not in self.endpoints:
            self.endpoints[key] = VrrpEndpoint(ifname, family, self.kernel.open_socket,
                                               self.kernel.group(family))
        return self.endpoints[key]

    async def build(self, cfg: InstanceConfig) -> InstanceDriver:
        """A driver for ``cfg``, not yet in service; OSError when its kernel parts fail."""
        endpoint = self.endpoint(cfg.interface, cfg.family)
        for ifname in {cfg.interface, *(p.dev for p in cfg.vip_placement.values() if p.dev)}:
            if ifname not in self.announcers:
                self.announcers[ifname] = self.kernel.announcer(ifname)
        announcer, vmac = self.announcers[cfg.interface], None
        if cfg.virtual_mac:
            if self.kernel.virtual_macs is None:
                raise RuntimeError("virtual_mac: this kernel adapter has no virtual MAC links")
            vmac = self.kernel.virtual_macs.create(cfg.interface, cfg.family, cfg.vrid,
                                                   lambda: endpoint.primary_address)
            try:
                await vmac.open()
            except OSError as exc:
                await vmac.close()
                raise OSError(exc.errno, f"instance {cfg.name}: virtual_mac: {exc.strerror or exc}"
                              ) from None
            announcer = vmac  # announces from the virtual MAC of its current link
        driver = InstanceDriver(cfg, InstancePorts(
            endpoint, self.kernel.addresses, announcer, vmac, self.kernel.accept_filter,
            self.kernel.routes, self.kernel.tproxy,
            {p.dev: self.announcers[p.dev] for p in cfg.vip_placement.values() if p.dev}),
            self.scheduler)
        driver.listeners.append(self._on_transition)
        driver.handover = self.handover
        return driver

    def register(self, driver: InstanceDriver) -> None:
        """Put a built driver into service: its endpoint hands it the adverts of its VRID."""
        endpoint = self.endpoint_of(driver)
        endpoint.drivers[driver.cfg.vrid] = driver
        self.drivers[driver.name] = driver
        if endpoint.problem not in (None, NOT_LOOKED_AT):  # added by a reload
            driver.post(FaultChanged(f"link:{driver.cfg.interface}", True))

    def endpoint_of(self, driver: InstanceDriver) -> VrrpEndpoint:
        return self.endpoints[(driver.cfg.interface, driver.cfg.family)]

    async def discard(self, drivers: list[InstanceDriver]) -> None:
        """Close drivers that were built but never registered, and endpoints left unused."""
        for driver in drivers:
            await driver.close()
        for key, endpoint in list(self.endpoints.items()):
            if not endpoint.drivers and not any(
                    (d.cfg.interface, d.cfg.family) == key for d in self.drivers.values()):
                endpoint.close()
                del self.endpoints[key]

    async def remove(self, name: str) -> None:
        """RFC 5798 §6.4.3 Shutdown for one instance (priority 0 if master, VIPs released)."""
        driver = self.drivers.pop(name)
        driver.post(Shutdown())
        await driver.drain()
        if self.handover is not None:
            await self.handover.forget(name)
        await driver.close()
        self.endpoint_of(driver).drivers.pop(driver.cfg.vrid, None)

    async def reconcile(self, drivers: list[InstanceDriver]) -> None:
        """Remove VIPs a crashed earlier run left behind (on the instance's interface and on
        every VIP's ``dev``); we start as non-master."""
        by_interface: dict[str, list[tuple[InstanceConfig, tuple[Any, ...]]]] = {}
        for driver in drivers:
            cfg = driver.cfg
            for ifname, vips in cfg.by_interface(cfg.held, driver.vip_interface).items():
                by_interface.setdefault(ifname, []).append((cfg, vips))
        for ifname, placed in by_interface.items():
            try:
                present = await self.kernel.addresses.present(ifname)
            except OSError:  # no such interface (yet): nothing can be left on it
                continue
            stale = [v for cfg, vips in placed if cfg.priority != OWNER_PRIORITY for v in vips
                     if v in present]
            for cfg, vips in placed:
                missing = [str(v) for v in vips if v in cfg.vips and v not in present]
                if cfg.priority == OWNER_PRIORITY and missing:
                    log.warning("[%s] instance %s has priority 255, so its VIPs are this "
                                "host's own addresses (RFC 5798 §1), but %s is not on %s: "
                                "vrrpd adds it as master and, as the owner, never removes it. "
                                "Configure it on the interface, or use a priority below 255",
                                ifname, cfg.name, ", ".join(missing), ifname)
            if stale:
                log.warning("[%s] removing VIP(s) %s left by an earlier run (startup reconcile)",
                            ifname, ", ".join(map(str, stale)))
                await self.kernel.addresses.remove(ifname, stale)

    def summary(self) -> str:
        """One line for systemd's STATUS=, e.g. ``MASTER for web; BACKUP for dicom``."""
        by_state: dict[State, list[str]] = {}
        for name, d in self.drivers.items():
            by_state.setdefault(d.state, []).append(name)
        return "; ".join(f"{s.value} for {', '.join(n)}" for s, n in sorted(by_state.items()))

    def status(self, trackers: Callable[[InstanceConfig], list[dict[str, Any]]] | None
               ) -> dict[str, Any]:
        """``instances`` and ``endpoints`` of ``vrrpctl status``."""
        instances = []
        for driver in self.drivers.values():
            doc = instance_status(driver)
            doc["interface_problem"] = self.endpoint_of(driver).problem
            if trackers is not None:
                doc["trackers"] = trackers(driver.cfg)
            if self.handover is not None:
                doc["drain"] = self.handover.status(driver)
            instances.append(doc)
        return {"instances": instances,
                "endpoints": [e.status() for e in self.endpoints.values()]}

    async def shutdown(self) -> None:
        """RFC 5798 §6.4.3 Shutdown for every instance (a master sends priority 0, then drops
        its VIPs), waited for up to :data:`SHUTDOWN_DRAIN_WAIT`; then everything is closed."""
        for driver in self.drivers.values():
            driver.post(Shutdown())
        try:
            async with asyncio.timeout(SHUTDOWN_DRAIN_WAIT):
                await asyncio.gather(*(d.drain() for d in self.drivers.values()))
        except TimeoutError:
            log.error("shutdown: VIP removal did not finish within %gs; check `ip addr` for "
                      "VIPs left behind (the next start removes them)", SHUTDOWN_DRAIN_WAIT)
        await asyncio.sleep(0)  # let the last transitions reach their hooks
        await self.close()

    async def close(self) -> None:
        """Close every driver, endpoint and announcer (after the drivers have shut down)."""
        for driver in self.drivers.values():
            await driver.close()
        for endpoint in self.endpoints.values():
            endpoint.close()
        for announcer in self.announcers.values():
            announcer.close()
        self.scheduler.close()
