"""The rolling swap keepalived -> vrrpd of the PACS pair, measured (issue 15 part 3).

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/keepalived_swap.py --runs 3

Each run builds :class:`lab.migration.KeepalivedPacsLab` (keepalived 2.2.7 with
etc/keepalived/lb1.conf / lb2.conf on both LBs, real HAProxy with the shipped haproxy.cfg, two
PACS servers, a client sending HTTP HEAD to the VIP every 10 ms with 50 ms timeouts) and walks
:func:`lab.migration.rolling_swap`: lb2 to vrrpd, fail over to it, lb1 to vrrpd, a roll-back of
lb1 to keepalived and forward again, the hand-back with ``vrrpctl demote``.  Per step: the
client's outage and failed requests (:func:`lab.client.measure`), the longest time both LBs
held the VIP and the longest time nobody did (netlink, polled every millisecond).  Prints the
median and maximum per step and writes every run to
benchmarks/results/keepalived-swap-<UTC time>.json (:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.migration import KeepalivedPacsLab, Step, rolling_swap  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args(argv)
    record = Record("keepalived-swap", vars(args))
    runs: list[list[Step]] = []
    failures: list[dict[str, str]] = []  # a run whose procedure did not end as the step said
    for n in range(args.runs):
        workdir = Path(tempfile.mkdtemp(prefix="vrrpd-swap-"))
        try:
            with KeepalivedPacsLab(workdir) as lab:
                try:
                    runs.append(rolling_swap(lab))
                except AssertionError as exc:
                    failures.append({"run": str(n + 1), "error": str(exc),
                                     "logs": lab.logs()[-6000:]})
                    print(f"run {n + 1}/{args.runs}: FAILED: {exc}", flush=True)
                    continue
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"run {n + 1}/{args.runs}: " + "; ".join(
            f"{s.outage_ms:.0f} ms/{s.failed}" for s in runs[-1]), flush=True)
    if not runs:
        record.write(runs=[], summary=[], failures=failures)
        return 1
    print(f"\n{'step':<42} {'outage median/max':>18} {'failed max':>10} "
          f"{'both held max':>13} {'none held max':>13}")
    summary = []
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs]
        outage = [s.outage_ms for s in same]
        summary.append({"step": first.name, "median_outage_ms": statistics.median(outage),
                        "max_outage_ms": max(outage),
                        "max_failed": max(s.failed for s in same),
                        "max_both_held_ms": max(s.both_ms for s in same),
                        "max_none_held_ms": max(s.none_ms for s in same)})
        row = summary[-1]
        print(f"{first.name:<42} {row['median_outage_ms']:>8.1f} /{row['max_outage_ms']:>6.1f} "
              f"ms {row['max_failed']:>10} {row['max_both_held_ms']:>10.1f} ms "
              f"{row['max_none_held_ms']:>10.1f} ms")
    record.write(runs=[[asdict(s) for s in run] for run in runs], summary=summary,
                 failures=failures)
    print(f"{len(failures)} of {args.runs} runs failed (see 'failures' in the result file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
