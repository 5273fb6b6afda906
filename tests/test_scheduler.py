"""The shared deadline heap (vrrpd/daemon/scheduler.py) on a real event loop."""

from __future__ import annotations

import asyncio

from vrrpd.daemon.scheduler import Scheduler


class Driver:
    """Records when its deadlines fire; ``then`` re-arms like a driver does."""

    def __init__(self, sched: Scheduler, backup: bool = False) -> None:
        self.sched = sched
        self.backup = backup
        self.fired: list[float] = []
        self.then: float | None = None

    @property
    def expiry_needs_input(self) -> bool:
        return self.backup

    def on_deadline(self, deadline: float) -> None:
        self.fired.append(deadline)
        if self.then is not None:
            self.sched.arm(self, deadline + self.then)


def run(scenario):  # type: ignore[no-untyped-def]
    return asyncio.run(scenario())


def test_deadlines_fire_in_order_at_their_own_time() -> None:
    """Each fires once, with its own deadline as the time (or later, never earlier than
    SLACK before it), in deadline order."""
    async def scenario() -> tuple[list[float], list[float], float]:
        loop = asyncio.get_running_loop()
        sched = Scheduler()
        a, b = Driver(sched), Driver(sched)
        t0 = loop.time()
        sched.arm(b, t0 + 0.03)
        sched.arm(a, t0 + 0.01)
        await asyncio.sleep(0.06)
        return a.fired, b.fired, t0

    a, b, t0 = run(scenario)
    assert len(a) == 1 and len(b) == 1
    assert t0 + 0.01 <= a[0] < t0 + 0.03 <= b[0]


def test_a_later_deadline_rearms_lazily_and_fires_once() -> None:
    """A backup hearing its master moves Master_Down_Timer later on every advert: nothing is
    pushed, the early entry finds the later deadline and waits for it; disarming stops it."""
    async def scenario() -> tuple[list[float], list[float], int, float]:
        loop = asyncio.get_running_loop()
        sched = Scheduler()
        moved, disarmed = Driver(sched), Driver(sched)
        t0 = loop.time()
        sched.arm(moved, t0 + 0.01)
        for i in range(1, 50):
            sched.arm(moved, t0 + 0.01 + i * 0.001)  # later each time
        pushed = len(sched._heap)
        sched.arm(disarmed, t0 + 0.02)
        sched.arm(disarmed, None)
        await asyncio.sleep(0.1)
        return moved.fired, disarmed.fired, pushed, t0

    moved, disarmed, pushed, t0 = run(scenario)
    assert pushed == 1
    assert moved == [moved[0]] and moved[0] >= t0 + 0.059
    assert disarmed == []


def test_an_earlier_deadline_fires_early() -> None:
    async def scenario() -> tuple[list[float], float]:
        loop = asyncio.get_running_loop()
        sched = Scheduler()
        d = Driver(sched)
        t0 = loop.time()
        sched.arm(d, t0 + 1.0)
        sched.arm(d, t0 + 0.01)
        await asyncio.sleep(0.05)
        sched.close()
        return d.fired, t0

    fired, t0 = run(scenario)
    assert len(fired) == 1 and fired[0] < t0 + 0.05


def test_deadlines_within_slack_share_one_wakeup_and_keep_their_schedule() -> None:
    """Ten masters due within SLACK of each other fire in one wake-up, each at its own
    deadline (or later, when the loop wakes late), so re-armed from there their next adverts
    keep the interval: never more than SLACK early."""
    async def scenario() -> tuple[list[Driver], int]:
        loop = asyncio.get_running_loop()
        sched = Scheduler(slack=0.002)
        wakeups = 0
        expire = sched._expire

        def counting() -> None:
            nonlocal wakeups
            wakeups += 1
            expire()

        sched._expire = counting  # type: ignore[method-assign]
        t0 = loop.time() + 0.01
        drivers = []
        for i in range(10):
            d = Driver(sched)
            d.then = 0.05
            sched.arm(d, t0 + i * 0.0001)
            drivers.append(d)
        await asyncio.sleep(0.13)
        sched.close()
        return drivers, wakeups

    drivers, wakeups = run(scenario)
    assert all(len(d.fired) == 3 for d in drivers)
    assert wakeups <= 6  # 3 rounds, not 30
    for d in drivers:  # never more than SLACK early (a loaded machine may wake us late)
        gaps = [b - a for a, b in zip(d.fired, d.fired[1:], strict=False)]
        assert all(g > 0.05 - 0.0021 for g in gaps), gaps


def test_input_is_read_before_a_backup_acts_on_silence() -> None:
    """The hook runs before a backup's deadline (and only then); an advert it reads moves the
    deadline later, so the backup does not fire."""
    async def scenario() -> tuple[list[float], list[float], int]:
        loop = asyncio.get_running_loop()
        sched = Scheduler()
        master, backup = Driver(sched), Driver(sched, backup=True)
        reads = 0

        def read() -> None:
            nonlocal reads
            reads += 1
            sched.arm(backup, loop.time() + 0.5)  # the advert that was waiting

        sched.before_expiry.append(read)
        t0 = loop.time()
        sched.arm(master, t0 + 0.01)
        sched.arm(backup, t0 + 0.04)
        await asyncio.sleep(0.08)
        sched.close()
        return master.fired, backup.fired, reads

    master, backup, reads = run(scenario)
    assert len(master) == 1 and backup == [] and reads == 1
