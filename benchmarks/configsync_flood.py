"""Sync port under a connection flood: does the daemon stay healthy and sync still work?

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/configsync_flood.py [--duration 60]

Builds :class:`lab.configsync_pair.ConfigSyncLab` (lb1 MASTER and sync source, lb2 receiver,
real HAProxy 2.6 on both, real vrrpd with ``config_sync:`` pinned both ways, VRRPv3 at 0.1 s)
with two trackers on instance ``web`` at 0.1 s (``tcp`` to HAProxy on lb2's loopback,
``script`` ``/bin/true``: the kinds that failed with "Too many open files" in the
issue), and lb2's vrrpd limited to 1024 descriptors (``prlimit``: the default without
``LimitNOFILE``).  A third namespace,
``attacker`` (192.0.2.13, not a configured peer), runs ``python -m lab.configsync_flood`` against
lb2's sync port for ``--duration`` seconds, one process on one core, in two variants:

* ``connect``: TCP connect + close (RST) in a tight loop;
* ``loris``: hold up to 2000 connections open, a byte every 5 s, reopen what is closed.

During each flood it samples lb2's vrrpd every 0.2 s: open descriptors, RSS, control-socket
round trip (``vrrpctl version``: an upper bound of its event-loop lag), tracker results; and
at 1/4 and 3/4 of the run pushes a real edit from lb1 and times it until lb2's HAProxy serves
it.  State changes are counted on both nodes.  Target: zero tracker failures, zero state
changes, every push live within 2 s.  Prints the figures and writes
``benchmarks/results/sync-flood-<time>.json``; exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from configsync_latency import one_edit  # noqa: E402

from benchmarks.record import Record  # noqa: E402
from lab.configsync_pair import SYNC_PORT, ConfigSyncLab  # noqa: E402

PUSH_TARGET = 2.0  # seconds, edit on lb1 -> live on lb2 during the flood
NOFILE = 1024
TRACKS = {
    "haproxy_port": {"type": "tcp", "host": "127.0.0.1", "port": 8081, "interval": 0.1,
                     "timeout": 1.0},
    "script": {"type": "script", "command": "/bin/true", "interval": 0.1, "timeout": 1.0},
}


class Sampler(threading.Thread):
    """Samples lb2's vrrpd every 0.2 s until stopped."""

    def __init__(self, lab: ConfigSyncLab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        daemon = lab.vrrpd["lb2"]
        assert daemon.proc is not None
        self.proc = psutil.Process(daemon.proc.pid)
        self.samples: list[dict[str, Any]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        daemon = self.lab.vrrpd["lb2"]
        while not self.stop_event.wait(0.2):
            start = time.monotonic()
            try:
                web = daemon.instance("web")
                rtt = time.monotonic() - start
                failed = [t["name"] for t in web.get("trackers", []) if not t["ok"]]
            except Exception as exc:  # the control socket itself failing is a finding
                rtt, failed = None, [f"control socket: {exc}"]
            self.samples.append({"fds": self.proc.num_fds(), "rss": self.proc.memory_info().rss,
                                 "rtt": rtt, "failed_trackers": failed})

    def summary(self) -> dict[str, Any]:
        rtts = sorted(s["rtt"] for s in self.samples if s["rtt"] is not None)
        return {
            "samples": len(self.samples),
            "fds_max": max(s["fds"] for s in self.samples),
            "fds_median": statistics.median(s["fds"] for s in self.samples),
            "rss_first_mib": self.samples[0]["rss"] / 2**20,
            "rss_max_mib": max(s["rss"] for s in self.samples) / 2**20,
            "rss_last_mib": self.samples[-1]["rss"] / 2**20,
            "control_rtt_ms_p50": 1000 * rtts[len(rtts) // 2] if rtts else None,
            "control_rtt_ms_p99": 1000 * rtts[int(len(rtts) * 0.99)] if rtts else None,
            "control_rtt_ms_max": 1000 * rtts[-1] if rtts else None,
            "tracker_failures": sum(1 for s in self.samples if s["failed_trackers"]),
            "failed_examples": [s["failed_trackers"] for s in self.samples
                                if s["failed_trackers"]][:5],
        }


def transitions(lab: ConfigSyncLab) -> dict[str, int]:
    return {n: d.instance("web")["counters"].get("transitions", 0) for n, d in lab.vrrpd.items()}


def flood(lab: ConfigSyncLab, mode: str, duration: float, gen0: int) -> dict[str, Any]:
    assert lab.lab is not None
    attacker = lab.lab.nodes["attacker"]
    before_t = transitions(lab)
    before_gate = lab.vrrpd["lb2"].ctl("config-sync-status")["listener"]["counters"]
    sampler = Sampler(lab)
    sampler.start()
    start, wall_start = time.monotonic(), time.time()
    proc = attacker.ns.popen(
        [sys.executable, "-m", "lab.configsync_flood", "--mode", mode, "--duration", str(duration),
         "--target", f"{lab.address('lb2')}:{SYNC_PORT}"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    pushes = []
    for i, at in enumerate((duration / 4, 3 * duration / 4)):
        time.sleep(max(0.0, start + at - time.monotonic()))
        pushes.append(one_edit(lab, gen0 + i)["live"])
    out, _ = proc.communicate(timeout=duration + 30)
    sampler.stop_event.set()
    sampler.join()
    after_gate = lab.vrrpd["lb2"].ctl("config-sync-status")["listener"]["counters"]
    after_t = transitions(lab)
    reasons = {n: [f"{t['old']}->{t['new']}: {t['reason']}"
                   for t in d.instance("web")["transitions"] if t["at"] >= wall_start]
               for n, d in lab.vrrpd.items()}
    return {"mode": mode, "attacker": json.loads(out.decode().strip().splitlines()[-1]),
            "transition_reasons": reasons,
            "lb2": sampler.summary(), "push_live_s": pushes,
            "listener": {k: after_gate.get(k, 0) - before_gate.get(k, 0) for k in after_gate},
            "state_changes": {n: after_t[n] - before_t[n] for n in after_t}}


def report(r: dict[str, Any]) -> str:
    a, s = r["attacker"], r["lb2"]
    rate = a["attempts"] / a["seconds"]
    return (f"{r['mode']}: attacker {a['attempts']} connection attempts in {a['seconds']:.0f} s "
            f"({rate:.0f}/s), {a['connected']} connected"
            + (f", {a['held']} still held at the end, {a['closed_by_server']} closed by lb2"
               if r["mode"] == "loris" else "") + "\n"
            f"  lb2 vrrpd: descriptors median {s['fds_median']:.0f} max {s['fds_max']} "
            f"(limit {NOFILE}); RSS {s['rss_first_mib']:.1f} -> max {s['rss_max_mib']:.1f} MiB; "
            f"control round trip p50 {s['control_rtt_ms_p50']:.1f} ms p99 "
            f"{s['control_rtt_ms_p99']:.1f} ms max {s['control_rtt_ms_max']:.1f} ms\n"
            f"  tracker failures {s['tracker_failures']} of {s['samples']} samples; state "
            f"changes {r['state_changes']}; real pushes live on lb2 after "
            + ", ".join(f"{p * 1000:.0f} ms" for p in r["push_live_s"]) + "\n"
            f"  lb2 listener counters during the run: {r['listener']}"
            + "".join(f"\n  {n}: {t}" for n, ts in r["transition_reasons"].items() for t in ts))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--modes", default="idle,connect,loris",
                   help="comma-separated: idle (no flood, the baseline), connect, loris")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("run as root (network namespaces)", file=sys.stderr)
        return 2
    record = Record("sync-flood", vars(args))
    results = []
    with tempfile.TemporaryDirectory(prefix="vrrpd-flood-bench-") as tmp, \
            ConfigSyncLab(Path(tmp), tracks=TRACKS) as lab:
        assert lab.lab is not None
        lab.lab.add_node("attacker", "192.0.2.13/24", "2001:db8::13/64")
        lab.vrrpd["lb1"].ctl("config-sync-push")  # lb2 is a fresh install: never synced
        proc = lab.vrrpd["lb2"].proc
        assert proc is not None
        subprocess.run(["prlimit", f"--pid={proc.pid}", f"--nofile={NOFILE}:{NOFILE}"],
                       check=True)
        time.sleep(1)
        for i, mode in enumerate(args.modes.split(",")):
            results.append(flood(lab, mode, args.duration, 100 * (i + 1)))
            print(report(results[-1]), flush=True)
            time.sleep(2)
    ok = all(r["lb2"]["tracker_failures"] == 0 and not any(r["state_changes"].values())
             and max(r["push_live_s"]) <= PUSH_TARGET for r in results)
    print(f"\ntarget (0 tracker failures, 0 state changes, pushes live <= {PUSH_TARGET:g} s): "
          f"{'met' if ok else 'MISSED'}")
    record.write(runs=results, summary={"target_met": ok}, nofile_limit=NOFILE)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
