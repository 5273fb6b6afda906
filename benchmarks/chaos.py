"""Chaos, the long runs: partitions, link flapping, SIGKILL of the master, CPU starvation.

Run as root: ``.venv/bin/python benchmarks/chaos.py [--partitions 10] [--kills 5]
[--flap-seconds 30] [--starve-seconds 20] [--only partition,flap,kill,starve]``

Two real vrrpd processes (lb1 priority 150, lb2 100, VRRPv3, VIP 192.0.2.100) and an observer
node, built by :class:`lab.chaos.ChaosPair`; the scenarios are the ones
``tests/lab/test_chaos.py`` runs briefly:

* ``partition``: lb1 and lb2 cut apart with carrier up (bridge port isolation) until both
  are MASTER, held 2.5 s, healed; repeated ``--partitions`` times at 0.1 s adverts.
* ``flap``: lb1's cable pulled and plugged every 200 ms for ``--flap-seconds`` (0.1 s adverts).
* ``kill``: SIGKILL of lb1's vrrpd, restart; ``--kills`` times at 0.1 s adverts.
* ``starve``: one busy loop per CPU (nice 0) for ``--starve-seconds``, at 1 s and at 0.1 s
  adverts; every transition during the load is a false one.

Targets: no lost VIP beyond the takeover time while a healthy node is up; after a partition
heals, the VIP on two nodes for at most one advert interval.  Prints a summary per scenario
and writes every run to ``benchmarks/results/chaos-<UTC time>.json`` (:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.chaos import ChaosPair, as_ms, flap, partition_heal, sigkill, starve  # noqa: E402

SCENARIOS = ("partition", "flap", "kill", "starve")


def worst(runs: list[dict[str, Any]], key: str) -> Any:
    """The largest value of ``key`` over the runs (None counts as worst)."""
    values = [r[key] for r in runs]
    return None if None in values else max(values)


def run_partitions(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    with ChaosPair(tmp / "partition", interval=0.1) as pair:
        runs = [as_ms(partition_heal(pair, hold=2.5)) for _ in range(args.partitions)]
    summary = {k: worst(runs, k) for k in ("split_brain_after_ms", "one_master_after_ms",
                                           "dual_vip_for_ms", "garp_after_ms",
                                           "lost_vip_for_ms")}
    summary["one_master_at_end"] = all(r["masters"] == ["lb1"] for r in runs)
    summary["meets_target"] = (summary["dual_vip_for_ms"] <= 100
                               and summary["lost_vip_for_ms"] == 0
                               and summary["garp_after_ms"] is not None)
    return {"runs": runs, "worst": summary}


def run_flap(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    with ChaosPair(tmp / "flap", interval=0.1) as pair:
        result = as_ms(flap(pair, period=0.2, duration=args.flap_seconds))
        bound_ms = (pair.mdi("lb1") + 0.1) * 1000
        takeover_ms = (pair.mdi("lb2") + 0.1) * 1000
    result["meets_target"] = (all(result["alive"].values())
                              and result["settle_after_ms"] <= bound_ms
                              and result["lost_vip_for_ms"] <= takeover_ms)
    return result


def run_kills(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    with ChaosPair(tmp / "kill", interval=0.1) as pair:
        runs = [as_ms(sigkill(pair)) for _ in range(args.kills)]
        takeover_ms = (pair.mdi("lb2") + 0.1) * 1000
    summary = {k: worst(runs, k) for k in ("takeover_after_ms", "reconcile_after_ms",
                                           "preempt_after_ms", "lost_vip_for_ms")}
    summary["meets_target"] = (summary["takeover_after_ms"] <= takeover_ms
                               and all(r["stale_vip_left"] and r["reconcile_logged"]
                                       for r in runs))
    return {"runs": runs, "worst": summary}


def run_starve(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for interval in (1.0, 0.1):
        with ChaosPair(tmp / f"starve-{interval:g}", interval=interval) as pair:
            result = as_ms(starve(pair, seconds=args.starve_seconds))
        result["false_transitions"] = sum(result["transitions"].values())
        out[f"{interval:g}s"] = result
    return out


RUNNERS: dict[str, Callable[[Path, argparse.Namespace], dict[str, Any]]] = {
    "partition": run_partitions, "flap": run_flap, "kill": run_kills, "starve": run_starve}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--partitions", type=int, default=10)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--flap-seconds", type=float, default=30.0)
    p.add_argument("--starve-seconds", type=float, default=20.0)
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("chaos.py: run as root (network namespaces)", file=sys.stderr)
        return 1
    record = Record("chaos", vars(args))
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vrrpd-chaos-") as tmp:
        for name in args.only.split(","):
            print(f"{name} ...", flush=True)
            report[name] = RUNNERS[name](Path(tmp), args)
            shown = {k: v for k, v in report[name].items() if k != "runs"}
            print(f"{name}: {json.dumps(shown, indent=1)}", flush=True)
    record.write(runs=report, summary={name: {k: v for k, v in part.items() if k != "runs"}
                                       for name, part in report.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
