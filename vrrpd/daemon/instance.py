"""The asyncio driver of one virtual router: a queue, a timer and an executor.

Every VRRP rule lives in :class:`~vrrpd.proto.router.VirtualRouter`; the driver feeds it events
(:meth:`InstanceDriver.post`, with the loop's clock), arms exactly one deadline at
``router.next_deadline()`` (on the daemon's shared :mod:`~vrrpd.daemon.scheduler`), and
executes the actions that come back.  Critical actions (adverts, VIPs, announcements) run in
order on one worker task; an advert with nothing waiting before it is sent at once, without
the hop to the worker.  Transitions are published to
subscribers with ``call_soon`` so that notify hooks, metrics or config sync can never delay a
takeover (DESIGN.md seam 5).  ``tests/sim.py`` drives the router the same way with a fake
clock.  The one thing done before the router sees an advert is receive-side filtering
(``strict_peers``).

The executor's parts: what a master holds (:mod:`vrrpd.daemon.holding`), what goes on the wire
(:mod:`vrrpd.daemon.transmit`); reports are counted and logged (:mod:`vrrpd.daemon.reports`),
transitions kept (:mod:`vrrpd.daemon.history`), status built (:mod:`vrrpd.daemon.status`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Any

from vrrpd.config.diff import InstanceChange
from vrrpd.config.model import InstanceConfig
from vrrpd.daemon.history import HISTORY, TransitionListener, TransitionRecord, record
from vrrpd.daemon.holding import Holding
from vrrpd.daemon.logs import InstanceLog, RateLimitedLog
from vrrpd.daemon.ports import HandoverPort, InstancePorts
from vrrpd.daemon.reports import report
from vrrpd.daemon.scheduler import Scheduler
from vrrpd.daemon.transmit import Transmitter
from vrrpd.proto.events import (
    Action,
    AddVips,
    AdvertReceived,
    Announce,
    Dropped,
    Event,
    Reconfigure,
    RemoveVips,
    SendAdvert,
    State,
    Transition,
)
from vrrpd.proto.packet import Advertisement, DropReason, IPAddress, simple_text_auth
from vrrpd.proto.router import RouterParams, VirtualRouter

log = logging.getLogger("vrrpd.instance")

class InstanceDriver:
    """Runs one :class:`VirtualRouter` on the event loop."""

    def __init__(self, cfg: InstanceConfig, ports: InstancePorts,
                 scheduler: Scheduler | None = None) -> None:
        self.cfg = cfg
        self.ports = ports
        self.endpoint = ports.endpoint
        self.vmac = ports.vmac
        self.handover: HandoverPort | None = None  # draining hand-over (vrrpd.drain)
        self.log = InstanceLog(log, instance=cfg.name, interface=cfg.interface, vrid=cfg.vrid,
                               version=cfg.version)
        self.drops_log = RateLimitedLog(self.log)
        self.router = VirtualRouter(self._params(cfg))
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.history: deque[TransitionRecord] = deque(maxlen=HISTORY)
        self.listeners: list[TransitionListener] = []
        self.state_since = time.time()
        self.holding = Holding(self)  # the VIPs and what goes with them, while MASTER
        self.transmit = Transmitter(self)  # adverts, gratuitous ARP / NA
        # the latest advert from another router acting as master: (wall clock, source, priority)
        self._last_master_advert: tuple[float, IPAddress, int] | None = None
        self._loop = asyncio.get_running_loop()
        self.scheduler = scheduler or Scheduler(self._loop)
        self._queue: asyncio.Queue[Action] = asyncio.Queue()
        self._busy = False  # the worker is carrying out an action
        self._worker = self._loop.create_task(self._work(), name=f"vrrp-{cfg.name}")

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def last_master_advert(self) -> dict[str, Any] | None:
        """The latest advert from another router acting as master, for ``vrrpctl check``."""
        if self._last_master_advert is None:
            return None
        at, source, priority = self._last_master_advert
        return {"at": at, "from": str(source), "priority": priority}

    @property
    def vip_interface(self) -> str:
        """Where the VIPs live: the virtual MAC link, or the instance's interface."""
        return self.vmac.name if self.vmac is not None else self.cfg.interface

    @property
    def vips_held(self) -> bool:
        return self.holding.held

    @property
    def state(self) -> State:
        return self.router.state

    @property
    def faults(self) -> set[str]:
        return self.router.faults

    def _params(self, cfg: InstanceConfig) -> RouterParams:
        return RouterParams(
            version=cfg.version, vrid=cfg.vrid, priority=cfg.priority,
            advert_interval_cs=cfg.advert_interval_cs,
            addresses=tuple(v.ip for v in cfg.vips),
            # our adverts' source: the RFC 5798 §6.4.3 tie-break compares it
            primary_address=(cfg.src_ip if cfg.src_ip is not None
                             and self.endpoint.primary_address is not None
                             else self.endpoint.primary_address), preempt=cfg.preempt,
            preempt_delay=cfg.preempt_delay, peers=cfg.peers, checksum=cfg.v3_checksum,
            accept_mode=cfg.accept_mode,
            auth_data=None if cfg.auth_pass is None else simple_text_auth(cfg.auth_pass))

    def source_changed(self) -> None:
        """The endpoint's source address changed (the interface became usable, or not)."""
        self.post(Reconfigure(self._params(self.cfg)))

    # ---- input ---------------------------------------------------------------------------

    def post(self, event: Event) -> list[Action]:
        """Feed one event to the state machine and carry out what it decides."""
        actions = self.router.handle(event, self._loop.time())
        self._dispatch(actions)
        return actions

    def on_advert(self, adv: Advertisement, source: IPAddress) -> None:
        """A well-formed advert for our VRID arrived (the endpoint checked TTL and form).

        Receive-side filtering first: with ``strict_peers`` an advert from a source that is not
        a listed peer never reaches the state machine.
        """
        self.counters["adverts_received"] += 1
        if self.cfg.strict_peers and source not in self.cfg.peers:
            self._dispatch([Dropped(
                DropReason.UNKNOWN_PEER, source,
                f"priority {adv.priority} from a router that is not in peers (strict_peers); "
                "a rogue or misconfigured router on the LAN - find it by this address")])
            return
        was_foreign = self.router.foreign_master
        actions = self.post(AdvertReceived(adv, source))
        if adv.priority and not any(isinstance(a, Dropped) for a in actions):
            # a router acting as master (priority 0 = one resigning), for `vrrpctl check`
            self._last_master_advert = (time.time(), source, adv.priority)
        if self.router.foreign_master and not was_foreign:
            self.counters["foreign_masters"] += 1
            self.log.warning("following foreign master %s (priority %d), which is not in peers: "
                             "a rogue or misconfigured router holds this VRID; find it, or "
                             "set strict_peers: true to ignore unlisted routers", source,
                             adv.priority)

    @property
    def expiry_needs_input(self) -> bool:
        """A backup's deadline acts on silence: read what has arrived first (scheduler)."""
        return self.router.state is State.BACKUP

    def on_deadline(self, now: float) -> None:
        """The scheduler says the router's next deadline has come (``now``: its time)."""
        self._dispatch(self.router.handle_timer(now))

    # ---- output --------------------------------------------------------------------------

    def _dispatch(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Transition):
                self._transition(action)
            elif isinstance(action, SendAdvert) and not self._busy and self._queue.empty():
                self.transmit.advert(action.priority)  # nothing before it waits: no worker hop
            elif not report(self, action):
                self._queue.put_nowait(action)
        self.scheduler.arm(self, self.router.next_deadline())

    def _transition(self, t: Transition) -> None:
        entry = record(self, t)
        for listener in self.listeners:
            self._loop.call_soon(listener, self, entry)

    async def _work(self) -> None:
        while True:
            action = await self._queue.get()
            self._busy = True
            try:
                await self._execute(action)
            except Exception:  # one failed action must not stop the instance
                self.log.exception("could not carry out %s", action)
            finally:
                self._busy = False
                self._queue.task_done()

    async def _execute(self, action: Action) -> None:
        match action:
            case SendAdvert(priority):
                self.transmit.advert(priority)
            case AddVips():
                await self.holding.take()
            case RemoveVips():
                self.transmit.stop()
                await self.holding.release()
            case Announce():
                await self.transmit.announce()

    async def reconfigure(self, change: InstanceChange) -> None:
        """Apply a changed configuration in place (same interface, VRID and version).

        The state is kept; a master adds the new VIPs and removes the dropped ones, and nothing
        else is touched (no VIP is removed and re-added).
        """
        self.cfg = change.new
        self.post(Reconfigure(self._params(self.cfg)))
        if self.holding.held and (change.added_vips or change.removed_vips):
            await self.holding.change(change)

    # ---- lifecycle -----------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued critical action has been carried out."""
        await self._queue.join()

    async def close(self) -> None:
        self.scheduler.arm(self, None)
        self.transmit.stop()
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        if self.vmac is not None:
            await self.vmac.close()
