"""Client-visible failover of a HAProxy pair: vrrpd vs keepalived, in network namespaces.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/failover.py --runs 10 [--skip-keepalived] [--intervals 0.1 1]

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

keepalived 2.2.7 runs the same lab with its best HAProxy check: a ``vrrp_script`` every second
(its shortest), fall 1, rise 1, that counts a zombie master as dead like vrrpd's tracker
(:func:`lab.haproxy_pair.keepalived_check_script`).  Its event-driven ``vrrp_track_process``
needs the initial network namespace: benchmarks/track_process.py.

Each fault goes in at a random phase: after the pair is steady, the script waits a delay drawn
uniformly from one common period of the advert interval and both daemons' check intervals
(:mod:`lab.phase`), recorded per run, so neither daemon's timers are hit at a fixed point.

Outage: the longest gap between successful client requests from the last success before the
fault to the first success served by the new LB (:func:`lab.client.measure`); failed
requests in that window.  A run whose gap stays within :data:`NO_OUTAGE_MS` (two probe
intervals) and lost no request had no outage the probe can see; a row where both daemons'
medians are such gets no ratio.  Prints a table of medians and spread and writes every run to
``benchmarks/results/failover-<UTC time>.json`` (:mod:`benchmarks.record`).  Exits 2 when
keepalived is not installed, unless ``--skip-keepalived``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import SKIP_KEEPALIVED, Record, compared_daemons  # noqa: E402
from lab.client import ClientProber, Outage  # noqa: E402
from lab.haproxy_pair import KEEPALIVED_CHECK_INTERVAL, HAProxyPair  # noqa: E402
from lab.phase import common_period, random_phase  # noqa: E402

SCENARIOS = ("haproxy-kill", "handover", "cut", "rejoin")
TARGETS = {("haproxy-kill", 0.1): 100.0, ("handover", 0.1): 20.0, ("handover", 1.0): 20.0}
TRACK_INTERVAL = 0.1  # vrrpd's haproxy tracker (its pidfd sees a death at once anyway)
PROBE_INTERVAL_MS = 10.0  # lab.client's default: one HTTP HEAD every 10 ms
NO_OUTAGE_MS = 2 * PROBE_INTERVAL_MS  # a longer gap means at least one probe went unanswered


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

    def __init__(self, pair: HAProxyPair, client: ClientProber, rng: random.Random) -> None:
        self.pair = pair
        self.client = client
        self.recover = 6 * pair.interval + 10  # generous: rise + Master_Down_Interval + start
        self.period = common_period(pair.interval, TRACK_INTERVAL, KEEPALIVED_CHECK_INTERVAL)
        self.rng = rng
        self.delay = 0.0  # the random phase of the last fault, seconds after steady

    def steady(self, lb: str = "lb1") -> None:
        wait(lambda: self.pair.holders() == [lb] and served_by(self.client, lb),
             self.recover, f"{lb} to hold the VIP alone and serve")
        time.sleep(max(0.3, 3 * self.pair.interval))  # the backup learns the interval

    def fault(self, inject: Callable[[], None], new_lb: str) -> Outage:
        self.delay = random_phase(self.period, self.rng)
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


def bench(daemon: str, interval: float, runs: int, scenarios: list[str],
          rng: random.Random, lab: type[HAProxyPair] = HAProxyPair) -> list[dict[str, Any]]:
    """All runs of ``scenarios`` for one daemon at one interval, on a ``lab``."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vrrpd-bench-") as tmp, \
            lab(Path(tmp), interval=interval, track_interval=TRACK_INTERVAL,
                daemon=daemon) as pair, pair.client() as client:
        runner = Runner(pair, client, rng)
        runner.steady()
        for run in range(runs):
            for scenario in scenarios:
                if scenario == "rejoin" and "cut" not in scenarios:
                    continue
                out = getattr(runner, scenario.replace("-", "_"))()
                rows.append({"daemon": daemon, "interval": interval, "scenario": scenario,
                             "run": run, "phase_delay_s": round(runner.delay, 4),
                             "phase_period_s": runner.period,
                             "outage_ms": round(out.outage_ms, 1), "failed": out.failed,
                             "window_ms": round(out.window_ms, 1),
                             "loadavg_1min": round(os.getloadavg()[0], 2)})
                print(f"  {daemon:10} {interval:>4g}s {scenario:13} run {run + 1}: "
                      f"fault at +{runner.delay * 1000:4.0f} ms, "
                      f"outage {out.outage_ms:7.1f} ms, {out.failed:3d} failed", flush=True)
    return rows


def no_outage(outage_ms: float, failed: float) -> bool:
    """No request lost and no gap the probe can tell from its own spacing."""
    return failed == 0 and outage_ms <= NO_OUTAGE_MS


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
                outages = [r["outage_ms"] for r in mine]
                failed = [r["failed"] for r in mine]
                line[daemon] = {
                    "median_ms": statistics.median(outages),
                    "min_ms": min(outages), "max_ms": max(outages),
                    "median_failed": statistics.median(failed),
                    "min_failed": min(failed), "max_failed": max(failed),
                    "zero_failed_runs": sum(f == 0 for f in failed),
                    "no_outage_runs": sum(no_outage(o, f) for o, f in zip(outages, failed,
                                                                         strict=True)),
                    "runs": len(mine)}
                line[daemon]["no_outage"] = no_outage(line[daemon]["median_ms"],
                                                      line[daemon]["median_failed"])
        if "vrrpd" in line and "keepalived" in line:
            quiet = [d for d in ("vrrpd", "keepalived") if line[d]["no_outage"]]
            if quiet:  # a ratio of probe spacing to an outage, or of two spacings, is noise
                line["ratio"] = ("no outage on either side" if len(quiet) == 2
                                 else f"none: {quiet[0]} had no outage")
            else:
                line["ratio"] = round(line["vrrpd"]["median_ms"]
                                      / line["keepalived"]["median_ms"], 2)
        target = TARGETS.get((scenario, interval))
        if target is not None and "vrrpd" in line:
            line["target_ms"] = target
            line["meets_target"] = line["vrrpd"]["median_ms"] <= target
        table.append(line)
    return table


def cell(d: dict[str, Any] | None) -> str:
    if d is None:
        return f"{'-':>38}"
    return (f"{d['median_ms']:7.1f} {d['min_ms']:7.1f}-{d['max_ms']:<7.1f} "
            f"{d['median_failed']:5g} {d['zero_failed_runs']:>2}/{d['runs']:<2}"
            f"{' none' if d['no_outage'] else '     '}")


def print_table(table: list[dict[str, Any]]) -> None:
    head = "median  min-max    fail  0-fail"
    print(f"\n{'scenario':13} {'adv':>5} | {'vrrpd ' + head:>38} | "
          f"{'keepalived ' + head:>38} | ratio | target")
    for line in table:
        target = (f"<= {line['target_ms']:g} ms {'OK' if line['meets_target'] else 'MISSED'}"
                  if "target_ms" in line else "")
        ratio = line.get("ratio", "-")
        ratio = f"{ratio:5.2f}" if isinstance(ratio, float) else ratio
        print(f"{line['scenario']:13} {line['interval']:>4g}s | {cell(line.get('vrrpd')):>38} | "
              f"{cell(line.get('keepalived')):>38} | {ratio} | {target}")
    print(f"(outage in ms; fail = median failed requests; 0-fail = runs without one; none = "
          f"median gap <= {NO_OUTAGE_MS:g} ms with no failed request: no outage the "
          f"{PROBE_INTERVAL_MS:g} ms probe can see)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--intervals", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument(SKIP_KEEPALIVED, action="store_true", help="measure vrrpd only")
    p.add_argument("--seed", type=int, help="seed of the fault phases (default: random)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("failover.py: run as root (the lab creates network namespaces)", file=sys.stderr)
        return 1
    daemons = compared_daemons(args.skip_keepalived, "failover.py")
    compare("failover", args, daemons, args.scenarios, HAProxyPair,
            keepalived_check=f"vrrp_script every {KEEPALIVED_CHECK_INTERVAL} s, fall 1, "
                             "rise 1, zombie = dead (lab.haproxy_pair)")
    return 0


def compare(name: str, args: argparse.Namespace, daemons: list[str], scenarios: list[str],
            lab: type[HAProxyPair], **sections: Any) -> None:
    """Measure ``daemons`` at ``args.intervals`` (``args.runs`` each, fault phases from
    ``args.seed``, drawn if not given), print the table, write the result file."""
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(args.seed)
    record = Record(name, vars(args))
    rows: list[dict[str, Any]] = []
    for interval in args.intervals:  # both daemons at one interval close together in time
        for daemon in daemons:
            rows += bench(daemon, interval, args.runs, scenarios, rng, lab)
    table = summarize(rows)
    print_table(table)
    record.write(runs=rows, summary=table, **sections)


if __name__ == "__main__":
    sys.exit(main())
