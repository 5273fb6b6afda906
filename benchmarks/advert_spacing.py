"""How regular are the master's adverts while it runs many trackers?  (target: ±5 ms at p99)

Run as root: ``.venv/bin/python benchmarks/advert_spacing.py [--duration 30] [--trackers 20]``

Builds :class:`lab.haproxy_pair.HAProxyPair` at 0.1 s VRRPv3 adverts and gives lb1 (the
master) ``--trackers`` extra trackers at 0.1 s, cycling through ``tcp`` and ``http`` (to the
backend), ``file`` (absent file) and ``process`` (HAProxy's pidfile), all weight 0 and all
passing, plus the ``haproxy`` tracker.  On lb2 an AF_PACKET socket records the kernel receive
timestamp (SO_TIMESTAMPNS) of every VRRP packet from lb1 for ``--duration`` seconds and the
spacing is compared with the 100 ms interval.  Writes
``benchmarks/results/advert-spacing-<UTC time>.json`` (:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.haproxy_pair import BACKEND, BACKEND_PORT, HAProxyPair  # noqa: E402
from lab.netns import Node  # noqa: E402

ETH_P_IP = 0x0800
SO_TIMESTAMPNS = 35
IPPROTO_VRRP = 112
KINDS = ("tcp", "http", "file", "process")


def tracker(kind: str, i: int, pair: HAProxyPair, tmp: Path) -> dict[str, Any]:
    backend = BACKEND[1].split("/")[0]
    opts: dict[str, Any] = {
        "tcp": {"host": backend, "port": BACKEND_PORT},
        "http": {"url": f"http://{backend}:{BACKEND_PORT}/", "method": "HEAD"},
        "file": {"path": str(tmp / f"absent-{i}")},
        "process": {"pidfile": str(pair.haproxy["lb1"].pidfile)},
    }[kind]
    return {"type": kind, "interval": 0.1, "weight": 0, **opts}


def capture(node: Node, source: str, duration: float) -> list[float]:
    """Kernel receive times (seconds) of VRRP packets from ``source`` seen on ``node``."""
    with node.ns.entered():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        sock.bind((node.ifname, ETH_P_IP))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.settimeout(0.5)
    src = socket.inet_aton(source)
    stamps = []
    end = time.monotonic() + duration
    with sock:
        while time.monotonic() < end:
            try:
                data, anc, _flags, _addr = sock.recvmsg(2048, 64)
            except TimeoutError:
                continue
            if len(data) < 20 or data[9] != IPPROTO_VRRP or data[12:16] != src:
                continue
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    stamps.append(sec + nsec / 1e9)
    return stamps


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--trackers", type=int, default=20)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("advert_spacing.py: run as root (network namespaces)", file=sys.stderr)
        return 1
    record = Record("advert-spacing", parameters=vars(args))
    with tempfile.TemporaryDirectory(prefix="vrrpd-spacing-") as tmp_name:
        tmp = Path(tmp_name)
        holder: dict[str, HAProxyPair] = {}

        def many_trackers(node: str, doc: dict[str, Any]) -> None:
            if node != "lb1":
                return
            for i in range(args.trackers):
                name = f"t{i:02d}-{KINDS[i % len(KINDS)]}"
                doc["tracks"][name] = tracker(KINDS[i % len(KINDS)], i, holder["pair"], tmp)
                doc["instances"][0]["track"].append(name)

        pair = HAProxyPair(tmp, interval=0.1, customize=many_trackers)
        holder["pair"] = pair
        with pair:
            time.sleep(1.0)
            web = pair.vrrpd["lb1"].instance("web")
            assert web["state"] == "MASTER" and all(t["ok"] for t in web["trackers"]), web
            since = time.time()
            stamps = capture(pair.node("lb2"), "192.0.2.11", args.duration)
            final = pair.vrrpd["lb1"].instance("web")
            events = [e for e in pair.vrrpd["lb1"].ctl("events")["events"]
                      if e["ts"] >= since and (e["type"] == "transition" or not e.get("ok"))]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    dev = [abs(g - 100.0) for g in gaps]
    summary = {"trackers": len(final["trackers"]), "adverts": len(stamps),
               "duration_s": args.duration, "mean_ms": round(statistics.mean(gaps), 3),
               "deviation_p50_ms": round(percentile(dev, 0.5), 3),
               "deviation_p99_ms": round(percentile(dev, 0.99), 3),
               "deviation_max_ms": round(max(dev), 3),
               "min_gap_ms": round(min(gaps), 3), "max_gap_ms": round(max(gaps), 3)}
    summary["meets_target"] = summary["deviation_p99_ms"] <= 5.0
    summary["transitions_and_tracker_failures"] = events
    for e in events:  # a flapping tracker makes a real failover, not a late advert
        print(f"  during capture: {json.dumps(e)}")
    print(f"{summary['adverts']} adverts from lb1 with {summary['trackers']} trackers at 0.1 s, "
          f"{args.duration:g} s")
    print(f"spacing mean {summary['mean_ms']:.2f} ms (min {summary['min_gap_ms']:.2f}, "
          f"max {summary['max_gap_ms']:.2f})")
    print(f"|spacing - 100 ms|: p50 {summary['deviation_p50_ms']:.2f} ms, "
          f"p99 {summary['deviation_p99_ms']:.2f} ms, max {summary['deviation_max_ms']:.2f} ms "
          f"-> target ±5 ms at p99 {'met' if summary['meets_target'] else 'MISSED'}")
    record.write(runs=[round(g, 3) for g in gaps], summary=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
