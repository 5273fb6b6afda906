"""The daemon's lifecycle: start, serve, reload, stop.

Startup (RFC 5798 §6.4.1 plus what a crash leaves behind): *reconcile* (remove VIPs that an
earlier run left on the interfaces, and its virtual routes and rules), restore the operator's
persisted modes, look at each interface, then send every instance its Startup event.  The
daemon starts in any network state: an instance whose interface is not usable waits in FAULT
(:mod:`vrrpd.daemon.links`).
Shutdown (SIGTERM): every master sends exactly one priority-0 advert and then removes its VIPs.

The parts, each in its own module: the running instances (:mod:`vrrpd.daemon.instances`),
interface state (:mod:`vrrpd.daemon.links`), trackers (:mod:`vrrpd.daemon.tracking`), the
transition fan-out to the non-critical reactions (:mod:`vrrpd.daemon.fanout`), the reload
transaction (:mod:`vrrpd.daemon.reload`) and the optional listeners
(:mod:`vrrpd.daemon.services`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from vrrpd import __version__
from vrrpd.config.model import Config
from vrrpd.control.registry import CommandError
from vrrpd.control.server import ControlServer
from vrrpd.daemon.anycast import AnycastGroups
from vrrpd.daemon.eventlog import EventLog
from vrrpd.daemon.fanout import Reactions, TransitionBus
from vrrpd.daemon.groups import SyncGroups
from vrrpd.daemon.instance import InstanceDriver
from vrrpd.daemon.instances import Instances
from vrrpd.daemon.links import InterfaceFollower
from vrrpd.daemon.logs import BoundedQueueHandler
from vrrpd.daemon.notify import NotifyHooks
from vrrpd.daemon.persist import OperatorModes
from vrrpd.daemon.ports import Kernel, real_kernel
from vrrpd.daemon.reload import Reload
from vrrpd.daemon.sdnotify import SystemdNotifier
from vrrpd.daemon.services import Service, build_config_sync, build_metrics
from vrrpd.daemon.tracking import InstanceTracking
from vrrpd.drain.handover import Handover
from vrrpd.drain.messages import OP as DRAIN_OP
from vrrpd.kernel.drain_hold import DrainHold
from vrrpd.proto.events import AdminMode, FaultChanged, Shutdown, Startup, State

log = logging.getLogger("vrrpd")

HOOK_SHUTDOWN_WAIT = 5.0  # seconds the last notify hooks get at shutdown
SHUTDOWN_DRAIN_WAIT = 10.0  # seconds the last adverts and VIP removals get at shutdown


class Daemon:
    """One vrrpd process: every configured instance, its sockets, trackers and state."""

    def __init__(self, config: Config, kernel: Kernel | None = None) -> None:
        self.config = config
        self.kernel = kernel or real_kernel()
        self.bus = TransitionBus()
        self.instances = Instances(self.kernel, self.bus.publish)
        self.interfaces = InterfaceFollower(self.kernel, self.instances, self.post_fault,
                                            self._record)
        self.groups = SyncGroups((), self.instances.drivers.__getitem__)
        self.hooks: NotifyHooks | None = None
        self.tracking: InstanceTracking | None = None
        self.modes = OperatorModes(config.state_dir / "admin.json", self.instances.drivers)
        self.notifier = SystemdNotifier()
        self.events = EventLog()
        self.control: ControlServer | None = None
        self.config_sync: Any = None  # a ConfigSyncService when `config_sync:` is set
        self.metrics: Service | None = None
        self.anycast: AnycastGroups | None = None
        self.handover: Handover | None = None  # draining hand-over (drain_timeout)
        self.channel_handlers: dict[str, Any] = {}  # ops served on the config-sync channel
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False
        self._stopping = asyncio.Event()

    @property
    def drivers(self) -> dict[str, InstanceDriver]:
        return self.instances.drivers

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.kernel.addresses.open()
        if self.kernel.neighbours is not None:
            await self.kernel.neighbours.open()
        if self.kernel.routes is not None:
            await self.kernel.routes.open()
        await self.interfaces.open()
        await self._open_handover()
        for cfg in self.config.instances:
            self.instances.register(await self.instances.build(cfg))
        if self.kernel.virtual_macs is not None:
            wanted = [d.vmac.name for d in self.drivers.values() if d.vmac is not None]
            for name in await self.kernel.virtual_macs.remove_stale(wanted):
                log.warning("removed virtual MAC link %s: an earlier run made it for an "
                            "instance that is no longer configured", name)
        await self._reset_nft_tables()
        self.groups = SyncGroups(self.config.sync_groups, self.drivers.__getitem__)
        self.hooks = NotifyHooks.build(self.config)
        Reactions(self).subscribe(self.bus)
        await self.instances.reconcile(list(self.drivers.values()))
        await self._reconcile_drain()
        await self._reconcile_routes()
        self.modes.restore()
        self.interfaces.start(self.config)
        self.tracking = InstanceTracking(self.config, self.drivers, self.post_fault,
                                         self._record)
        for name in self.drivers:
            self.tracking.apply(name)
        for driver in self.drivers.values():
            driver.post(Startup())
        await self._start_anycast()
        self.tracking.start()
        self.config_sync = build_config_sync(self.config, self.is_sync_source,
                                             self.channel_handlers)
        self.metrics = build_metrics(self.config, self.status)
        for service in (self.config_sync, self.metrics):
            if service is not None:
                await service.start()
        # last: a control socket that answers means every listener is up (a peer's push can
        # land as soon as `vrrpctl status` works)
        self.control = ControlServer(self, self.config.control_socket,
                                     self.config.control_socket_group)
        await self.control.start()
        log.info("vrrpd %s started on node %s with %d instance(s)", __version__,
                 self.config.node, len(self.drivers))
        self.notifier.notify(READY=1, STATUS=self.summary())
        interval = self.notifier.watchdog_interval()
        if interval:
            self._spawn(self._ping_watchdog(interval))

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then shut down."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        await self.start()
        await self._stopping.wait()
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reload_on_signal(self) -> None:
        async def run() -> None:
            try:
                await self.reload()
            except CommandError as exc:
                log.error("SIGHUP: %s", exc)

        self._spawn(run())

    async def stop(self) -> None:
        """RFC 5798 §6.4.3 Shutdown: priority 0 from every master, then VIPs released."""
        if self._stopped:
            return
        self._stopped = True
        self.notifier.notify(STOPPING=1, STATUS="shutting down")
        if self.control is not None:
            await self.control.stop()
        if self.handover is not None:  # drains end (telling the peer) while sync still runs
            await self.handover.close()
        for service in (self.metrics, self.config_sync):
            if service is not None:
                await service.stop()
        if self.tracking is not None:
            await self.tracking.stop()
        if self.anycast is not None:
            await self.anycast.stop()
        await self.interfaces.close()
        for driver in self.drivers.values():
            driver.post(Shutdown())
        try:
            async with asyncio.timeout(SHUTDOWN_DRAIN_WAIT):
                await asyncio.gather(*(d.drain() for d in self.drivers.values()))
        except TimeoutError:
            log.error("shutdown: VIP removal did not finish within %gs; check `ip addr` for "
                      "VIPs left behind (the next start removes them)", SHUTDOWN_DRAIN_WAIT)
        await asyncio.sleep(0)  # let the last transitions reach their hooks
        await self.instances.close()
        await self._reset_nft_tables()
        if self.handover is not None:
            await self._reconcile_drain()
            await self.kernel.drain_forwarding.close()
        if self.hooks is not None:
            await self.hooks.close(wait=HOOK_SHUTDOWN_WAIT)
        for task in self._tasks:
            task.cancel()
        await self.kernel.addresses.close()
        if self.kernel.neighbours is not None:
            await self.kernel.neighbours.close()
        if self.kernel.routes is not None:
            await self.kernel.routes.close()
        log.info("vrrpd stopped; all VIPs released")

    async def _start_anycast(self) -> None:
        """Anycast groups (:mod:`vrrpd.daemon.anycast`) follow the trackers from their first
        result on; their start withdraws what a crashed run left announced."""
        if not self.config.anycast or self.config.bgp is None or self.kernel.speaker is None:
            return
        self.anycast = AnycastGroups(self.config, self.kernel.speaker(self.config.bgp),
                                     self._record)
        assert self.tracking is not None
        self.tracking.listeners.append(self.anycast.on_status)
        await self.anycast.start()

    async def _open_handover(self) -> None:
        """The draining hand-over (:mod:`vrrpd.drain`), when the kernel adapter has it."""
        forwarding = self.kernel.drain_forwarding
        if forwarding is None:
            return
        forwarding.state_file = self.config.state_dir / "drain-forwarding.json"
        await forwarding.open()
        self.handover = Handover(DrainHold(self.kernel.addresses), forwarding,
                                 lambda: self.config_sync, lambda: self.drivers,
                                 lambda: self.config)
        self.instances.handover = self.handover
        self.channel_handlers[DRAIN_OP] = self.handover.receive

    async def _reconcile_drain(self) -> None:
        """Remove what a drain left (a crashed run's, or ours at stop): forwarding rules,
        routes, nftables table and sysctls; VIPs held on lo.  Before the routes' flush: the
        ``local`` rule goes back to priority 0 first."""
        if self.handover is None:
            return
        try:
            await self.handover.forwarding.kernel.reset()
        except OSError as exc:
            if self.config.config_sync and any(d.cfg.drain_timeout > 0
                                               for d in self.drivers.values()):
                log.error("drain: cannot reset its forwarding (%s); forwarding for a drain will "
                          "fail (apt install nftables)", exc)
        held = [v for d in self.drivers.values() for v in d.cfg.held]
        removed = await self.handover.hold.reconcile(held)
        if removed:
            log.warning("removed VIP(s) %s from lo, left by an earlier run's drain (startup "
                        "reconcile)", ", ".join(map(str, removed)))

    async def announce_handover(self, names: list[str]) -> None:
        """Before a planned hand-over (demote, maintenance): tell the peer to forward."""
        if self.handover is not None:
            await self.handover.before_handover(names)

    async def _reconcile_routes(self) -> None:
        """Remove the virtual routes and rules an earlier run left (vrrpd's routing protocol
        number, :mod:`vrrpd.kernel.routes`): no instance is master yet."""
        if self.kernel.routes is None:
            return
        removed = await self.kernel.routes.flush()
        if removed:
            log.warning("removed %s left by an earlier run (startup reconcile)",
                        "; ".join(removed))

    async def _reset_nft_tables(self) -> None:
        """Delete vrrpd's nftables tables, accept_mode: false's and tproxy's (whatever a
        crashed run left, or ours at stop); a missing libnftables matters only when an
        instance needs the table."""
        for table, needed, what in (
                (self.kernel.accept_filter, any(not d.router.accepts
                                                for d in self.drivers.values()),
                 "accept_mode: false"),
                (self.kernel.tproxy, any(d.cfg.tproxy for d in self.drivers.values()),
                 "tproxy")):
            if table is None:
                continue
            try:
                await table.reset()
            except OSError as exc:
                if needed:
                    raise OSError(f"{what} needs nftables: {exc.strerror or exc}") from None

    async def _ping_watchdog(self, interval: float) -> None:
        while True:
            self.notifier.notify(WATCHDOG=1)
            await asyncio.sleep(interval)

    async def reload(self) -> dict[str, Any]:
        """Hitless reload (SIGHUP, ``vrrpctl reload``), one at a time: see
        :mod:`vrrpd.daemon.reload`.  A file that cannot be run raises :class:`CommandError`
        and changes nothing."""
        async with self._reload_lock:
            return await Reload(self).run()

    def _record(self, kind: str, **fields: Any) -> None:
        self.events.record(kind, **fields)

    def is_sync_source(self) -> bool:
        """Config sync pushes while this node is MASTER of ``config_sync.instance``."""
        sync = self.config.config_sync
        driver = self.drivers.get(sync.instance or "") if sync is not None else None
        return driver is not None and driver.state is State.MASTER

    def post_fault(self, names: list[str], source: str, faulted: bool) -> None:
        """A tracker or link fault for the named instances (sync groups follow)."""
        for name in names:
            self.drivers[name].post(FaultChanged(source, faulted))
        self.groups.refresh_faults()

    def summary(self) -> str:
        return self.instances.summary()

    # ---- operator modes and status -------------------------------------------------------

    def set_admin(self, names: list[str], mode: AdminMode) -> None:
        self.modes.set(names, mode)

    def status(self) -> dict[str, Any]:
        """``vrrpctl status``, metrics: node, version, every instance and endpoint, and the
        config sync as last heard (no network round trip)."""
        trackers = self.tracking.instance_status if self.tracking is not None else None
        hooks = self.hooks.runners if self.hooks is not None else {}
        sync = self.config_sync.cached_status() if self.config_sync is not None else None
        return {"node": self.config.node, "version": __version__,
                "config": str(self.config.path), **self.instances.status(trackers),
                "log_lines_dropped": BoundedQueueHandler.dropped,
                "notify_coalesced": {k: r.coalesced for k, r in hooks.items() if r.coalesced},
                "config_sync": sync,
                **({"anycast": self.anycast.status(), "bgp": self.anycast.speaker_status()}
                   if self.anycast is not None else {})}
