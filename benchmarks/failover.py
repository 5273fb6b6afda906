"""Client-visible failover of a HAProxy pair: vrrpd vs keepalived, in network namespaces.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/failover.py --runs 5 [--no-keepalived] [--intervals 0.1 1]

For each daemon and VRRPv3 advert interval it builds :class:`lab.haproxy_pair.HAProxyPair`
(lb1 priority 150, lb2 100, real HAProxy on both, a backend, a client sending HTTP HEAD to the
VIP every 10 ms with 50 ms timeouts) and repeats N times:

* ``haproxy-kill``: SIGKILL HAProxy's master on lb1 (the master) -> lb2 serves.
  Restore: start HAProxy again, wait for lb1 to preempt back.
* ``handover``: vrrpd: ``vrrpctl demote`` on lb1 -> lb2 serves (restore: ``resume``);
  keepalived has no planned hand-over, its equivalent is stopping it on the master
  (restore: start it again).
* ``cut``: lb1's switch port down -> lb2 serves.
* ``rejoin``: lb1's port up again -> lb1 preempts and serves.

Outage: the longest gap between successful client requests from the last success before the
fault to the first success served by the new LB (:func:`lab.client.measure`); failed
requests in that window.  Prints a table of medians and writes every run to
``benchmarks/results/failover-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.client import ClientProber, Outage  # noqa: E402
from lab.haproxy_pair import KEEPALIVED, HAProxyPair  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SCENARIOS = ("haproxy-kill", "handover", "cut", "rejoin")
TARGETS = {("haproxy-kill", 0.1): 100.0, ("handover", 0.1): 20.0, ("handover", 1.0): 20.0}


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def served_by(client: ClientProber, lb: str) -> bool:
    """The last three completed requests all succeeded through ``lb``."""
    last = client.samples()[-3:]
    return len(last) == 3 and all(s.ok and s.lb == lb for s in last)


class Runner:
    """One pair (one daemon, one interval); each method injects a fault and measures it."""

    def __init__(self, pair: HAProxyPair, client: ClientProber) -> None:
        self.pair = pair
        self.client = client
        self.recover = 6 * pair.interval + 10  # generous: rise + Master_Down_Interval + start

    def steady(self, lb: str = "lb1") -> None:
        wait(lambda: self.pair.holders() == [lb] and served_by(self.client, lb),
             self.recover, f"{lb} to hold the VIP alone and serve")
        time.sleep(max(0.3, 3 * self.pair.interval))  # the backup learns the interval

    def fault(self, inject: Callable[[], None], new_lb: str) -> Outage:
        start = time.monotonic()
        inject()
        return self.client.measure(start, new_lb, wait=self.recover)

    def haproxy_kill(self) -> Outage:
        hap = self.pair.haproxy["lb1"]
        result = self.fault(hap.kill, "lb2")
        hap.start()
        self.steady()
        return result

    def handover(self) -> Outage:
        if self.pair.daemon == "keepalived":
            ka = self.pair.keepalived["lb1"]
            result = self.fault(ka.stop, "lb2")
            ka.start()
        else:
            lb1 = self.pair.vrrpd["lb1"]
            result = self.fault(lambda: lb1.ctl("demote", instance="web"), "lb2")
            lb1.ctl("resume", instance="web")
        self.steady()
        return result

    def cut(self) -> Outage:
        return self.fault(lambda: self.pair.lab.set_link("lb1", False), "lb2")  # type: ignore

    def rejoin(self) -> Outage:
        self.steady("lb2")
        result = self.fault(lambda: self.pair.lab.set_link("lb1", True), "lb1")  # type: ignore
        self.steady()
        return result


def bench(daemon: str, interval: float, runs: int, scenarios: list[str]) -> list[dict[str, Any]]:
    """All runs of ``scenarios`` for one daemon at one interval."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vrrpd-bench-") as tmp, \
            HAProxyPair(Path(tmp), interval=interval, track_interval=0.1,
                        daemon=daemon) as pair, pair.client() as client:
        runner = Runner(pair, client)
        runner.steady()
        for run in range(runs):
            for scenario in scenarios:
                if scenario == "rejoin" and "cut" not in scenarios:
                    continue
                out = getattr(runner, scenario.replace("-", "_"))()
                rows.append({"daemon": daemon, "interval": interval, "scenario": scenario,
                             "run": run, "outage_ms": round(out.outage_ms, 1),
                             "failed": out.failed, "window_ms": round(out.window_ms, 1)})
                print(f"  {daemon:10} {interval:>4g}s {scenario:13} run {run + 1}: "
                      f"outage {out.outage_ms:7.1f} ms, {out.failed:3d} failed", flush=True)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = sorted({(r["scenario"], r["interval"]) for r in rows},
                  key=lambda k: (SCENARIOS.index(k[0]), k[1]))
    table = []
    for scenario, interval in keys:
        line: dict[str, Any] = {"scenario": scenario, "interval": interval}
        for daemon in ("vrrpd", "keepalived"):
            mine = [r for r in rows if (r["daemon"], r["scenario"], r["interval"])
                    == (daemon, scenario, interval)]
            if mine:
                line[daemon] = {
                    "median_ms": statistics.median(r["outage_ms"] for r in mine),
                    "max_ms": max(r["outage_ms"] for r in mine),
                    "median_failed": statistics.median(r["failed"] for r in mine),
                    "zero_failed_runs": sum(r["failed"] == 0 for r in mine),
                    "runs": len(mine)}
        if "vrrpd" in line and "keepalived" in line and line["keepalived"]["median_ms"]:
            line["ratio"] = round(line["vrrpd"]["median_ms"] / line["keepalived"]["median_ms"], 2)
        target = TARGETS.get((scenario, interval))
        if target is not None and "vrrpd" in line:
            line["target_ms"] = target
            line["meets_target"] = line["vrrpd"]["median_ms"] <= target
        table.append(line)
    return table


def cell(d: dict[str, Any] | None) -> str:
    if d is None:
        return f"{'-':>27}"
    return (f"{d['median_ms']:7.1f} {d['max_ms']:7.1f} {d['median_failed']:5g} "
            f"{d['zero_failed_runs']:>2}/{d['runs']:<2}")


def print_table(table: list[dict[str, Any]]) -> None:
    head = "median    max  fail  0-fail"
    print(f"\n{'scenario':13} {'adv':>5} | {'vrrpd ' + head:>29} | "
          f"{'keepalived ' + head:>29} | ratio | target")
    for line in table:
        target = (f"<= {line['target_ms']:g} ms {'OK' if line['meets_target'] else 'MISSED'}"
                  if "target_ms" in line else "")
        ratio = f"{line['ratio']:5.2f}" if "ratio" in line else "    -"
        print(f"{line['scenario']:13} {line['interval']:>4g}s | {cell(line.get('vrrpd')):>29} | "
              f"{cell(line.get('keepalived')):>29} | {ratio} | {target}")
    print("(outage and max in ms; fail = median failed requests; 0-fail = runs without one)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--intervals", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--no-keepalived", action="store_true", help="measure vrrpd only")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("failover.py: run as root (the lab creates network namespaces)", file=sys.stderr)
        return 1
    daemons = ["vrrpd"]
    if not args.no_keepalived and shutil.which(KEEPALIVED):
        daemons.append("keepalived")
    rows: list[dict[str, Any]] = []
    for daemon in daemons:
        for interval in args.intervals:
            rows += bench(daemon, interval, args.runs, args.scenarios)
    table = summarize(rows)
    print_table(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"failover-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": {"node": platform.node(), "cpus": os.cpu_count(),
                                            "kernel": platform.release()},
                                "args": vars(args), "summary": table, "runs": rows},
                               indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
