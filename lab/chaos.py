"""Fault injection against two real vrrpd processes: partitions, link flaps, SIGKILL, starvation.

The lab tests (``tests/lab/test_chaos.py``, short runs with assertions) and the benchmark
(``benchmarks/chaos.py``, long runs with a report) share these scenarios.  Topology::

    lb1  192.0.2.11  priority 150 --+
    lb2  192.0.2.12  priority 100 --+-- switch       VIP 192.0.2.100/24, VRID 51
    obs  192.0.2.40  (observer)   --+                (vrrpd on lb1 and lb2 only)

:class:`ChaosPair` runs vrrpd on lb1 and lb2 (the ``web`` instance), a :class:`HolderMonitor`
thread that asks both kernels every millisecond which of them holds the VIP (netlink), and a
:class:`~lab.sniff.Sniffer` in ``obs`` that sees every advert and gratuitous ARP.  A
partition isolates lb1's and lb2's switch ports from each other (bridge port isolation): the
carrier stays up, so neither daemon sees a link fault, and ``obs`` still hears both.

Every scenario returns a small result dataclass; times are seconds from the fault (or the heal,
or the last flap) to what the field names.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.netns import Node, Topology
from lab.phase import random_phase
from lab.sniff import Sniffer
from vrrpd.control.client import ControlError
from vrrpd.proto.timers import master_down_interval, skew_time

VIP = "192.0.2.100/24"
VIP_ADDR = VIP.split("/")[0]
VRID = 51
LBS = {"lb1": ("192.0.2.11/24", "2001:db8::11/64", 150),
       "lb2": ("192.0.2.12/24", "2001:db8::12/64", 100)}
OBSERVER = ("obs", "192.0.2.40/24", "2001:db8::40/64")
SPIN = ("import sys, time\nend = time.monotonic() + float(sys.argv[1])\n"
        "while time.monotonic() < end: pass")  # a bounded busy loop: argv[1] seconds

Holders = frozenset[str]


class HolderMonitor:
    """Which nodes hold ``vip``, asked every ``poll`` seconds in a thread; keeps the changes.

    The thread opens and uses its own netlink sockets: a pyroute2 socket answers only in the
    thread that opened it.
    """

    def __init__(self, nodes: dict[str, Node], vip: str, poll: float = 0.001) -> None:
        self.vip = vip
        self.poll = poll
        self._nodes = nodes
        self._changes: list[tuple[float, Holders]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holders", daemon=True)
        self._thread.start()
        wait_for(lambda: self._changes, 5, "the first VIP holder sample", poll=0.005)

    def _run(self) -> None:
        probes = {name: AddressProbe(node) for name, node in self._nodes.items()}
        last: Holders | None = None
        try:
            while not self._stop.is_set():
                now = frozenset(n for n, p in probes.items() if p.has(self.vip))
                if now != last:
                    with self._lock:
                        self._changes.append((time.monotonic(), now))
                    last = now
                time.sleep(self.poll)
        finally:
            for probe in probes.values():
                probe.close()

    def holders(self) -> Holders:
        with self._lock:
            return self._changes[-1][1]

    def spans(self, since: float, until: float | None = None) -> list[tuple[float, float, Holders]]:
        """``(begin, end, holders)`` for every stretch overlapping ``since .. until`` (now)."""
        until = time.monotonic() if until is None else until
        with self._lock:
            changes = list(self._changes)
        out = []
        for i, (begin, holders) in enumerate(changes):
            end = changes[i + 1][0] if i + 1 < len(changes) else until
            if end > since and begin < until:
                out.append((max(begin, since), min(end, until), holders))
        return out

    def longest(self, predicate: Callable[[Holders], bool], since: float,
                until: float | None = None) -> float:
        """The longest stretch (seconds) in ``since .. until`` whose holders match."""
        return max((e - b for b, e, h in self.spans(since, until) if predicate(h)), default=0.0)

    def settled_at(self, holders: Holders, since: float) -> float | None:
        """When the holders became ``holders`` for the last time (None if they are not now)."""
        spans = self.spans(since)
        return spans[-1][0] if spans and spans[-1][2] == holders else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _lost(h: Holders) -> bool:
    return not h


def _dual(h: Holders) -> bool:
    return len(h) > 1


class ChaosPair:
    """lb1 and lb2 running vrrpd (one instance ``web``), an observer, a holder monitor.

    Built and settled (lb1 MASTER) on construction.  A context manager: daemons, threads and
    namespaces are gone after ``with``, also when building failed half-way.
    """

    def __init__(self, workdir: Path, *, interval: float = 0.1, version: int = 3,
                 realtime_priority: int = 0) -> None:
        self.interval = interval
        self.version = version
        self.lab = Topology()
        self.vrrpd: dict[str, Vrrpd] = {}
        self.monitor: HolderMonitor | None = None
        self.sniffer: Sniffer | None = None
        try:
            for name, (ipv4, ipv6, priority) in LBS.items():
                node = self.lab.add_node(name, ipv4, ipv6)
                self.vrrpd[name] = Vrrpd(node, workdir, [{
                    "name": "web", "interface": node.ifname, "vrid": VRID,
                    "priority": priority, "version": version, "advert_interval": interval,
                    "vips": [VIP]}], realtime_priority=realtime_priority)
            self.observer = self.lab.add_node(*OBSERVER)
            self.macs = {name: self.lab.nodes[name].ns.run(
                ["cat", f"/sys/class/net/{self.lab.nodes[name].ifname}/address"]).stdout.strip()
                for name in LBS}
            self._start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ChaosPair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> None:
        """lb1 MASTER, then lb2 BACKUP; the VIP on lb1 only; monitor and sniffer running."""
        self.vrrpd["lb1"].start().wait_state("web", "MASTER")
        self.vrrpd["lb2"].start().wait_state("web", "BACKUP")
        self.monitor = HolderMonitor({n: self.lab.nodes[n] for n in LBS}, VIP)
        self.sniffer = Sniffer(self.observer)
        self.wait_settled()

    # ---- observations --------------------------------------------------------------------

    def mdi(self, node: str) -> float:
        """Master_Down_Interval of ``node`` (seconds)."""
        return master_down_interval(self.version, LBS[node][2], round(self.interval * 100))

    def skew(self, node: str) -> float:
        return skew_time(self.version, LBS[node][2], round(self.interval * 100))

    def alive(self, node: str) -> bool:
        """The daemon runs (a zombie, or a reaped process, is dead)."""
        proc = self.vrrpd[node].proc
        return proc is not None and proc.poll() is None

    def states(self) -> dict[str, str]:
        """State of ``web`` on each node whose daemon runs and answers."""
        states = {}
        for name, daemon in self.vrrpd.items():
            if self.alive(name):
                with contextlib.suppress(ControlError, OSError):  # starting up
                    states[name] = daemon.state("web")
        return states

    def masters(self) -> list[str]:
        return sorted(n for n, s in self.states().items() if s == "MASTER")

    def transitions(self) -> dict[str, int]:
        """Transitions of ``web`` so far, per running daemon."""
        return {n: d.instance("web")["counters"].get("transitions", 0)
                for n, d in self.vrrpd.items() if self.alive(n)}

    def holders(self) -> Holders:
        assert self.monitor is not None
        return self.monitor.holders()

    def wait_settled(self, master: str = "lb1", timeout: float = 10) -> float:
        """Wait until ``master`` is the only MASTER and the only VIP holder; seconds taken."""
        return wait_for(lambda: self.masters() == [master]
                        and self.holders() == frozenset({master}), timeout,
                        f"{master} alone MASTER and VIP holder", poll=0.002)

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"---- {n} vrrpd ----\n{d.log()[-tail:]}" for n, d in self.vrrpd.items())

    def close(self) -> None:
        for part in (self.sniffer, self.monitor):
            if part is not None:
                part.stop()
        for d in self.vrrpd.values():
            d.stop()
        self.lab.close()


# ---- scenarios -----------------------------------------------------------------------------


@dataclass
class PartitionResult:
    """Partition (carrier up) and heal.  Times in seconds."""

    split_brain_after: float  # cut -> both MASTER
    one_master_after: float  # heal -> only lb1 MASTER
    dual_vip_for: float  # heal -> the VIP on lb1 only
    garp_after: float | None  # heal -> lb1's first gratuitous ARP for the VIP (None: none)
    lost_vip_for: float  # longest time no node held the VIP, cut .. settled
    masters: list[str] = field(default_factory=list)  # at the end


def partition_heal(pair: ChaosPair, hold: float = 1.0) -> PartitionResult:
    """Isolate lb1 and lb2 from each other until both are MASTER, hold, heal.

    The hold gets a random part of an advert interval on top, so that the heal falls at a
    random phase of both masters' advert schedules (which decides whose advert crosses first).
    """
    assert pair.monitor is not None and pair.sniffer is not None
    pair.wait_settled()
    cut = time.monotonic()
    pair.lab.set_isolated("lb1", True)
    pair.lab.set_isolated("lb2", True)
    try:
        split = wait_for(lambda: pair.masters() == ["lb1", "lb2"], pair.mdi("lb2") + 5,
                         "both nodes MASTER while partitioned", poll=0.002)
        time.sleep(hold + random.uniform(0, pair.interval))
    finally:
        # An isolated port still forwards to and from one that is not: lb1's port back is the
        # heal.  Stamped when that command has returned: its fork and exec are not the
        # daemons' time, and the stamp is late only by its exit after the kernel's change.
        pair.lab.set_isolated("lb1", False)
        heal_wall, heal = time.time(), time.monotonic()
        pair.lab.set_isolated("lb2", False)
    one = wait_for(lambda: pair.masters() == ["lb1"], 5, "one master after the heal",
                   poll=0.002)
    pair.wait_settled()
    settled = pair.monitor.settled_at(frozenset({"lb1"}), heal)
    assert settled is not None
    with contextlib.suppress(AssertionError):  # none within a second is a result, not an error
        wait_for(lambda: _garps(pair, "lb1", heal_wall), 1, "a GARP from lb1", poll=0.005)
    garps = _garps(pair, "lb1", heal_wall)
    return PartitionResult(
        split_brain_after=split, one_master_after=one, dual_vip_for=max(0.0, settled - heal),
        garp_after=garps[0] - heal_wall if garps else None,
        lost_vip_for=pair.monitor.longest(_lost, cut), masters=pair.masters())


def _garps(pair: ChaosPair, node: str, since: float) -> list[float]:
    """Receive times at the observer of ``node``'s gratuitous ARPs for the VIP."""
    assert pair.sniffer is not None
    return [f.at for f in pair.sniffer.frames("garp", since)
            if f.target == VIP_ADDR and f.mac == pair.macs[node]]


@dataclass
class FlapResult:
    """lb1's cable plugged and pulled every ``period`` seconds.  Times in seconds."""

    flaps: int  # link changes made
    settle_after: float  # last flap (link up) -> lb1 alone MASTER and VIP holder
    lost_vip_for: float  # longest time no node held the VIP
    dual_vip_for: float  # longest time both held it
    transitions: dict[str, int]  # per node, during the flapping and settling
    alive: dict[str, bool]


def flap(pair: ChaosPair, period: float = 0.2, duration: float = 6.0) -> FlapResult:
    """Toggle lb1's switch port every ``period`` for ``duration`` seconds, ending up."""
    assert pair.monitor is not None
    pair.wait_settled()
    before = pair.transitions()
    start = time.monotonic()
    count = max(2, round(duration / period) // 2 * 2)  # even: the last change is "up"
    try:
        for i in range(count):
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pair.lab.set_link("lb1", up=i % 2 == 1)
    finally:
        last = time.monotonic()
        pair.lab.set_link("lb1", up=True)
    pair.wait_settled(timeout=pair.mdi("lb1") + 5)
    settled = pair.monitor.settled_at(frozenset({"lb1"}), last)
    assert settled is not None
    after = pair.transitions()
    return FlapResult(
        flaps=count, settle_after=max(0.0, settled - last),
        lost_vip_for=pair.monitor.longest(_lost, start),
        dual_vip_for=pair.monitor.longest(_dual, start),
        transitions={n: after.get(n, 0) - before.get(n, 0) for n in LBS},
        alive={n: pair.alive(n) for n in LBS})


@dataclass
class KillResult:
    """vrrpd SIGKILLed on the master (lb1) and restarted.  Times in seconds."""

    phase_delay: float  # the random wait before the kill (lab.phase)
    takeover_after: float  # kill -> lb2 holds the VIP
    stale_vip_left: bool  # lb1's kernel still held the VIP when lb2 took over
    reconcile_after: float  # restart -> lb1's stale VIP removed (startup reconcile)
    reconcile_logged: bool  # the daemon logged the removal
    preempt_after: float  # restart -> lb1 alone MASTER and VIP holder again
    lost_vip_for: float  # longest time no node held the VIP, kill .. preempted back


def sigkill(pair: ChaosPair) -> KillResult:
    """SIGKILL lb1's vrrpd (no priority 0, VIP left behind) at a random phase of its advert
    interval (:mod:`lab.phase`); lb2 takes over; restart lb1."""
    assert pair.monitor is not None
    pair.wait_settled()
    delay = random_phase(pair.interval)
    victim = pair.vrrpd["lb1"]
    log_mark = len(victim.log())
    killed = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    took = wait_for(lambda: "lb2" in pair.holders(), pair.mdi("lb2") + 5, "lb2 to hold the VIP")
    stale = "lb1" in pair.holders()
    assert victim.proc is not None
    victim.proc.wait(5)  # reaps it: a zombie would count as dead
    restart = time.monotonic()
    victim.start(wait=False)
    reconciled = wait_for(lambda: "lb1" not in pair.holders(), 10,
                          "lb1's stale VIP to be removed") if stale else 0.0
    pair.wait_settled(timeout=pair.mdi("lb1") + 10)
    settled = pair.monitor.settled_at(frozenset({"lb1"}), restart)
    assert settled is not None
    return KillResult(
        phase_delay=delay, takeover_after=took, stale_vip_left=stale, reconcile_after=reconciled,
        reconcile_logged="left by an earlier run" in victim.log()[log_mark:],
        preempt_after=settled - restart, lost_vip_for=pair.monitor.longest(_lost, killed))


@dataclass
class StarveResult:
    """Both cores kept busy by spinning processes (nice 0)."""

    seconds: float
    workers: int
    transitions: dict[str, int]  # per node during the load (any is a false transition)
    lost_vip_for: float
    dual_vip_for: float
    alive: dict[str, bool]
    masters: list[str]  # right after the load


def starve(pair: ChaosPair, seconds: float = 20.0, workers: int | None = None) -> StarveResult:
    """Run ``workers`` (default: one per CPU) busy loops for ``seconds``; count transitions."""
    assert pair.monitor is not None
    pair.wait_settled()
    workers = workers or os.cpu_count() or 2
    before = pair.transitions()
    start = time.monotonic()
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)])
                for _ in range(workers)]
    try:
        for proc in spinners:
            proc.wait(seconds + 30)
    finally:
        for proc in spinners:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    end = time.monotonic()
    after = pair.transitions()
    return StarveResult(
        seconds=seconds, workers=workers,
        transitions={n: after.get(n, 0) - before.get(n, 0) for n in LBS},
        lost_vip_for=pair.monitor.longest(_lost, start, end),
        dual_vip_for=pair.monitor.longest(_dual, start, end),
        alive={n: pair.alive(n) for n in LBS}, masters=pair.masters())


def as_ms(result: Any) -> dict[str, Any]:
    """A result dataclass as a dict; times (``*_after``, ``*_for``) in ms as ``NAME_ms``."""
    out: dict[str, Any] = {}
    for key, value in vars(result).items():
        if key.endswith(("_after", "_for")):  # seconds, or None for "never"
            out[f"{key}_ms"] = None if value is None else round(value * 1000, 1)
        else:
            out[key] = value
    return out
