"""Failover of the transparent PACS pair: how long until a modality can associate again, what
becomes of an association open at the fault, and whether the PACS still sees the client.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/tproxy_failover.py [--cycles 5]

Builds :class:`lab.tproxy.TransparentLab` (etc/haproxy/haproxy.cfg with PACS_TRANSPARENT=1,
etc/vrrpd/lbN-tproxy.yaml: VRRPv3 every 0.1 s, client VIP and gateway VIP in one sync group),
a client sending a web GET through the client VIP every 10 ms (50 ms timeout) and opening a
new DICOM association with one C-ECHO every 50 ms (0.5 s timeouts).  Each cycle injects the
four faults of issue 17 on the master in turn -- HAProxy SIGKILL, ``vrrpctl demote pacs``,
client-side cable (eth1) pulled, server-side cable (eth2) pulled -- and restores the old master
as BACKUP after each (the master alternates, so lb1's 60 s preempt_delay never fires).  Per
fault (:func:`lab.tproxy.fail_over`): both VIPs on the new master, split samples, the longest
gap between successful new associations and web requests, the first new association after the
fault, one more C-ECHO on an association opened before the fault, and the addresses the PACS
logged for the C-ECHOs after it.  Prints medians and maxima and writes every run to
``benchmarks/results/tproxy-failover-<UTC time>.json`` (:mod:`benchmarks.record`), with the
load average at start and end: on a shared machine the figures follow it.  A fault after which
the pair did not serve again within the waits of :func:`lab.tproxy.fail_over` is listed under
``failed_runs`` and the next fault goes on.  Exit status 1 when a run split the VIPs, the PACS
saw any address but the client's, or a run failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.dicom import DicomProber  # noqa: E402
from lab.haproxy_pair import VIP_ADDR  # noqa: E402
from lab.tproxy import CLIENT_ADDR, FAULTS, Faults, TransparentLab, fail_over  # noqa: E402
from vrrpd.control.client import ControlError  # noqa: E402

METRICS = ("both_vips_moved_ms", "first_association_ms", "dicom_gap_ms", "http_gap_ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=5, help="each cycle injects all four faults")
    args = p.parse_args()
    record = Record("tproxy-failover", vars(args))
    results = []
    errors: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, TransparentLab(Path(tmp)) as lab:
        faults = Faults(lab)
        with lab.client(interval=0.01, timeout=0.05) as http:
            dicom = DicomProber(lab.node("client"), VIP_ADDR, interval=0.05,
                                timeout=0.5).start()
            try:
                for cycle in range(args.cycles):
                    for fault in FAULTS:
                        try:
                            r = fail_over(lab, faults, fault, http, dicom)
                        except (AssertionError, ControlError) as exc:  # counted, not fatal
                            errors.append({"cycle": cycle + 1, "fault": fault,
                                           "error": (str(exc) or repr(exc)).splitlines()[0]})
                            print(f"cycle {cycle + 1} {fault:<13} FAILED: {errors[-1]['error']}",
                                  flush=True)
                            faults.heal()
                            continue
                        results.append(r)
                        print(f"cycle {cycle + 1} {fault:<13} {r.old_master}->{r.new_master} "
                              f"VIPs {r.both_vips_moved_ms:6.1f} ms, first association "
                              f"{r.first_association_ms:6.1f} ms, C-ECHO gap "
                              f"{r.dicom_gap_ms:6.1f} ms ({r.dicom_failed} failed), web gap "
                              f"{r.http_gap_ms:6.1f} ms, split samples {r.split_samples} "
                              f"({r.longest_split_ms:.1f} ms), "
                              f"open association {r.open_association}, PACS saw "
                              f"{', '.join(r.pacs_saw)}", flush=True)
            finally:
                dicom.stop()
    summary = []
    print(f"\n{'fault':<13} " + " ".join(f"{m:>26}" for m in METRICS) + "  open association")
    for fault in FAULTS:
        rows = [r for r in results if r.fault == fault]
        row: dict[str, object] = {"fault": fault, "runs": len(rows),
                                  "failed_runs": sum(e["fault"] == fault for e in errors)}
        if not rows:
            summary.append(row)
            continue
        for m in METRICS:
            values = [getattr(r, m) for r in rows]
            row[f"median_{m}"] = round(statistics.median(values), 1)
            row[f"max_{m}"] = round(max(values), 1)
        row["open_association"] = dict(Counter(r.open_association for r in rows))
        row["split_samples"] = sum(r.split_samples for r in rows)
        row["longest_split_ms"] = round(max(r.longest_split_ms for r in rows), 1)
        row["pacs_saw"] = sorted({a for r in rows for a in r.pacs_saw})
        summary.append(row)
        print(f"{fault:<13} " + " ".join(
            f"{row[f'median_{m}']:>12} (max {row[f'max_{m}']:>7})" for m in METRICS)
            + f"  {row['open_association']}")
    record.write(runs=[dataclasses.asdict(r) for r in results], summary=summary,
                 failed_runs=errors)
    bad = [r for r in results if r.split_samples or r.pacs_saw != [CLIENT_ADDR]]
    for r in bad:
        print(f"FAILED: {r.fault} {r.old_master}->{r.new_master}: split samples "
              f"{r.split_samples}, PACS saw {r.pacs_saw}", file=sys.stderr)
    return 1 if bad or errors else 0


if __name__ == "__main__":
    sys.exit(main())
