"""Failover with the virtual router MAC and a client that hears no gratuitous ARP.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/vmac_failover.py [--runs 5]

Builds :class:`lab.vmac_pair.VmacPair` for each mode (VRRPv3 at 0.1 s multicast, VRRPv3 at
0.1 s with ``unicast_peers``): real HAProxy 2.6 on lb1 (150) / lb2 (100) with vrrpd
``virtual_mac: true``, a client sending an HTTP HEAD to the VIP every 10 ms (50 ms timeouts)
whose nftables ``arp`` filter drops every gratuitous ARP for the VIP.  ``runs`` times per
fault (SIGTERM of lb1's vrrpd, lb1's switch port down): the client-visible outage, failed
requests, the client's neighbour entry for the VIP before and after, and how many gratuitous
ARPs the client dropped (heard none).  Prints medians and writes every run to
``benchmarks/results/vmac-failover-<UTC time>.json`` (:mod:`benchmarks.record`).  Exit status
1 when a run loses the virtual MAC entry or the VIP did not answer again.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.vmac_pair import FAULTS, VIRTUAL_MAC, VmacPair, failover  # noqa: E402

MODES = {"v3 0.1 s multicast": False, "v3 0.1 s unicast_peers": True}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    record = Record("vmac-failover", vars(args))
    runs: list[dict[str, object]] = []
    summary: list[dict[str, object]] = []
    ok = True
    print(f"{'mode':<24} {'fault':<10} {'outage ms':>10} {'failed':>7} {'takeover ms':>12} "
          "neighbour before/after, GARPs dropped")
    for mode, unicast in MODES.items():
        with tempfile.TemporaryDirectory() as tmp, VmacPair(Path(tmp), unicast=unicast) as pair:
            for fault in FAULTS:
                results = [failover(pair, fault) for _ in range(args.runs)]
                runs += [{"mode": mode, **r.as_dict()} for r in results]
                kept = all(r.neighbour_before == r.neighbour_after == VIRTUAL_MAC
                           for r in results)
                ok &= kept
                row = {"mode": mode, "fault": fault,
                       "median_outage_ms": statistics.median(r.outage_ms for r in results),
                       "median_failed": statistics.median(r.failed for r in results),
                       "median_takeover_ms": statistics.median(r.takeover_ms for r in results),
                       "virtual_mac_kept": kept,
                       "garps_dropped": sum(r.garps_dropped for r in results)}
                summary.append(row)
                print(f"{mode:<24} {fault:<10} {row['median_outage_ms']:>10.1f} "
                      f"{row['median_failed']:>7} {row['median_takeover_ms']:>12.1f} "
                      f"{'virtual MAC throughout' if kept else 'ENTRY CHANGED'}, "
                      f"{row['garps_dropped']} dropped in {args.runs} runs")
    record.write(runs=runs, summary=summary)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
