"""The PACS pair on keepalived, swapped to vrrpd one node at a time (issue 15 part 3).

:class:`KeepalivedPacsLab` is :class:`lab.pacs.PacsLab` (real HAProxy with the shipped
haproxy.cfg, two PACS servers, a client) whose LBs start on keepalived 2.2 with
``etc/keepalived/lb1.conf`` / ``lb2.conf``, the configuration the pair ran before vrrpd.  Only
host paths change for the lab (:func:`lab_paths`: two nodes share one file system), and
``preempt_delay`` when a test asks.
:meth:`KeepalivedPacsLab.swap` stops a node's keepalived and starts vrrpd with what
``vrrpd import-keepalived`` makes of that node's file -- the converter's real command line.

:class:`HolderWatch` polls both LBs' VIP every millisecond in a thread and reports the longest
time both held it (never more than one advert interval, the issue's bound) and the longest
time nobody did.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.daemons import REPO, AddressProbe, Vrrpd, wait_for
from lab.haproxy_pair import LBS, VIP, KeepalivedNode
from lab.pacs import PacsLab
from lab.phase import random_phase

REFERENCE_KEEPALIVED = REPO / "etc" / "keepalived"


def lab_paths(lab: PacsLab, node: str) -> dict[str, str]:
    """Host path in etc/keepalived/<node>.conf -> the lab's path for ``node``."""
    return {"/run/haproxy.pid": str(lab.haproxy[node].pidfile),
            "/etc/keepalived/maintenance": str(lab.workdir / node / "maintenance")}


class KeepalivedPacsLab(PacsLab):
    """The PACS deployment with keepalived on both LBs; :meth:`swap` moves one to vrrpd."""

    def __init__(self, workdir: Path, prefix: str | None = None,
                 preempt_delay: int | None = None) -> None:
        super().__init__(workdir, prefix=prefix)
        self.daemon = "keepalived"
        self.preempt_delay = preempt_delay  # replaces the files' 60 s when given

    def keepalived_conf(self, node: str) -> str:
        """etc/keepalived/<node>.conf with the lab's paths; each must be there."""
        text = (REFERENCE_KEEPALIVED / f"{node}.conf").read_text()
        changes = lab_paths(self, node)
        if self.preempt_delay is not None:
            changes["preempt_delay 60"] = f"preempt_delay {self.preempt_delay}"
        for old, new in changes.items():
            if old not in text:
                raise ValueError(f"etc/keepalived/{node}.conf no longer has {old}: adapt "
                                 "lab/migration.py")
            text = text.replace(old, new)
        return text

    def _start_keepalived(self) -> None:
        for name in LBS:
            wait_for(lambda name=name: not self.servers_down(name), 10,
                     f"HAProxy on {name} to see every PACS server UP", poll=0.05)
            self.start_keepalived(name)
            if name == "lb1":
                wait_for(lambda: self.holders() == ["lb1"], 15,
                         "keepalived lb1 to hold the VIP", poll=0.01)
        wait_for(lambda: "(pacs) Entering BACKUP STATE" in self.keepalived["lb2"].log(), 15,
                 "keepalived lb2 to be BACKUP", poll=0.01)

    def start_keepalived(self, node: str) -> KeepalivedNode:
        """Start keepalived on ``node`` (again, for a roll-back) with its lab configuration."""
        old = self.keepalived.get(node)
        if old is not None:
            old.stop()
        k = KeepalivedNode(self.node(node), self.workdir / node / "keepalived",
                           self.keepalived_conf(node))
        self.keepalived[node] = k.start()
        return k

    def convert(self, node: str) -> tuple[int, dict[str, Any], Path]:
        """``vrrpd import-keepalived`` on the node's keepalived.conf: (exit, document, file)."""
        conf, out = self.workdir / node / "keepalived.conf", self.workdir / node / "vrrpd.yaml"
        conf.write_text(self.keepalived_conf(node))
        done = subprocess.run([sys.executable, "-m", "vrrpd", "import-keepalived",
                               str(conf), "-o", str(out)],
                              capture_output=True, text=True, cwd=REPO)
        if done.returncode not in (0, 1):
            raise AssertionError(f"import-keepalived failed: {done.stderr}")
        return done.returncode, yaml.safe_load(out.read_text()), out

    def swap(self, node: str, *, wait_state: str | None = "BACKUP") -> Vrrpd:
        """Stop keepalived on ``node``, start vrrpd with the converted file."""
        _, doc, _ = self.convert(node)
        if node in self.keepalived:
            self.keepalived.pop(node).stop()
        instances = doc.pop("instances")
        if doc.pop("node") != node:  # router_id; the runner names the node itself
            raise AssertionError(f"{node}'s converted file names another node")
        self.vrrpd[node] = d = Vrrpd(self.node(node), self.workdir, instances, **doc)
        d.start()
        if wait_state:
            d.wait_state(self.instance, wait_state)
        return d

    def unswap(self, node: str) -> KeepalivedNode:
        """Roll back: stop vrrpd on ``node``, start its keepalived again."""
        self.vrrpd.pop(node).stop()
        return self.start_keepalived(node)


@dataclass
class Holding:
    both_max: float = 0.0  # seconds: longest time both LBs held the VIP
    none_max: float = 0.0  # seconds: longest time nobody held it


class HolderWatch:
    """Who holds the VIP, polled every millisecond in a thread (its own netlink sockets)."""

    def __init__(self, lab: PacsLab, vip: str = VIP) -> None:
        self.lab = lab
        self.vip = vip
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._holding = Holding()
        self._thread = threading.Thread(target=self._run, name="holder-watch", daemon=True)

    def __enter__(self) -> HolderWatch:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def take(self) -> Holding:
        """What was seen since the last take (the current episode carries over)."""
        with self._lock:
            seen, self._holding = self._holding, Holding()
        return seen

    def _run(self) -> None:
        # netlink sockets opened (inside the nodes) and used by this thread only
        probes = [AddressProbe(self.lab.node(n)) for n in LBS]
        self._ready.set()
        try:
            self._poll(probes)
        finally:
            for p in probes:
                p.close()

    def _poll(self, probes: list[AddressProbe]) -> None:
        since, count = time.monotonic(), -1
        while not self._stop.is_set():
            now = time.monotonic()
            held = sum(p.has(self.vip) for p in probes)
            if held != count:
                since, count = now, held
            with self._lock:
                if count == 2:
                    self._holding.both_max = max(self._holding.both_max, now - since)
                elif count == 0:
                    self._holding.none_max = max(self._holding.none_max, now - since)
            time.sleep(0.001)


@dataclass(frozen=True)
class Step:
    """One step of the rolling swap as the client and the kernel saw it."""

    name: str
    holder: str  # who holds the VIP after the step
    outage_ms: float  # the client's longest gap between answers (lab.client.measure)
    failed: int  # failed client requests in that window
    both_ms: float  # longest time both LBs held the VIP during the step
    none_ms: float  # longest time nobody held it
    phase_delay_ms: float  # the random wait before the step's action (lab.phase)


def rolling_swap(lab: KeepalivedPacsLab, settle: float = 1.0,
                 period: float = 1.0) -> list[Step]:
    """keepalived pair -> vrrpd pair, the README procedure, step by step.

    1. lb2 (backup) to vrrpd; 2. fail over to it (stop keepalived on lb1: priority 0);
    3. lb1 to vrrpd (joins as backup; ``preempt_delay 60`` keeps lb2 master);
    4. roll lb1 back to keepalived (it must read vrrpd's adverts: no second master), then
    forward again; 5. hand back to lb1, the preferred master (``vrrpctl demote`` on lb2).
    Each action comes ``settle`` seconds plus a random part of ``period`` (a whole number of
    the adverts' and keepalived's check intervals, :mod:`lab.phase`) after the last step.
    """
    steps: list[Step] = []
    with HolderWatch(lab) as watch, lab.client() as client:

        def step(name: str, holder: str, action: Any) -> None:
            time.sleep(settle)
            delay = random_phase(period)
            watch.take()
            start = time.monotonic()
            action()
            time.sleep(settle)  # whatever happens next, it happens within this step
            wait_for(lambda: lab.holders() == [holder], 10, f"{holder} to hold the VIP")
            out = client.measure(start, holder)
            seen = watch.take()
            steps.append(Step(name, holder, round(out.outage_ms, 1), out.failed,
                              round(seen.both_max * 1000, 1), round(seen.none_max * 1000, 1),
                              round(delay * 1000, 1)))

        step("lb2 keepalived -> vrrpd (backup)", "lb1", lambda: lab.swap("lb2"))
        step("stop keepalived on lb1: lb2 takes over", "lb2",
             lambda: lab.keepalived.pop("lb1").stop())
        step("lb1 -> vrrpd (joins as backup)", "lb2", lambda: lab.swap("lb1"))
        step("roll back: lb1 vrrpd -> keepalived", "lb2", lambda: lab.unswap("lb1"))
        step("lb1 keepalived -> vrrpd again", "lb2", lambda: lab.swap("lb1"))
        step("vrrpctl demote on lb2: back to lb1", "lb1",
             lambda: lab.vrrpd["lb2"].ctl("demote", instance=lab.instance))
    return steps
