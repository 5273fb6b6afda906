"""A discrete-event simulation of VRRP routers on one LAN, for the simulation test ring.

Each :class:`Member` is one :class:`~vrrpd.proto.router.VirtualRouter` driven the way the
daemon's driver drives it: events go in through ``handle(event, now)``, one timer is armed at
``next_deadline()`` and fires ``handle_timer(now)``, and the returned actions are executed in
order.  :class:`~vrrpd.proto.events.SendAdvert` goes through the real codec: the advert is
``encode()``-d once and every other member on the VRID ``decode()``-s the bytes after
``Link.delay`` seconds, unless the seeded random loss or a cut link drops them.

The clock is fake: :meth:`Simulation.run_until` jumps from one scheduled moment to the next, so
ten minutes of VRRP take milliseconds.  Everything observable is recorded in
:attr:`Simulation.log` in execution order, which is the timeline tests assert on.

Sync groups use the daemon's own :class:`~vrrpd.daemon.groups.SyncGroup`: every executed
:class:`~vrrpd.proto.events.Transition` is passed to it, and the events it posts to siblings are
fed to them at the same instant, after the current action list.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from vrrpd.config.model import SyncGroupConfig
from vrrpd.daemon.groups import SyncGroup
from vrrpd.proto.events import (
    Action,
    AddVips,
    AdvertReceived,
    Event,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    Transition,
)
from vrrpd.proto.packet import Advertisement, IPAddress, decode, encode
from vrrpd.proto.router import RouterParams, VirtualRouter

VRRP_GROUP_V4 = IPv4Address("224.0.0.18")  # RFC 5798 §5.1.1.2
VRRP_GROUP_V6 = IPv6Address("ff02::12")  # RFC 5798 §5.1.2.2


@dataclass
class Link:
    """The LAN: one-way delay in seconds and independent per-receiver loss probability."""

    delay: float = 0.001
    loss: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Record:
    """One executed action of one member, at simulated time ``time``."""

    time: float
    member: str
    action: Action


@dataclass
class Member:
    """One virtual router of the simulation and its driver's view of it."""

    name: str
    params: RouterParams
    sim: Simulation
    router: VirtualRouter = field(init=False)
    running: bool = False
    holds_vips: bool = False
    groups: list[SyncGroup] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.router = VirtualRouter(self.params)

    # The vrrpd.daemon.groups.Member protocol:
    @property
    def state(self) -> State:
        return self.router.state

    @property
    def faults(self) -> set[str]:
        return self.router.faults

    def post(self, event: Event) -> None:
        self.sim.at(self.sim.now, self.name, event)


class StuckTimerError(AssertionError):
    """handle_timer(now) left next_deadline() at or before now: a driver would spin."""


class Simulation:
    """N members on one simulated link with a fake clock."""

    def __init__(self, link: Link | None = None) -> None:
        self.link = link or Link()
        self.now = 0.0
        self.members: dict[str, Member] = {}
        self.log: list[Record] = []
        self.blocked: set[tuple[str, str]] = set()  # (sender, receiver) pairs cut off
        self.delivered = 0
        self.lost = 0
        self._rng = random.Random(self.link.seed)
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    # ---- building ------------------------------------------------------------------------

    def add(self, name: str, params: RouterParams) -> Member:
        member = Member(name, params, self)
        self.members[name] = member
        return member

    def sync_group(self, name: str, *members: str) -> SyncGroup:
        """Make the named members (one node's instances) a sync group."""
        group = SyncGroup(SyncGroupConfig(name, members), [self.members[m] for m in members])
        for member in members:
            self.members[member].groups.append(group)
        return group

    def start(self, *names: str) -> None:
        """Start the named members (all when none is named) now, in order."""
        for name in names or tuple(self.members):
            member = self.members[name]
            member.router = VirtualRouter(member.params)
            member.running = True
            self.inject(name, Startup())

    # ---- faults and operators ------------------------------------------------------------

    def inject(self, name: str, event: Event) -> None:
        """Feed ``event`` to ``name`` now, as the driver would."""
        member = self.members[name]
        if member.running:
            self._execute(member, member.router.handle(event, self.now))

    def at(self, time: float, name: str, event: Event) -> None:
        """Feed ``event`` to ``name`` at simulated ``time``."""
        self._schedule(time, lambda: self.inject(name, event))

    def stop(self, name: str, *, graceful: bool) -> None:
        """Stop ``name``: with the Shutdown event, or a crash (nothing more sent, received or
        timed; the VIPs go with the node, without a RemoveVips in the log)."""
        member = self.members[name]
        if graceful:
            self.inject(name, Shutdown())
        member.running = False
        member.holds_vips = False

    def cut(self, *names: str) -> None:
        """Cut the named members off from everyone else (both directions)."""
        for name in names:
            for other in self.members:
                if other != name:
                    self.blocked |= {(name, other), (other, name)}

    def heal(self) -> None:
        self.blocked.clear()

    # ---- running -------------------------------------------------------------------------

    def run_until(self, end: float) -> None:
        """Execute everything scheduled up to and including ``end``, then set the clock there."""
        while self._step(end):
            pass
        self.now = max(self.now, end)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until_true(self, predicate: Callable[[], bool], timeout: float) -> float:
        """Run until ``predicate()`` holds and return the time; fail after ``timeout``."""
        end = self.now + timeout
        while not predicate():
            if not self._step(end):
                raise AssertionError(f"condition not met within {timeout}s (t={self.now:.3f})")
        return self.now

    # ---- observing -----------------------------------------------------------------------

    def state(self, name: str) -> State:
        return self.members[name].router.state

    def masters(self) -> list[str]:
        return [m.name for m in self.members.values()
                if m.running and m.router.state is State.MASTER]

    def transitions(self, name: str | None = None) -> list[tuple[float, str, Transition]]:
        return [(r.time, r.member, r.action) for r in self.log
                if isinstance(r.action, Transition) and name in (None, r.member)]

    def vip_holders_timeline(self, members: tuple[str, ...]) -> list[tuple[float, int]]:
        """(time, number of ``members`` holding the VIPs) after every Add/RemoveVips, in
        execution order."""
        holding: set[str] = set()
        timeline = []
        for record in self.log:
            if record.member in members and isinstance(record.action, AddVips | RemoveVips):
                if isinstance(record.action, AddVips):
                    holding.add(record.member)
                else:
                    holding.discard(record.member)
                timeline.append((record.time, len(holding)))
        return timeline

    # ---- the driver ----------------------------------------------------------------------

    def _schedule(self, time: float, fire: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (time, next(self._seq), fire))

    def _step(self, end: float) -> bool:
        """Advance the clock to the earliest scheduled item (a delivery or injection) or armed
        member timer and execute it, unless that is after ``end``.  Scheduled items win ties:
        a packet that arrives as a timer expires is heard first."""
        best: tuple[float, Callable[[], None]] | None = None
        if self._queue:
            best = (self._queue[0][0], lambda: heapq.heappop(self._queue)[2]())
        for member in self.members.values():
            deadline = member.router.next_deadline() if member.running else None
            if deadline is not None and (best is None or deadline < best[0]):
                best = (deadline, lambda m=member: self._fire_timer(m))  # type: ignore[misc]
        if best is None or best[0] > end:
            return False
        self.now = max(self.now, best[0])
        best[1]()
        return True

    def _fire_timer(self, member: Member) -> None:
        self._execute(member, member.router.handle_timer(self.now))
        deadline = member.router.next_deadline()
        if member.running and deadline is not None and deadline <= self.now:
            raise StuckTimerError(f"{member.name}: next_deadline {deadline} <= now {self.now}")

    def _execute(self, member: Member, actions: list[Action]) -> None:
        """Run the actions in order, as the driver does."""
        for action in actions:
            self.log.append(Record(self.now, member.name, action))
            match action:
                case SendAdvert(priority):
                    self._send(member, priority)
                case AddVips():
                    member.holds_vips = True
                case RemoveVips():
                    member.holds_vips = False
                case Transition(old, new, _reason, cause):
                    for group in member.groups:
                        group.on_transition(member, old, new, cause)

    def _send(self, sender: Member, priority: int) -> None:
        p = sender.params
        dst = VRRP_GROUP_V4 if isinstance(p.primary_address, IPv4Address) else VRRP_GROUP_V6
        advert = Advertisement(p.version, p.vrid, priority, p.advert_interval_cs, p.addresses)
        data = encode(advert, p.primary_address, dst, sender.router.send_form)
        for receiver in self.members.values():
            if (receiver is sender or receiver.params.vrid != p.vrid
                    or (sender.name, receiver.name) in self.blocked):
                continue
            if self._rng.random() < self.link.loss:
                self.lost += 1
                continue
            self._schedule(self.now + self.link.delay,
                           lambda r=receiver: self._deliver(r, data, p.primary_address, dst))

    def _deliver(self, receiver: Member, data: bytes, src: IPAddress, dst: IPAddress) -> None:
        if receiver.running:
            self.delivered += 1
            self.inject(receiver.name, AdvertReceived(decode(data, src, dst), src))
