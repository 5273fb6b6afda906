"""Anycast across three nodes (issue 18): what a client sees when a node leaves.

Run as root from a clean clone (``scripts/setup-host`` once; FRR 8.4 and HAProxy 2.6 from
Debian)::

    .venv/bin/python benchmarks/anycast.py [--runs 3] [--connections 1000]

Builds :class:`lab.anycast.AnycastLab` once (FRR router with ECMP and
``fib_multipath_hash_policy=1``, lb1..lb3 with FRR, HAProxy and vrrpd running the shipped
files) and a client behind the router sending an HTTP HEAD to the service address every
10 ms (``--timeout`` per connect and per answer).  ``runs`` times per event:

* ``haproxy-kill``: SIGKILL of lb2's HAProxy (vrrpd's tracker sees it by pidfd and
  withdraws); then HAProxy is started again and the rejoin (from its start, through the
  tracker's rise count, to the router's kernel route) is timed;
* ``cut-off``: lb3's switch port down (the node is alive but unreachable: the router's BFD
  session, 3 x 100 ms, takes it out); then the port comes back;
* ``drain``: ``vrrpctl demote`` on lb1 (MED to its maximum, wait for HAProxy's sessions on
  the service address to stay at 0 for 1 s, withdraw); then ``vrrpctl resume``.

For each: ``settled_ms``, when the router's kernel route lost the node (polled every 5 ms);
``outage_ms``, the client-visible outage for new connections: from the fault to the send
time of the last request that failed, plus one probe interval (0 when none failed);
``failed`` requests; ``failed_after_settled``, requests sent after the router settled that
failed (a new connection the router sent to a node that serves).  Each node is put back
before the next event (HAProxy restarted and seeing the PACS servers UP, cable back and
HAProxy's checks UP again, ``vrrpctl resume``) and ``rejoin_ms`` timed until it is in the
router's ECMP set again.  Then the flow spread of ``--connections`` new connections from the
client over the three nodes.

Prints medians and the targets (haproxy-kill <= 150 ms, cut-off <= 500 ms, drain: no failed
request for new connections) and writes every run to
``benchmarks/results/anycast-<UTC time>.json`` (:mod:`benchmarks.record`; FRR's version is in
its ``engine`` section).  Bounded: about 2 minutes at the defaults.  Exit status 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.anycast import LB_NAMES, LBS, SERVICE, AnycastLab  # noqa: E402
from lab.client import Answer, ClientProber, probe  # noqa: E402

ALL = set(LBS)
TARGETS_MS = {"haproxy-kill": 150.0, "cut-off": 500.0}
INTERVAL = 0.01  # seconds between the client's requests


def frr_version() -> str:
    out = subprocess.run(["/usr/lib/frr/bgpd", "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def event(lab: AnycastLab, prober: ClientProber, kind: str, timeout: float) -> dict[str, Any]:
    """One event of ``kind`` while ``prober`` runs; its figures; the node put back after."""
    node = {"haproxy-kill": "lb2", "cut-off": "lb3", "drain": "lb1"}[kind]
    time.sleep(0.5)
    drain: dict[str, Any] = {}
    fault = time.monotonic()
    if kind == "haproxy-kill":
        lab.kill_haproxy(node)
    elif kind == "cut-off":
        lab.cut(node)
    else:
        thread = threading.Thread(target=lambda: drain.update(lab.vrrpd[node].ctl("demote")))
        thread.start()
    settled = fault + lab.wait_ecmp(ALL - {node}, 10)
    time.sleep(2 * timeout + 0.5)  # every request sent so far has its answer
    if kind == "drain":
        thread.join(60)
    samples = [s for s in prober.samples() if s.sent >= fault - 0.2]
    failed = [s for s in samples if s.sent > fault and not s.ok]
    result = {
        "event": kind, "node": node, "settled_ms": round((settled - fault) * 1000, 1),
        "outage_ms": round((failed[-1].sent - fault + INTERVAL) * 1000, 1) if failed else 0.0,
        "failed": len(failed),
        "failed_after_settled": sum(not s.ok for s in samples if s.sent > settled),
        "requests": sum(s.sent > fault for s in samples),
        "max_latency_ms_after_settled": round(max(
            (s.latency_ms for s in samples if s.sent > settled and s.ok), default=0.0), 1),
        "drain": drain.get("drained"),
    }
    restart = time.monotonic()
    if kind == "haproxy-kill":
        lab.restart_haproxy(node)
    elif kind == "cut-off":
        lab.cut(node, off=False)
    else:
        lab.vrrpd[node].ctl("resume")
    lab.wait_ecmp(ALL, 30)
    result["rejoin_ms"] = round((time.monotonic() - restart) * 1000, 1)
    return result


def spread(lab: AnycastLab, connections: int, timeout: float) -> dict[str, Any]:
    """``connections`` new connections from the client (20 at a time): the node of each."""

    async def run() -> list[tuple[Answer, float]]:
        limit = asyncio.Semaphore(20)

        async def one() -> tuple[Answer, float]:
            async with limit:
                start = time.monotonic()
                answer = await probe(SERVICE, 80, "/", timeout, LB_NAMES)
                return answer, (time.monotonic() - start) * 1000

        return list(await asyncio.gather(*(one() for _ in range(connections))))

    with lab.node("client").ns.entered():
        answers = asyncio.run(run())
    failed = [(a, ms) for a, ms in answers if not a.ok]
    return {"connections": connections, "failed": len(failed),
            "failed_after_ms": sorted(round(ms) for _, ms in failed),
            "failed_why": dict(Counter(a.why for a, _ in failed)),
            "per_node": dict(sorted(Counter(a.lb for a, _ in answers if a.ok).items())),
            "backends": dict(Counter(a.backend for a, _ in answers if a.ok))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=0.5,
                   help="seconds per connect and per answer of one client request")
    p.add_argument("--spread-timeout", type=float, default=2.0,
                   help="seconds per connect and per answer of the spread's connections "
                        "(longer than TCP's 1 s SYN retransmission: it measures where "
                        "flows go, not how fast)")
    args = p.parse_args()
    record = Record("anycast", vars(args))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, AnycastLab(Path(tmp)) as lab:
        with lab.client(interval=INTERVAL, timeout=args.timeout) as prober:
            for _ in range(args.runs):
                for kind in ("haproxy-kill", "cut-off", "drain"):
                    runs.append(event(lab, prober, kind, args.timeout))
                    r = runs[-1]
                    print(f"{kind:<13} settled {r['settled_ms']:>6.1f} ms  outage "
                          f"{r['outage_ms']:>6.1f} ms  failed {r['failed']:>3}/"
                          f"{r['requests']:<4} after settled {r['failed_after_settled']}  "
                          f"rejoin {r['rejoin_ms']:.0f} ms", flush=True)
        flows = spread(lab, args.connections, args.spread_timeout)
    summary: dict[str, Any] = {}
    ok = True
    for kind in ("haproxy-kill", "cut-off", "drain"):
        rows = [r for r in runs if r["event"] == kind]
        row = {"median_settled_ms": statistics.median(r["settled_ms"] for r in rows),
               "median_outage_ms": statistics.median(r["outage_ms"] for r in rows),
               "max_outage_ms": max(r["outage_ms"] for r in rows),
               "failed": [r["failed"] for r in rows],
               "failed_after_settled": [r["failed_after_settled"] for r in rows],
               "median_rejoin_ms": statistics.median(r["rejoin_ms"] for r in rows)}
        if kind in TARGETS_MS:
            row["target_ms"] = TARGETS_MS[kind]
            row["met"] = row["median_outage_ms"] <= TARGETS_MS[kind]
        else:
            row["target"] = "no failed request for new connections"
            row["met"] = not any(row["failed_after_settled"])
        ok &= bool(row["met"])
        summary[kind] = row
        print(f"{kind:<13} median outage {row['median_outage_ms']:.1f} ms (max "
              f"{row['max_outage_ms']:.1f}), settled {row['median_settled_ms']:.1f} ms, failed "
              f"{row['failed']}, after settled {row['failed_after_settled']}: "
              f"{'met' if row['met'] else 'MISSED'}")
    summary["spread"] = flows
    print(f"flow spread of {flows['connections']} connections: {flows['per_node']} "
          f"({flows['failed']} failed), backends {flows['backends']}")
    record.write(runs=runs, summary=summary, engine={"frr": frr_version()})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
