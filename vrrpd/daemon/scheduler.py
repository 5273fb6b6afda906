"""One timer for every virtual router: a heap of deadlines behind a single asyncio timer.

Each :class:`~vrrpd.daemon.instance.InstanceDriver` has one deadline at a time
(``router.next_deadline()``: Adver_Timer, Master_Down_Timer, a preempt delay, a hand-over,
RFC 5798 §6.2).  With 255 instances at 0.1 s that is 2,550 expiries a second; an asyncio
``TimerHandle`` each (made, pushed, cancelled on every advert a backup hears) and a loop
wake-up each cost more than the VRRP work itself (profile in the README, "Footprint").
Here a deadline is a tuple on one heap, and one asyncio timer waits for the earliest.

Two rules keep that cheap and exact enough:

* **Lazy re-arming.**  A deadline that moves later (a backup hearing its master re-arms
  Master_Down_Timer) leaves the earlier entry on the heap; when it comes up, the driver finds
  nothing due and re-arms.  Only an earlier deadline is pushed.
* **Slack.**  Every deadline due within :data:`SLACK` of the earliest one fires in the same
  wake-up, each *at its own deadline* (the time the driver hands its state machine), so a
  master's Adver_Timer keeps its schedule and adverts leave at most ``SLACK`` early.  The
  Linux kernel coalesces timers the same way (``timer_slack_ns``, prctl(2)).

Before firing a backup's deadline the scheduler runs its ``before_expiry`` hooks (the daemon
reads the VRRP sockets there): an advert that arrived in time but is still queued behind a
busy loop must count, not lose the master its role.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

SLACK = 0.001  # seconds: deadlines this close to the earliest fire with it


class Timed(Protocol):
    """What the scheduler needs of a driver."""

    @property
    def expiry_needs_input(self) -> bool:
        """True when the deadline would act on silence (a backup's Master_Down_Timer)."""
        ...

    def on_deadline(self, deadline: float) -> None:
        """The deadline armed with :meth:`Scheduler.arm` has come; ``deadline`` is its time."""
        ...


class Scheduler:
    """Deadlines of many drivers on one asyncio timer (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None,
                 slack: float = SLACK) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self.slack = slack
        self._heap: list[tuple[float, int, Timed]] = []
        self._wanted: dict[Timed, float] = {}  # the deadline each driver has armed
        self._queued: dict[Timed, float] = {}  # its earliest entry on the heap
        self._order = itertools.count()  # ties fire in arming order
        self._handle: asyncio.TimerHandle | None = None
        self.before_expiry: list[Callable[[], None]] = []

    def arm(self, who: Timed, deadline: float | None) -> None:
        """``who``'s next deadline is ``deadline`` (None: nothing armed)."""
        if deadline is None:
            self._wanted.pop(who, None)  # its heap entry goes stale
            return
        self._wanted[who] = deadline
        queued = self._queued.get(who)
        if queued is None or deadline < queued:
            self._push(who, deadline)
        # else lazy: the earlier entry comes up first and finds the later deadline

    def _push(self, who: Timed, when: float) -> None:
        self._queued[who] = when
        heapq.heappush(self._heap, (when, next(self._order), who))
        if self._handle is None or when < self._handle.when():
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._handle = None
        now = self._loop.time()
        horizon = now + self.slack
        due: dict[Timed, float] = {}
        while self._heap and self._heap[0][0] <= horizon:
            when, _, who = heapq.heappop(self._heap)
            if self._queued.get(who) == when:
                del self._queued[who]
            wanted = self._wanted.get(who)
            if wanted is not None and wanted <= horizon:
                due[who] = wanted
            elif wanted is not None and who not in self._queued:
                self._push(who, wanted)  # moved later while its entry waited
        if any(who.expiry_needs_input for who in due):
            for hook in self.before_expiry:
                hook()
        for who in due:
            wanted = self._wanted.get(who)
            if wanted is not None and wanted <= horizon:
                del self._wanted[who]
                who.on_deadline(max(wanted, now))
            elif wanted is not None and who not in self._queued:
                self._push(who, wanted)  # an advert read by the hooks moved it later
        if self._heap and self._handle is None:
            self._handle = self._loop.call_at(self._heap[0][0], self._expire)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._heap.clear()
        self._wanted.clear()
        self._queued.clear()
