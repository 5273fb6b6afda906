"""The daemon: builds endpoints and drivers from the config, runs them, and shuts down cleanly.

Startup (RFC 5798 §6.4.1 plus what a crash leaves behind): *reconcile* (remove VIPs that an
earlier run left on the interfaces), restore the operator's persisted modes, look at each
interface, then send every instance its Startup event.  The daemon starts in any network state:
an instance whose interface is missing, down, without its source address or still running DAD
starts in FAULT (fault source ``link:IFNAME``, the reason in ``vrrpctl status``) and joins as
soon as netlink reports the interface usable (:class:`vrrpd.kernel.link.InterfaceWatcher`).

Shutdown (SIGTERM): every master sends exactly one priority-0 advert and then removes its VIPs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vrrpd import __version__
from vrrpd.config.diff import diff_configs
from vrrpd.config.loader import ConfigError, load_config
from vrrpd.config.model import Config, InstanceConfig
from vrrpd.control.registry import CommandError
from vrrpd.control.server import ControlServer
from vrrpd.daemon.eventlog import EventLog
from vrrpd.daemon.groups import SyncGroup
from vrrpd.daemon.instance import AddressPort, AnnouncePort, InstanceDriver, TransitionRecord
from vrrpd.daemon.notify import HookRunner
from vrrpd.daemon.persist import StateFile
from vrrpd.daemon.receiver import NOT_LOOKED_AT, RawSocket, VrrpEndpoint
from vrrpd.daemon.sdnotify import SystemdNotifier
from vrrpd.daemon.tracking import InstanceTracking
from vrrpd.kernel.link import Readiness
from vrrpd.proto.events import AdminChanged, AdminMode, FaultChanged, Shutdown, Startup, State
from vrrpd.proto.packet import IPAddress
from vrrpd.proto.router import OWNER_PRIORITY

log = logging.getLogger("vrrpd")

HOOK_SHUTDOWN_WAIT = 5.0  # seconds the last notify hooks get at shutdown
SHUTDOWN_DRAIN_WAIT = 10.0  # seconds the last adverts and VIP removals get at shutdown


class AddressManagerPort(AddressPort, Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def present(self, ifname: str) -> set[Any]: ...


@dataclass
class Kernel:
    """The kernel-facing parts the daemon needs; tests swap in :mod:`vrrpd.kernel.fakes`."""

    open_socket: Callable[[str, int, frozenset[IPAddress]], RawSocket]  # ifname, family, exclude
    group: Callable[[int], IPAddress]
    addresses: AddressManagerPort
    announcer: Callable[[str], AnnouncePort]
    interfaces: Callable[[], Any]  # vrrpd.kernel.link.InterfaceWatcher
    virtual_macs: Any = None  # vrrpd.kernel.vmac.VirtualMacs (virtual_mac: true)
    neighbours: Any = None  # vrrpd.kernel.neighbours.NeighbourCache


def real_kernel() -> Kernel:
    from vrrpd.kernel.addresses import AddressManager
    from vrrpd.kernel.announcer import Announcer
    from vrrpd.kernel.link import InterfaceWatcher
    from vrrpd.kernel.neighbours import NeighbourCache
    from vrrpd.kernel.vmac import VirtualMacs
    from vrrpd.kernel.vrrp_socket import VRRP_GROUP, VrrpSocket

    addresses = AddressManager()
    return Kernel(open_socket=VrrpSocket, group=VRRP_GROUP.__getitem__,
                  addresses=addresses, virtual_macs=VirtualMacs(addresses),
                  announcer=Announcer, interfaces=InterfaceWatcher, neighbours=NeighbourCache())


class Daemon:
    """One vrrpd process: every configured instance, its sockets, trackers and state."""

    def __init__(self, config: Config, kernel: Kernel | None = None) -> None:
        self.config = config
        self.kernel = kernel or real_kernel()
        self.endpoints: dict[tuple[str, int], VrrpEndpoint] = {}
        self.drivers: dict[str, InstanceDriver] = {}
        self.groups: list[SyncGroup] = []
        self.announcers: dict[str, AnnouncePort] = {}
        self.hooks: dict[str, HookRunner] = {}  # by instance or "group:NAME"
        self.state_file = StateFile(config.state_dir / "admin.json")
        self.notifier = SystemdNotifier()
        self.events = EventLog()
        self.control: ControlServer | None = None
        self.metrics: Any = None
        self._reload_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._stopping = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._interfaces: Any = None  # the kernel's InterfaceWatcher
        self._interface_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self.tracking: InstanceTracking | None = None
        self.sync: Any = None  # vrrpd.sync.service.SyncService when `sync:` is configured

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.kernel.addresses.open()
        if self.kernel.neighbours is not None:
            await self.kernel.neighbours.open()
        self._interfaces = self.kernel.interfaces()
        await self._interfaces.open()
        for cfg in self.config.instances:
            await self._add_driver(cfg)
        if self.kernel.virtual_macs is not None:
            wanted = [d.vmac.name for d in self.drivers.values() if d.vmac is not None]
            for name in await self.kernel.virtual_macs.remove_stale(wanted):
                log.warning("removed virtual MAC link %s: an earlier run made it for an "
                            "instance that is no longer configured", name)
        self._build_groups()
        await self._reconcile(list(self.drivers.values()))
        self._restore_admin()
        self._look_at_interfaces()
        self._interface_task = asyncio.create_task(self._follow_interfaces())
        self.tracking = InstanceTracking(self.config, self.drivers, self.post_fault,
                                         self.events.record)
        for name in self.drivers:
            self.tracking.apply(name)
        for driver in self.drivers.values():
            driver.post(Startup())
        self.tracking.start()
        self.control = ControlServer(self, self.config.control_socket,
                                     self.config.control_socket_group)
        await self.control.start()
        if self.config.sync is not None:
            await self._start_sync()
        if self.config.metrics is not None:
            from vrrpd.daemon.metrics import MetricsServer

            self.metrics = MetricsServer(self.status, *self.config.metrics.listen)
            await self.metrics.start()
        log.info("vrrpd %s started on node %s with %d instance(s)", __version__,
                 self.config.node, len(self.drivers))
        self.notifier.notify(READY=1, STATUS=self.summary())
        interval = self.notifier.watchdog_interval()
        if interval:
            self._watchdog = asyncio.create_task(self._ping_watchdog(interval))

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then shut down."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        await self.start()
        await self._stopping.wait()
        await self.stop()

    def _reload_on_signal(self) -> None:
        async def run() -> None:
            try:
                await self.reload()
            except CommandError as exc:
                log.error("SIGHUP: %s", exc)

        self._reload_task = asyncio.create_task(run())

    async def stop(self) -> None:
        """RFC 5798 §6.4.3 Shutdown: priority 0 from every master, then VIPs released."""
        if self._stopped:
            return
        self._stopped = True
        self.notifier.notify(STOPPING=1, STATUS="shutting down")
        if self.control is not None:
            await self.control.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.sync is not None:
            await self.sync.stop()
        if self.tracking is not None:
            await self.tracking.stop()
        if self._interface_task is not None:
            self._interface_task.cancel()
        if self._interfaces is not None:
            await self._interfaces.close()
        for driver in self.drivers.values():
            driver.post(Shutdown())
        try:
            await asyncio.wait_for(asyncio.gather(*(d.drain() for d in self.drivers.values())),
                                   SHUTDOWN_DRAIN_WAIT)
        except TimeoutError:
            log.error("shutdown: VIP removal did not finish within %gs; check `ip addr` for "
                      "VIPs left behind (the next start removes them)", SHUTDOWN_DRAIN_WAIT)
        for driver in self.drivers.values():
            await driver.close()
        await asyncio.sleep(0)  # let the last transitions reach their hooks
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(h.idle() for h in self.hooks.values())),
                                   HOOK_SHUTDOWN_WAIT)
        for hook in self.hooks.values():
            await hook.close()
        for endpoint in self.endpoints.values():
            endpoint.close()
        for announcer in self.announcers.values():
            announcer.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self.kernel.addresses.close()
        if self.kernel.neighbours is not None:
            await self.kernel.neighbours.close()
        log.info("vrrpd stopped; all VIPs released")

    async def _follow_interfaces(self) -> None:
        async for state in self._interfaces.events():
            try:
                self._interface_changed(state)
            except Exception:  # one bad event must not end interface watching
                log.exception("[%s IPv%d] handling the interface's change failed",
                              state.ifname, state.family)

    def _look_at_interfaces(self) -> None:
        """(Re)read every endpoint's interface, never taking the configured VIPs for its
        source: new ones are watched from now on, and unusable ones fault their instances."""
        for (ifname, family), endpoint in self.endpoints.items():
            endpoint.exclude = self.config.not_sources(ifname, family)
            self._interface_changed(self._interfaces.watch(ifname, family, endpoint.exclude))

    def _interface_changed(self, state: Readiness) -> None:
        """An interface became usable for VRRP, or stopped being: FAULT follows it.

        The fault source is ``link:IFNAME`` for the instances of that interface and family.
        """
        endpoint = self.endpoints.get((state.ifname, state.family))
        if endpoint is None:
            return
        was = endpoint.problem
        endpoint.follow(state)
        problem = endpoint.problem
        names = [n for n, d in self.drivers.items() if d.endpoint is endpoint]
        for name in names:
            self.drivers[name].source_changed()
        where, first = f"[{state.ifname} IPv{state.family}]", was == NOT_LOOKED_AT
        if problem is None:
            with contextlib.suppress(OSError):  # a MAC or link-local may have changed
                self.announcers[state.ifname].refresh_addresses()
        if problem is None and was is not None and not first:
            if self.kernel.neighbours is not None:
                self._flush_task = asyncio.create_task(self._flush_neighbours(state.ifname))
            log.info("%s usable again, adverts from %s: instances %s leave FAULT", where,
                     endpoint.primary_address, ", ".join(names))
        elif problem is not None and problem != was:
            log.warning("%s %s: instances %s wait in FAULT until it is usable (no restart "
                        "needed)", where, problem, ", ".join(names))
        if first or (problem is None) != (was is None):
            self.events.record("link", interface=state.ifname, family=state.family,
                               problem=problem, instances=names)
            self.post_fault(names, f"link:{state.ifname}", problem is not None)

    async def _flush_neighbours(self, ifname: str) -> None:
        """Carrier is back: unresolved neighbours re-resolve now, not at the next retry."""
        try:
            stale = await self.kernel.neighbours.flush_unresolved(ifname)
        except OSError as exc:
            log.warning("[%s] could not clear unresolved neighbour entries: %s", ifname, exc)
            return
        if stale:
            log.info("[%s] link up: cleared unresolved neighbour entries %s so they resolve at "
                     "once", ifname, ", ".join(map(str, stale)))

    async def _ping_watchdog(self, interval: float) -> None:
        while True:
            self.notifier.notify(WATCHDOG=1)
            await asyncio.sleep(interval)

    # ---- building ------------------------------------------------------------------------

    def _endpoint(self, ifname: str, family: int) -> VrrpEndpoint:
        key = (ifname, family)
        if key not in self.endpoints:
            self.endpoints[key] = VrrpEndpoint(ifname, family, self.kernel.open_socket,
                                               self.kernel.group(family))
        return self.endpoints[key]

    async def _add_driver(self, cfg: InstanceConfig) -> InstanceDriver:
        endpoint = self._endpoint(cfg.interface, cfg.family)
        if cfg.interface not in self.announcers:
            self.announcers[cfg.interface] = self.kernel.announcer(cfg.interface)
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
            announcer = vmac.announcer
        driver = InstanceDriver(cfg, endpoint, self.kernel.addresses, announcer, vmac)
        driver.listeners.append(self._on_transition)
        if cfg.notify:
            self.hooks[cfg.name] = HookRunner(cfg.notify, "INSTANCE", cfg.name)
        endpoint.drivers[cfg.vrid] = driver
        self.drivers[cfg.name] = driver
        if endpoint.problem not in (None, NOT_LOOKED_AT):  # added by a reload
            driver.post(FaultChanged(f"link:{cfg.interface}", True))
        return driver

    def _build_groups(self) -> None:
        self.groups = [SyncGroup(g, [self.drivers[n] for n in g.instances])
                       for g in self.config.sync_groups]
        for g in self.config.sync_groups:
            if g.notify:
                self.hooks[f"group:{g.name}"] = HookRunner(g.notify, "GROUP", g.name)

    async def _reconcile(self, drivers: list[InstanceDriver]) -> None:
        """Remove VIPs a crashed earlier run left behind; we start as non-master."""
        by_interface: dict[str, list[InstanceConfig]] = {}
        for driver in drivers:
            by_interface.setdefault(driver.vip_interface, []).append(driver.cfg)
        for ifname, cfgs in by_interface.items():
            try:
                present = await self.kernel.addresses.present(ifname)
            except OSError:  # no such interface (yet): nothing can be left on it
                continue
            stale = [v for cfg in cfgs if cfg.priority != OWNER_PRIORITY for v in cfg.vips
                     if v in present]
            for cfg in cfgs:
                missing = [str(v) for v in cfg.vips if v not in present]
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

    # ---- reactions -----------------------------------------------------------------------

    def _on_transition(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        self.events.record("transition", instance=driver.name, old=record.old.value,
                           new=record.new.value, reason=record.reason)
        vips = [str(v.ip) for v in driver.cfg.vips]
        hook = self.hooks.get(driver.name)
        if hook is not None:
            hook.submit(record.new.value, record.old.value, driver.router.priority, vips,
                        record.reason, self.config.node)
        for group in self.groups:
            if driver not in group.members:
                continue
            group.on_transition(driver, record.old, record.new, record.reason)
            group_hook = self.hooks.get(f"group:{group.cfg.name}")
            if group_hook is not None and all(m.state is record.new for m in group.members):
                group_hook.submit(record.new.value, record.old.value, driver.router.priority,
                                  vips, record.reason, self.config.node)
        if self.sync is not None:
            self.sync.on_transition(driver.name, record.new.value)
        self.notifier.notify(STATUS=self.summary())

    async def _start_sync(self) -> None:
        """Config sync: the source is the MASTER of ``sync.instance`` (changes need a restart)."""
        from vrrpd.sync.service import SyncService

        sync = self.config.sync
        assert sync is not None

        def is_source() -> bool:
            driver = self.drivers.get(sync.instance or "")
            return driver is not None and driver.state is State.MASTER

        self.sync = SyncService(sync, self.config.state_dir, self.config.node, is_source)
        await self.sync.start()

    def post_fault(self, names: list[str], source: str, faulted: bool) -> None:
        """A tracker or link fault for the named instances (sync groups follow)."""
        for name in names:
            self.drivers[name].post(FaultChanged(source, faulted))
        for group in self.groups:
            group.refresh_faults()

    def summary(self) -> str:
        """One line for systemd's STATUS=, e.g. ``MASTER for web; BACKUP for dicom``."""
        by_state: dict[State, list[str]] = {}
        for name, d in self.drivers.items():
            by_state.setdefault(d.state, []).append(name)
        return "; ".join(f"{s.value} for {', '.join(n)}" for s, n in sorted(by_state.items()))

    # ---- reload --------------------------------------------------------------------------

    async def reload(self) -> dict[str, Any]:
        """Hitless reload (SIGHUP, ``vrrpctl reload``): parse -> validate -> diff -> apply.

        A bad file raises :class:`CommandError` and changes nothing.  Unchanged instances keep
        their state; changed ones are updated in place (a master adds/removes only the VIPs that
        changed); only a new interface, VRID or version restarts an instance.
        """
        try:
            new = load_config(self.config.path)
        except (ConfigError, OSError) as exc:
            raise CommandError(f"configuration refused, still running the previous one: "
                               f"{exc}") from None
        diff = diff_configs(self.config, new)
        new_by = {i.name: i for i in new.instances}
        for name in diff.removed + diff.restarted:
            await self._remove_driver(name)
        self.config = new
        for name in diff.updated:
            await self.drivers[name].reconfigure(diff.changed[name])
        started = [await self._add_driver(new_by[n]) for n in diff.added + diff.restarted]
        await self._reconcile(started)
        self._look_at_interfaces()
        self._build_groups()
        if self.tracking is not None:
            await self.tracking.reload(new)
            for name in self.drivers:
                self.tracking.apply(name)
        for driver in started:
            driver.post(Startup())
        result = {"added": list(diff.added), "removed": list(diff.removed),
                  "restarted": list(diff.restarted), "updated": list(diff.updated),
                  "unchanged": list(diff.unchanged),
                  "needs_restart": list(diff.settings)}
        if diff.settings:
            log.warning("reload: %s changed; that takes effect only when vrrpd restarts",
                        ", ".join(diff.settings))
        log.info("configuration reloaded from %s: %s", new.path,
                 ", ".join(f"{k} {v}" for k, v in result.items()
                           if v and k not in ("unchanged", "needs_restart"))
                 or "no instance changed")
        self.events.record("reload", **result)
        return result

    async def _remove_driver(self, name: str) -> None:
        driver = self.drivers.pop(name)
        driver.post(Shutdown())
        await driver.drain()
        await driver.close()
        endpoint = self._endpoint(driver.cfg.interface, driver.cfg.family)
        endpoint.drivers.pop(driver.cfg.vrid, None)
        self.hooks.pop(name, None)

    # ---- operator modes ------------------------------------------------------------------

    def _restore_admin(self) -> None:
        doc = self.state_file.load()
        for name, mode in doc.get("instances", {}).items():
            if name in self.drivers and mode in AdminMode._value2member_map_:
                log.warning("[%s] restoring operator mode '%s' from %s; `vrrpctl resume %s` "
                            "returns to normal", name, mode, self.state_file.path, name)
                self.drivers[name].post(AdminChanged(AdminMode(mode)))

    def set_admin(self, names: list[str], mode: AdminMode) -> None:
        for name in names:
            self.drivers[name].post(AdminChanged(mode))
        doc = {"instances": {n: d.router.admin.value for n, d in self.drivers.items()
                             if d.router.admin is not AdminMode.NORMAL}}
        self.state_file.save(doc)

    def _instance_status(self, driver: InstanceDriver) -> dict[str, Any]:
        doc = driver.status()
        doc["interface_problem"] = self._endpoint(driver.cfg.interface, driver.cfg.family).problem
        if self.tracking is not None:
            doc["trackers"] = self.tracking.instance_status(driver.cfg)
        return doc

    # ---- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "node": self.config.node,
            "version": __version__,
            "config": str(self.config.path),
            "instances": [self._instance_status(d) for d in self.drivers.values()],
            "endpoints": [e.status() for e in self.endpoints.values()],
        }
