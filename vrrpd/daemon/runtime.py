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
transaction (:mod:`vrrpd.daemon.reload`), the optional listeners
(:mod:`vrrpd.daemon.services`) and what an earlier run left in the kernel
(:mod:`vrrpd.daemon.leftovers`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from vrrpd import __version__
from vrrpd.config.model import Config
from vrrpd.control.server import ControlServer
from vrrpd.daemon import drain_wiring, leftovers
from vrrpd.daemon.eventlog import EventLog
from vrrpd.daemon.fanout import Reactions, TransitionBus
from vrrpd.daemon.groups import SyncGroups
from vrrpd.daemon.instance import InstanceDriver
from vrrpd.daemon.instances import Instances
from vrrpd.daemon.links import InterfaceFollower
from vrrpd.daemon.notify import NotifyHooks
from vrrpd.daemon.persist import OperatorModes
from vrrpd.daemon.ports import Kernel, real_kernel
from vrrpd.daemon.reload import Reload, reload_on_signal
from vrrpd.daemon.sdnotify import SystemdNotifier
from vrrpd.daemon.services import Service, build_config_sync, build_metrics, start_anycast
from vrrpd.daemon.status import daemon_status
from vrrpd.daemon.tracking import InstanceTracking
from vrrpd.drain.handover import Handover
from vrrpd.proto.events import AdminMode, FaultChanged, Startup, State

if TYPE_CHECKING:
    from vrrpd.daemon.anycast import AnycastGroups  # only with anycast: (services)

log = logging.getLogger("vrrpd")

HOOK_SHUTDOWN_WAIT = 5.0  # seconds the last notify hooks get at shutdown


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
        await self.kernel.open()
        await self.interfaces.open()
        await drain_wiring.open_handover(self)
        for cfg in self.config.instances:
            self.instances.register(await self.instances.build(cfg))
        await leftovers.remove_stale_links(self.kernel, self.drivers.values())
        await leftovers.reset_nft_tables(self.kernel, self.drivers.values())
        self.groups = SyncGroups(self.config.sync_groups, self.drivers.__getitem__)
        self.hooks = NotifyHooks.build(self.config)
        Reactions(self).subscribe(self.bus)
        await self.instances.reconcile(list(self.drivers.values()))
        await drain_wiring.reconcile(self)
        await leftovers.flush_routes(self.kernel)
        self.modes.restore()
        self.interfaces.start(self.config)
        self.tracking = InstanceTracking(self.config, self.drivers, self.post_fault,
                                         self._record)
        for name in self.drivers:
            self.tracking.apply(name)
        for driver in self.drivers.values():
            driver.post(Startup())
        self.anycast = await start_anycast(self.config, self.kernel, self.tracking, self._record)
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
            self._spawn(self.notifier.ping_watchdog(interval))

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then shut down."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(reload_on_signal(self)))
        await self.start()
        await self._stopping.wait()
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        await self.instances.shutdown()
        await leftovers.reset_nft_tables(self.kernel, self.drivers.values())
        if self.handover is not None:
            await drain_wiring.reconcile(self)
            await self.kernel.drain_forwarding.close()
        if self.hooks is not None:
            await self.hooks.close(wait=HOOK_SHUTDOWN_WAIT)
        for task in self._tasks:
            task.cancel()
        await self.kernel.close()
        log.info("vrrpd stopped; all VIPs released")

    async def announce_handover(self, names: list[str]) -> None:
        """Before a planned hand-over (demote, maintenance): tell the peer to forward."""
        if self.handover is not None:
            await self.handover.before_handover(names)

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
        """``vrrpctl status`` and the metrics: :func:`vrrpd.daemon.status.daemon_status`."""
        return daemon_status(self)
