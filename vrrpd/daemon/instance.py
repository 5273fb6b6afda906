"""The asyncio driver of one virtual router: a queue, a timer and an executor.

Every VRRP rule lives in :class:`~vrrpd.proto.router.VirtualRouter`; the driver feeds it events
(:meth:`InstanceDriver.post`, with the loop's clock), arms exactly one timer at
``router.next_deadline()``, and executes the actions that come back.  Critical actions
(adverts, VIPs, announcements) run in order on one worker task; transitions are published to
subscribers with ``call_soon`` so that notify hooks, metrics or config sync can never delay a
takeover (DESIGN.md seam 5).  ``tests/sim.py`` drives the router the same way with a fake
clock.  The one thing done before the router sees an advert is receive-side filtering
(``strict_peers``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vrrpd.config.diff import InstanceChange
from vrrpd.config.model import InstanceConfig
from vrrpd.daemon.logs import InstanceLog, RateLimitedLog
from vrrpd.proto.events import (
    Action,
    AddVips,
    AdvertReceived,
    Announce,
    Cause,
    Dropped,
    DualMaster,
    Event,
    ForeignAdvert,
    Mismatch,
    Notice,
    Reconfigure,
    RemoveVips,
    SendAdvert,
    State,
    Transition,
)
from vrrpd.proto.packet import (
    AUTH_NONE,
    AUTH_SIMPLE_TEXT,
    V2_AUTH_DATA,
    Advertisement,
    DropReason,
    IPAddress,
    encode,
    simple_text_auth,
)
from vrrpd.proto.router import RouterParams, VirtualRouter

log = logging.getLogger("vrrpd.instance")

HISTORY = 50  # transitions kept for `vrrpctl status` / `events`


class Endpoint(Protocol):
    """The part of :class:`vrrpd.daemon.receiver.VrrpEndpoint` a driver uses."""

    @property
    def primary_address(self) -> IPAddress | None: ...

    @property
    def group(self) -> IPAddress: ...

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None: ...


class AddressPort(Protocol):
    async def add(self, ifname: str, vips: Any, labels: Any = None) -> None: ...

    async def remove(self, ifname: str, vips: Any) -> None: ...


class RoutePort(Protocol):
    """:class:`vrrpd.kernel.routes.RouteManager` as a driver uses it."""

    async def add(self, routes: Any, rules: Any) -> None: ...

    async def remove(self, routes: Any, rules: Any) -> None: ...


class AnnouncePort(Protocol):
    async def send_burst(self, vips: Any, count: int, interval: float, *,
                         na_source: Any = None, na_router: bool = True) -> None: ...

    def refresh_addresses(self) -> None: ...

    def close(self) -> None: ...


class AcceptFilterPort(Protocol):
    """:class:`vrrpd.kernel.accept_filter.AcceptFilter` as a driver uses it."""

    async def block(self, instance: str, vips: Any) -> None: ...

    async def unblock(self, instance: str) -> None: ...


class TransparentProxyPort(Protocol):
    """:class:`vrrpd.kernel.tproxy.TransparentProxy` as a driver uses it."""

    async def mark(self, instance: str, family: int, fwmark: int) -> None: ...

    async def unmark(self, instance: str) -> None: ...


class VirtualMacPort(Protocol):
    """:class:`vrrpd.kernel.vmac.VirtualMac` as a driver uses it."""

    name: str
    mac: bytes

    async def ensure(self) -> None: ...

    async def up(self) -> None: ...

    async def down(self) -> None: ...

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress | None = None) -> None: ...

    async def close(self) -> None: ...


class HandoverPort(Protocol):
    """:class:`vrrpd.drain.handover.Handover` as a driver uses it (draining hand-over)."""

    async def taking_over(self, driver: InstanceDriver) -> None: ...

    async def took_over(self, driver: InstanceDriver) -> None: ...

    async def giving_up(self, driver: InstanceDriver) -> None: ...

    async def forget(self, name: str) -> None: ...

    def status(self, driver: InstanceDriver) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TransitionRecord:
    """One entry of the transition history."""

    at: float  # wall clock, for humans
    old: State
    new: State
    reason: str
    cause: Cause

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "old": self.old.value, "new": self.new.value,
                "reason": self.reason, "cause": self.cause.value}


TransitionListener = Callable[["InstanceDriver", TransitionRecord], None]


class InstanceDriver:
    """Runs one :class:`VirtualRouter` on the event loop."""

    def __init__(self, cfg: InstanceConfig, endpoint: Endpoint, addresses: AddressPort,
                 announcer: AnnouncePort, vmac: VirtualMacPort | None = None,
                 accept_filter: AcceptFilterPort | None = None,
                 routes: RoutePort | None = None,
                 announcers: dict[str, AnnouncePort] | None = None,
                 tproxy: TransparentProxyPort | None = None) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.addresses = addresses
        self.announcer = announcer
        self.vmac = vmac  # virtual_mac: the macvlan link that carries the VIPs while MASTER
        self.accept_filter = accept_filter  # accept_mode: false (Accept_Mode False)
        self.routes = routes  # virtual_routes / virtual_rules
        self.tproxy = tproxy  # tproxy: the nftables half (the routing half is in routes)
        self.announcers = announcers or {}  # of the other interfaces VIPs are on (their dev)
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
        self.vips_held = False
        self.last_master_advert: dict[str, Any] | None = None  # the latest from another router
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[Action] = asyncio.Queue()
        self._worker = self._loop.create_task(self._work(), name=f"vrrp-{cfg.name}")
        self._announce: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.cfg.name

    def _filter(self) -> AcceptFilterPort:
        if self.accept_filter is None:
            raise RuntimeError("accept_mode: false needs the nftables accept filter")
        return self.accept_filter

    def _routes(self) -> RoutePort:
        if self.routes is None:
            raise RuntimeError("virtual_routes / virtual_rules need the route manager")
        return self.routes

    def _tproxy(self) -> TransparentProxyPort:
        if self.tproxy is None:
            raise RuntimeError("tproxy needs the nftables transparent-proxy table")
        return self.tproxy

    @property
    def vip_interface(self) -> str:
        """Where the VIPs live: the virtual MAC link, or the instance's interface."""
        return self.vmac.name if self.vmac is not None else self.cfg.interface

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
            self.last_master_advert = {"at": time.time(), "from": str(source),
                                       "priority": adv.priority}
        if self.router.foreign_master and not was_foreign:
            self.counters["foreign_masters"] += 1
            self.log.warning("following foreign master %s (priority %d), which is not in peers: "
                             "a rogue or misconfigured router holds this VRID; find it, or "
                             "set strict_peers: true to ignore unlisted routers", source,
                             adv.priority)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch(self.router.handle_timer(self._loop.time()))

    # ---- output --------------------------------------------------------------------------

    def _dispatch(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Transition():
                    self._transition(action)
                case Dropped(reason, source, detail):
                    self.drops[reason.value] += 1
                    self.drops_log.warning(reason.value, "dropped advert from %s: %s", source,
                                           detail)
                case ForeignAdvert(source, priority):
                    self.counters["foreign_adverts"] += 1
                    self.drops_log.warning("foreign", "advert from %s (priority %d), which is "
                                           "not in peers: a rogue or misconfigured router",
                                           source, priority)
                case Mismatch(what, source, detail):
                    self.counters[f"{what}_mismatch"] += 1
                    self.drops_log.warning(f"{what}:{source}", "advert from %s %s", source,
                                           detail)
                case DualMaster(source):
                    self.counters["dual_master_reclaims"] += 1
                    self.log.warning("%s is also acting as master; announcing the VIPs again",
                                     source)
                case Notice(message):
                    self.log.warning("%s", message)
                case _:
                    self._queue.put_nowait(action)
        self._arm()

    def _arm(self) -> None:
        deadline = self.router.next_deadline()
        if self._timer is not None and (deadline is None or self._timer.when() != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _transition(self, t: Transition) -> None:
        record = TransitionRecord(time.time(), t.old, t.new, t.reason, t.cause)
        self.history.append(record)
        self.counters["transitions"] += 1
        self.state_since = record.at
        level = logging.WARNING if t.new is State.FAULT else logging.INFO
        self.log.log(level, "%s -> %s: %s", t.old, t.new, t.reason)
        for listener in self.listeners:
            self._loop.call_soon(listener, self, record)

    async def _work(self) -> None:
        while True:
            action = await self._queue.get()
            try:
                await self._execute(action)
            except Exception:  # one failed action must not stop the instance
                self.log.exception("could not carry out %s", action)
            finally:
                self._queue.task_done()

    async def _execute(self, action: Action) -> None:
        cfg = self.cfg
        match action:
            case SendAdvert(priority):
                self._send_advert(priority)
            case AddVips():
                await self._tell_handover("taking_over")  # forward an old master's flows first
                if self.vmac is not None:
                    await self.vmac.ensure()  # made now if the interface came up late
                    await self.vmac.up()
                if not self.router.accepts:  # before the VIPs: never accept for them
                    await self._filter().block(cfg.name, cfg.held)
                await self._add(cfg.held)
                self.vips_held = True
                if cfg.held_routes or cfg.held_rules:  # after the VIPs: a route may use one
                    await self._routes().add(cfg.held_routes, cfg.held_rules)
                if cfg.tproxy is not None:  # the rule first: a marked packet then goes local
                    await self._tproxy().mark(cfg.name, cfg.family, cfg.tproxy.fwmark)
                await self._tell_handover("took_over")
            case RemoveVips():
                self._stop_announcing()
                if cfg.tproxy is not None:
                    await self._tproxy().unmark(cfg.name)
                if cfg.held_routes or cfg.held_rules:
                    await self._routes().remove(cfg.held_routes, cfg.held_rules)
                await self._tell_handover("giving_up")  # a planned one keeps them on lo
                await self._remove(cfg.held)
                self.vips_held = False
                if not self.router.accepts:
                    await self._filter().unblock(cfg.name)
                if self.vmac is not None:
                    await self.vmac.down()
            case Announce():
                self._stop_announcing()
                self._announce = self._loop.create_task(self._announce_bursts())
                # Yield once so the first gratuitous ARP / NA round leaves before our advert:
                # the old master drops its VIPs on that advert, and hosts must already be
                # pointed here by then (make-before-break).
                await asyncio.sleep(0)

    async def _tell_handover(self, hook: str) -> None:
        """A draining hand-over hook (:mod:`vrrpd.drain.handover`); its failure is logged and
        never stops the VIP change."""
        if self.handover is None:
            return
        try:
            await getattr(self.handover, hook)(self)
        except Exception:
            self.log.exception("drain: %s failed; the VIPs change as without a drain", hook)

    async def _add(self, vips: Any) -> None:
        """Add ``vips``, each on its interface (its ``dev``, else :attr:`vip_interface`)."""
        for ifname, group in self.cfg.by_interface(vips, self.vip_interface).items():
            await self.addresses.add(ifname, group, self.cfg.vip_labels)

    async def _remove(self, vips: Any) -> None:
        for ifname, group in self.cfg.by_interface(vips, self.vip_interface).items():
            await self.addresses.remove(ifname, group)

    def _send_advert(self, priority: int) -> None:
        cfg = self.cfg
        auth = self.router.params.auth_data
        adv = Advertisement(cfg.version, cfg.vrid, priority, cfg.advert_interval_cs,
                            self.router.params.addresses,
                            AUTH_NONE if auth is None else AUTH_SIMPLE_TEXT,
                            auth_data=V2_AUTH_DATA if auth is None else auth)
        src = self.router.params.primary_address  # src_ip, else the interface's
        if src is None:  # the interface became unusable: this instance is going to FAULT
            self.counters["send_errors"] += 1
            return
        # Multicast adverts leave from the virtual MAC; unicast ones from the interface (see
        # vrrpd.kernel.vmac).
        transmit = self.vmac if self.vmac is not None and not cfg.unicast_peers else self.endpoint
        for dst in cfg.unicast_peers or (self.endpoint.group,):
            try:
                transmit.send(encode(adv, src, dst, self.router.send_form), dst, cfg.src_ip)
            except OSError as exc:
                self.counters["send_errors"] += 1
                self.drops_log.warning("send", "cannot send advert to %s: %s (is %s up?)", dst,
                                       exc, cfg.interface)
                continue
            self.counters["adverts_sent"] += 1
            if priority == 0:
                self.counters["priority_zero_sent"] += 1

    async def _announce_bursts(self) -> None:
        """Gratuitous ARP / unsolicited NA: a burst now and, if still master, one later; then,
        with ``announce.refresh`` (keepalived's garp_master_refresh), one every ``refresh``
        seconds while master.  Cancelled when the VIPs go."""
        await self._burst(self.cfg.held)
        if self.cfg.announce.repeat_delay > 0:
            await asyncio.sleep(self.cfg.announce.repeat_delay)
            if self.router.state is State.MASTER:
                await self._burst(self.cfg.held)
        while self.cfg.announce.refresh > 0 and self.router.state is State.MASTER:
            await asyncio.sleep(self.cfg.announce.refresh)
            if self.router.state is State.MASTER:
                await self._burst(self.cfg.held, self.cfg.announce.refresh_count)

    async def _burst(self, vips: Any, count: int | None = None) -> None:
        """One burst for ``vips`` (``count`` frames each, default ``announce.count``); NAs come
        from our advert source, the link-local address."""
        cfg, source = self.cfg, self.endpoint.primary_address
        na_source = source if source is not None and source.version == 6 else None
        for ifname, group in cfg.by_interface(vips, self.vip_interface).items():
            if ifname not in self.announcers:
                await self.announcer.send_burst(group, count or cfg.announce.count,
                                                cfg.announce.interval, na_source=na_source,
                                                na_router=cfg.na_router_flag)
                continue
            # a VIP with another dev (IPv4, the loader says so): gratuitous ARP there; that
            # interface is not watched, so bind and read its MAC now
            try:
                self.announcers[ifname].refresh_addresses()
                await self.announcers[ifname].send_burst(group, count or cfg.announce.count,
                                                         cfg.announce.interval)
            except OSError as exc:
                self.drops_log.warning("announce", "cannot announce %s on %s: %s (is it up?)",
                                       ", ".join(map(str, group)), ifname, exc)
        self.counters["announcements"] += 1

    def _stop_announcing(self) -> None:
        if self._announce is not None and not self._announce.done():
            self._announce.cancel()
        self._announce = None

    async def reconfigure(self, change: InstanceChange) -> None:
        """Apply a changed configuration in place (same interface, VRID and version).

        The state is kept; a master adds the new VIPs and removes the dropped ones, and nothing
        else is touched (no VIP is removed and re-added).
        """
        cfg = self.cfg = change.new
        self.post(Reconfigure(self._params(cfg)))
        if self.vips_held and (change.added_vips or change.removed_vips):
            if not self.router.accepts:  # the chain follows the VIP list, before any is added
                await self._filter().block(cfg.name, cfg.held)
            if change.added_vips:
                await self._add(change.added_vips)
                await self._burst(change.added_vips)
            if change.removed_vips:
                await self._remove(change.removed_vips)
            self.log.info("reload: VIPs added %s, removed %s",
                          [str(v) for v in change.added_vips],
                          [str(v) for v in change.removed_vips])

    # ---- lifecycle -----------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued critical action has been carried out."""
        await self._queue.join()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stop_announcing()
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        if self.vmac is not None:
            await self.vmac.close()

    # ---- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        cfg, r = self.cfg, self.router
        return {
            "name": cfg.name,
            "interface": cfg.interface,
            "vrid": cfg.vrid,
            "version": cfg.version,
            "family": cfg.family,
            "state": r.state.value,
            "since": self.state_since,
            "time_in_state": round(time.time() - self.state_since, 3),
            "priority": cfg.priority,
            "effective_priority": r.priority,
            "preempt": r.preempt,
            "admin": r.admin.value,
            "faults": sorted(r.faults),
            "master": str(r.master_address) if r.master_address else None,
            "foreign_master": r.foreign_master,
            "peers": [str(p) for p in cfg.peers],
            "strict_peers": cfg.strict_peers,
            "vips": [str(v) for v in cfg.vips],
            "vips_held": self.vips_held,
            "accept_mode": self.router.accepts,
            "virtual_mac": ({"link": self.vmac.name, "mac": self.vmac.mac.hex(":")}
                            if self.vmac is not None else None),
            "advert_interval": cfg.advert_interval_cs / 100,
            "master_advert_interval": r.master_adver_int / 100,
            "checksum_form": self.router.send_form.value if cfg.version == 3 else None,
            # for `vrrpctl check` and the metrics: is someone else master, is anyone?
            "last_master_advert": self.last_master_advert,
            "master_down_interval": round(r.master_down_interval(), 3),
            "transitions": [t.as_dict() for t in self.history],
            "counters": dict(self.counters),
            "dropped": dict(self.drops),
        }
