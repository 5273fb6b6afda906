"""Start-up: from process start to the first advert on the wire and to MASTER with the VIPs.

Run as root: ``.venv/bin/python benchmarks/startup.py [--runs 10]``

Two lab nodes; vrrpd runs on lb1 only (nobody else speaks for the VRIDs), lb2 records every
VRRP frame from lb1 with its kernel receive time (:mod:`lab.sniff`) and lb1's addresses are
polled every millisecond over netlink (:class:`lab.daemons.AddressProbe`).  Each run starts
``python -m vrrpd`` in lb1's namespace; the clock starts just before the fork (wall clock, the
sniffer's time base), and the run stops the daemon (SIGTERM) and waits for its VIPs to go.

Variants:

* ``owner``: one instance with priority 255, the address owner, which RFC 5798 §6.4.1 makes
  master at once: its first advert measures the daemon's own start-up.
* ``backup-first``: one instance with priority 150 at 0.1 s.  RFC 5798 §6.4.1 starts it as
  Backup; it may send its first advert only when Master_Down_Interval (0.341 s here) has passed
  without one from a master.  Reported with that interval subtracted: the daemon's share.
* ``255``: 255 instances at 0.1 s, priority 150 (the VIPs of benchmarks/scale.py): first
  advert of any VRID, and all 255 VIPs held.

Target (issue 16 part 5): at most 300 ms from process start to the first advert (owner; the
daemon's share for the others).  Prints a table and writes
``benchmarks/results/startup-<UTC time>.json`` (:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record, byte_compile  # noqa: E402
from benchmarks.scale import vips  # noqa: E402
from lab.daemons import AddressProbe, Vrrpd, wait_for  # noqa: E402
from lab.netns import Topology  # noqa: E402
from lab.sniff import Sniffer  # noqa: E402
from vrrpd.proto.timers import master_down_interval  # noqa: E402

TARGET_MS = 300.0
INTERVAL = 0.1
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO vrrpd .* started on node",
                      re.MULTILINE)


def instances(variant: str, ifname: str) -> list[dict[str, Any]]:
    if variant == "owner":
        return [{"name": "web", "interface": ifname, "vrid": 51, "priority": 255,
                 "advert_interval": INTERVAL, "vips": ["192.0.2.100/24"]}]
    if variant == "backup-first":
        return [{"name": "web", "interface": ifname, "vrid": 51, "priority": 150,
                 "advert_interval": INTERVAL, "vips": ["192.0.2.100/24"]}]
    return [{"name": f"vr{v}", "interface": ifname, "vrid": v, "priority": 150,
             "advert_interval": INTERVAL, "vips": vips(v)} for v in range(1, 256)]


def rfc_wait(variant: str) -> float:
    """What RFC 5798 §6.4.1 makes the router wait before its first advert (seconds)."""
    return 0.0 if variant == "owner" else master_down_interval(3, 150, round(INTERVAL * 100))


def started_at(log: str) -> float | None:
    """Wall-clock time of the daemon's "started" line (milliseconds resolution)."""
    found = LOG_TIME.search(log)
    if found is None:
        return None
    return time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S")) + int(
        found.group(2)) / 1000


def one_run(lab: Topology, tmp: Path, variant: str, run: int) -> dict[str, Any]:
    lb1 = lab.nodes["lb1"]
    cfg = instances(variant, lb1.ifname)
    wanted = {v for i in cfg for v in i["vips"]}
    daemon = Vrrpd(lb1, tmp / f"{variant}-{run}", cfg)
    probe = AddressProbe(lb1)
    try:
        with Sniffer(lab.nodes["lb2"]) as sniff:
            t0 = time.time()
            daemon.start(wait=False)
            wait_for(lambda: sniff.frames("vrrp"), 20, "the first advert", poll=0.001)
            wait_for(lambda: wanted <= probe.addresses(), 20, "the VIPs", poll=0.001)
            held = time.time()
            first = min(f.at for f in sniff.frames("vrrp"))
        ready = started_at(daemon.log())
        wait_ms = rfc_wait(variant) * 1000
        row = {"variant": variant, "run": run, "instances": len(cfg),
               "first_advert_ms": round((first - t0) * 1000, 1),
               "rfc_wait_ms": round(wait_ms, 1),
               "daemon_share_ms": round((first - t0) * 1000 - wait_ms, 1),
               "vips_held_ms": round((held - t0) * 1000, 1),
               "started_line_ms": round((ready - t0) * 1000, 1) if ready else None,
               "loadavg_1min": round(os.getloadavg()[0], 2)}
    finally:
        daemon.stop()
        if variant == "owner":  # the owner's VIPs are its own addresses: they stay (§1)
            for vip in wanted:
                lb1.ns.run(["ip", "addr", "del", vip, "dev", lb1.ifname])
        wait_for(lambda: not (wanted & probe.addresses()), 20, "the VIPs to go", poll=0.01)
        probe.close()
    return row


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        line: dict[str, Any] = {"variant": variant, "runs": len(mine),
                                "instances": mine[0]["instances"]}
        for key in ("first_advert_ms", "daemon_share_ms", "vips_held_ms", "started_line_ms"):
            values = [r[key] for r in mine if r[key] is not None]
            if values:
                line[key] = {"median": round(statistics.median(values), 1),
                             "min": min(values), "max": max(values)}
        line["target_ms"] = TARGET_MS
        line["meets_target"] = line["daemon_share_ms"]["median"] <= TARGET_MS
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--variants", nargs="+", default=["owner", "backup-first", "255"],
                   choices=["owner", "backup-first", "255"])
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("startup.py: run as root (network namespaces)", file=sys.stderr)
        return 1
    record = Record("startup", parameters={**vars(args), "byte_code": byte_compile()})
    rows = []
    with tempfile.TemporaryDirectory(prefix="vrrpd-startup-") as tmp, Topology() as lab:
        lab.add_node("lb1", "192.0.2.11/24", "2001:db8::11/64")
        lab.add_node("lb2", "192.0.2.12/24", "2001:db8::12/64")
        for variant in args.variants:
            for run in range(args.runs):
                row = one_run(lab, Path(tmp), variant, run)
                rows.append(row)
                print(f"  {variant:13} run {run + 1}: first advert {row['first_advert_ms']:7.1f} "
                      f"ms (daemon's share {row['daemon_share_ms']:6.1f}), VIPs held "
                      f"{row['vips_held_ms']:7.1f} ms, load {row['loadavg_1min']}", flush=True)
    summary = summarize(rows)
    print(f"\n{'variant':13} {'N':>3}  first advert med (min-max)   daemon's share   "
          "VIPs held med (max)")
    for s in summary:
        fa, ds, vh = s["first_advert_ms"], s["daemon_share_ms"], s["vips_held_ms"]
        print(f"{s['variant']:13} {s['instances']:>3}  {fa['median']:7.1f} "
              f"({fa['min']:.1f}-{fa['max']:.1f})   {ds['median']:7.1f}   "
              f"{vh['median']:7.1f} ({vh['max']:.1f})   "
              f"{'met' if s['meets_target'] else 'MISSED'} (<= {TARGET_MS:g} ms)")
    record.write(runs=rows, summary=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
