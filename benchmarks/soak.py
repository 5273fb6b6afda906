"""At the protocol's limit: VRRPv3's shortest interval (10 ms) with both cores kept busy.

Run as root: ``.venv/bin/python benchmarks/soak.py [--minutes 10] [--cuts 5]
[--realtime 10] [--skip-keepalived]``

Two :class:`lab.haproxy_pair.HAProxyPair` labs side by side, one running vrrpd and one
keepalived 2.2 (lb1 priority 150, lb2 100, real HAProxy, a client sending HTTP HEAD to the VIP
every 10 ms), both at ``--interval`` (0.01 s: Max Adver Int 1 centisecond, RFC 5798 §5.2.7;
Master_Down_Interval 34 ms at priority 100).  One CPU-bound burner process per core runs for
the whole benchmark (``timeout`` bounds each, and they are killed at the end).

``--realtime N`` (default 10) gives both daemons their real-time setting, each its best
configuration for a busy host: vrrpd ``realtime_priority: N`` (its event loop SCHED_RR,
vrrpd/daemon/scheduling.py), keepalived ``vrrp_rt_priority N`` (its VRRP process SCHED_RR).
``--realtime 0`` measures both normally scheduled, at the burners' own priority.

1. **Soak** for ``--minutes``: nothing is done to either pair, so every state change on either
   node is a false transition (vrrpd: the ``transitions`` counters; keepalived: its
   "Entering ... STATE" lines).  lb2 records lb1's adverts with kernel time stamps
   (:mod:`lab.sniff`): their spacing says how close a busy machine came to
   Master_Down_Interval.
2. **Cut**: ``--cuts`` times, lb1's switch port goes down at a random phase and the client's
   outage is measured until lb2 serves (``benchmarks/failover.py``'s ``cut``), then the port
   comes back and lb1 preempts (``rejoin``), burners still running.

Targets (issue 16 part 4): 0 false transitions; the cut outage side by side with keepalived's.
Prints the figures and writes ``benchmarks/results/soak-<UTC time>.json``
(:mod:`benchmarks.record`).  Exits 2 when keepalived is not installed, unless
``--skip-keepalived``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.failover import Runner  # noqa: E402
from benchmarks.record import (  # noqa: E402
    SKIP_KEEPALIVED,
    Record,
    byte_compile,
    compared_daemons,
)
from benchmarks.stress import start_burners, stop  # noqa: E402
from lab.haproxy_pair import HAProxyPair  # noqa: E402
from lab.sniff import Sniffer, percentile, spacing  # noqa: E402

STATE_LINE = re.compile(r"\) Entering (\w+) STATE")
TRACK_INTERVAL = 0.1


@contextlib.contextmanager
def burners(seconds: float) -> Iterator[list[int]]:
    """One busy-looping process per CPU (scripts/stress's burners), each ending by itself
    after ``seconds`` at the latest, and killed with its process group on leaving."""
    procs = start_burners(os.cpu_count() or 2, seconds)
    try:
        yield [p.pid for p in procs]
    finally:
        stop(procs)


def transitions(pair: HAProxyPair) -> dict[str, int]:
    """State changes so far on each LB."""
    if pair.daemon == "keepalived":
        return {n: len(STATE_LINE.findall(k.log())) for n, k in pair.keepalived.items()}
    return {n: sum(i["counters"].get("transitions", 0) for i in v.ctl("status")["instances"])
            for n, v in pair.vrrpd.items()}


def gap_stats(gaps_s: list[float], interval: float) -> dict[str, float]:
    ms = [g * 1000 for g in gaps_s]
    if not ms:
        return {}
    return {"adverts": len(ms) + 1, "p50": round(percentile(ms, 0.5), 2),
            "p99": round(percentile(ms, 0.99), 2), "p999": round(percentile(ms, 0.999), 2),
            "max": round(max(ms), 2), "over_2_intervals": sum(g > 2 * interval * 1000
                                                              for g in ms)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--cuts", type=int, default=5)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--seed", type=int, help="seed of the cut phases (default: random)")
    p.add_argument("--realtime", type=int, default=10, metavar="N",
                   help="SCHED_RR priority of both daemons (vrrpd realtime_priority, "
                        "keepalived vrrp_rt_priority); 0: normal scheduling")
    p.add_argument(SKIP_KEEPALIVED, action="store_true", help="measure vrrpd only")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("soak.py: run as root (network namespaces)", file=sys.stderr)
        return 1
    daemons = compared_daemons(args.skip_keepalived, "soak.py")
    record = Record("soak", parameters={**vars(args), "byte_code": byte_compile()})
    rng = random.Random(args.seed)
    soak_s = args.minutes * 60
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vrrpd-soak-") as tmp, \
            contextlib.ExitStack() as stack:
        pairs = {d: stack.enter_context(HAProxyPair(Path(tmp) / d, interval=args.interval,
                                                    track_interval=TRACK_INTERVAL, daemon=d,
                                                    realtime_priority=args.realtime))
                 for d in daemons}
        clients = {d: stack.enter_context(pair.client()) for d, pair in pairs.items()}
        runners = {d: Runner(pair, clients[d], rng) for d, pair in pairs.items()}
        for runner in runners.values():
            runner.steady()
        burn = stack.enter_context(burners(soak_s + 60 * args.cuts + 300))
        print(f"{len(burn)} burners running; soaking {', '.join(daemons)} at "
              f"{args.interval * 1000:g} ms for {args.minutes:g} min ...", flush=True)
        before = {d: transitions(pair) for d, pair in pairs.items()}
        sniffs = {d: stack.enter_context(Sniffer(pair.node("lb2"))) for d, pair in pairs.items()}
        load = [os.getloadavg()[0]]
        end = time.monotonic() + soak_s
        while time.monotonic() < end:
            time.sleep(min(30.0, max(0.0, end - time.monotonic())))
            load.append(os.getloadavg()[0])
        for d, pair in pairs.items():
            after = transitions(pair)
            lb1 = str(pair.node("lb1").ipv4.ip)
            gaps = [g for vrid_gaps in spacing(sniffs[d].frames("vrrp"), {lb1}).values()
                    for g in vrid_gaps]
            sniffs[d].stop()
            results[d] = {"soak": {"seconds": soak_s,
                                   "false_transitions": {n: after[n] - before[d][n] for n in after},
                                   "gap_ms": gap_stats(gaps, args.interval)}}
            print(f"  {d}: false transitions {results[d]['soak']['false_transitions']}, "
                  f"advert gaps {results[d]['soak']['gap_ms']}", flush=True)
        results["soak_loadavg_1min"] = [round(x, 2) for x in load]
        for d, runner in runners.items():
            cuts: list[dict[str, Any]] = []
            for run in range(args.cuts):
                try:
                    out = runner.cut()
                    cuts.append({"run": run, "phase_delay_s": round(runner.delay, 4),
                                 "outage_ms": round(out.outage_ms, 1), "failed": out.failed,
                                 "loadavg_1min": round(os.getloadavg()[0], 2)})
                    print(f"  {d} cut {run + 1}: outage {out.outage_ms:6.1f} ms, "
                          f"{out.failed} failed", flush=True)
                    runner.rejoin()
                except (TimeoutError, AssertionError) as exc:  # the pair did not settle
                    cuts.append({"run": run, "error": str(exc)})
                    print(f"  {d} cut {run + 1}: {exc}", flush=True)
                    pair = pairs[d]
                    assert pair.lab is not None
                    pair.lab.set_link("lb1", True)
                    try:
                        runner.steady()
                    except TimeoutError as again:
                        cuts.append({"run": run, "error": f"no steady pair after: {again}"})
                        break
            outages = [c["outage_ms"] for c in cuts if "outage_ms" in c]
            results[d]["cut"] = {"runs": cuts, "errors": sum("error" in c for c in cuts)}
            if outages:
                results[d]["cut"].update({
                    "median_ms": statistics.median(outages), "min_ms": min(outages),
                    "max_ms": max(outages),
                    "median_failed": statistics.median(c["failed"] for c in cuts
                                                       if "failed" in c)})
    summary = {d: {"false_transitions": sum(results[d]["soak"]["false_transitions"].values()),
                   "gap_ms": results[d]["soak"]["gap_ms"],
                   "cut_outage_median_ms": results[d]["cut"].get("median_ms"),
                   "cut_outage_max_ms": results[d]["cut"].get("max_ms"),
                   "cut_failed_median": results[d]["cut"].get("median_failed"),
                   "cut_errors": results[d]["cut"]["errors"]} for d in daemons}
    print("\ndaemon      false  gap p50/p99/max ms        cut outage median (max), failed, errors")
    for d, s in summary.items():
        g = s["gap_ms"]
        print(f"{d:10} {s['false_transitions']:>6}  {g.get('p50', 0):5.1f}/{g.get('p99', 0):5.1f}"
              f"/{g.get('max', 0):6.1f}       {s['cut_outage_median_ms']} "
              f"({s['cut_outage_max_ms']}), {s['cut_failed_median']}, {s['cut_errors']}")
    record.write(runs=results, summary=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
