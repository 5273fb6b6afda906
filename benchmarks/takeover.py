"""VRRP takeover in the namespace lab: vrrpd with vrrpd, keepalived 2.2.7 and FRR's vrrpd.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/takeover.py [--runs 3] [--peers vrrpd,keepalived,frr]
        [--vmac both|off|on] [--skip-keepalived] [--skip-frr]

The scenarios of tests/lab/test_failover.py, tests/lab/test_interop_keepalived.py and
tests/lab/test_interop_frr.py, on the same set-ups (:mod:`lab.takeover`), priorities 150/100:

* ``vrrpd``: two vrrpd, VRRPv3 at 0.1 s and 1 s, VRRPv2 at 1 s (:class:`lab.takeover.Pair`);
* ``keepalived``: vrrpd and keepalived, each as the master, VRRPv2 IPv4 1 s, VRRPv3 IPv4 and
  IPv6 0.1 s (:data:`lab.interop.FLAVOURS`), without and with the virtual MAC on both sides;
* ``frr``: vrrpd (``virtual_mac``) and FRR 8.4's vrrpd, each as the master, same flavours.

For each pair, ``--runs`` times per fault (the master's VRRP daemon SIGTERMed: it sends
priority 0 and the backup waits Skew_Time; the master's switch port down: the backup waits
Master_Down_Interval, RFC 5798 §6.4.2): wait a random phase of the advert interval
(:mod:`lab.phase`, the delay is recorded), inject the fault, time it until the backup's kernel
holds the VIP (netlink, polled every millisecond; for FRR, until FRR reports Master or vrrpd
holds the VIP), then restore and wait for the old master to preempt back.  Prints medians
with ranges and the RFC bound (+100 ms), and writes every run to
``benchmarks/results/takeover-<UTC time>.json`` (:mod:`benchmarks.record`).  Exits 2 when
keepalived or FRR is selected but not installed (unless ``--skip-keepalived`` /
``--skip-frr``), 1 when a run failed or a takeover exceeded its bound.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import SKIP_KEEPALIVED, Record, require_keepalived, require_peer  # noqa: E402
from lab.daemons import wait_for  # noqa: E402
from lab.frr import FRR  # noqa: E402
from lab.interop import FLAVOURS, SLACK, Flavour  # noqa: E402
from lab.phase import common_period, random_phase  # noqa: E402
from lab.takeover import (  # noqa: E402
    INTEROP_FAULTS,
    VIP4,
    FrrPeers,
    KeepalivedPeers,
    Pair,
    fault_bound,
    instance,
    two_nodes,
)

PEERS = ("vrrpd", "keepalived", "frr")
SKIP_FRR = "--skip-frr"
VRRPD_CASES = [(3, 0.1), (3, 1.0), (2, 1.0)]  # (version, advert interval s), as the test
PAIR_FAULTS = ("SIGTERM", "port down")


class Cell:
    """One pair set up in a fresh lab: how to elect, detect the takeover and settle again."""

    def __init__(self, labels: dict[str, Any], version: int, interval: float,
                 faults: tuple[str, ...],
                 build: Callable[[Any, Path], Any], taken: Callable[[Any], bool],
                 settle: Callable[[Any], None]) -> None:
        self.labels, self.version, self.interval = labels, version, interval
        self.faults, self.build, self.taken, self.settle = faults, build, taken, settle


def vrrpd_cells() -> Iterator[Cell]:
    def settle(pair: Pair, interval: float) -> None:
        wait_for(lambda: pair.holders(VIP4) == ["lb1"], 6 * interval + 3, "lb1 to preempt back")
        time.sleep(interval * 2)  # let lb2 learn the master's interval

    for version, interval in VRRPD_CASES:
        def build(lab: Any, tmp: Path, v: int = version, i: float = interval) -> Pair:
            pair = Pair(lab, tmp, lambda prio: [instance("web", 51, prio, i, [VIP4],
                                                         version=v)])
            pair.elect(VIP4)
            time.sleep(i * 2)
            return pair
        yield Cell({"peer": "vrrpd", "case": f"v{version} {interval:g} s",
                    "taker": "vrrpd"}, version, interval, PAIR_FAULTS, build,
                   lambda pair: pair.probe["lb2"].has(VIP4),
                   lambda pair, i=interval: settle(pair, i))


def interop_cells(peer: str, vmacs: list[bool]) -> Iterator[Cell]:
    other = "keepalived" if peer == "keepalived" else "FRR"
    for flavour in FLAVOURS:
        for vrrpd_master in (False, True):
            for vmac in vmacs:
                def build(lab: Any, tmp: Path, f: Flavour = flavour, m: bool = vrrpd_master,
                          v: bool = vmac) -> Any:
                    peers = (KeepalivedPeers(lab, tmp, f, m, v) if peer == "keepalived"
                             else FrrPeers(lab, tmp, f, m))
                    peers.elect()
                    return peers
                yield Cell({"peer": peer, "case": flavour.name, "vmac": vmac,
                            "master": "vrrpd" if vrrpd_master else other,
                            "taker": other if vrrpd_master else "vrrpd"},
                           flavour.version, flavour.interval, INTEROP_FAULTS, build,
                           lambda peers: peers.taken_over(),
                           lambda peers, i=flavour.interval: peers.wait_settled(6 * i + 5))


def measure(cell: Cell, runs: int, rng: random.Random) -> list[dict[str, Any]]:
    """Every run of every fault of ``cell`` on one pair in one fresh lab."""
    rows: list[dict[str, Any]] = []
    period = common_period(cell.interval)  # the only timer both daemons run: the adverts
    with tempfile.TemporaryDirectory() as tmp, two_nodes() as lab:
        pair = cell.build(lab, Path(tmp))
        try:
            for fault in cell.faults:
                bound = fault_bound(fault, cell.version, cell.interval, SLACK)
                for run in range(runs):
                    delay = random_phase(period, rng)
                    start = time.monotonic()
                    pair.inject(fault)
                    wait_for(lambda: cell.taken(pair), 10, "the backup to take over",
                             poll=0.001)
                    took = time.monotonic() - start
                    rows.append({**cell.labels, "fault": fault.lower().replace(" ", "-"),
                                 "run": run, "phase_delay_ms": round(delay * 1000, 1),
                                 "takeover_ms": round(took * 1000, 1),
                                 "bound_ms": round(bound * 1000, 1),
                                 "within_bound": took <= bound})
                    print(f"  {cell.labels} {fault}: {took * 1000:.0f} ms "
                          f"(bound {bound * 1000:.0f} ms, phase {delay * 1000:.0f} ms)",
                          flush=True)
                    pair.restore(fault)
                    cell.settle(pair)
        finally:
            pair.close()
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median, range and bound per cell and fault, in the order measured."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple((k, v) for k, v in row.items()
                    if k not in ("run", "phase_delay_ms", "takeover_ms", "within_bound"))
        groups.setdefault(key, []).append(row)
    summary = []
    for key, group in groups.items():
        times = [r["takeover_ms"] for r in group]
        summary.append({**dict(key), "runs": len(times),
                        "median_ms": round(statistics.median(times)),
                        "min_ms": round(min(times)), "max_ms": round(max(times)),
                        "all_within_bound": all(r["within_bound"] for r in group)})
    return summary


def cell_text(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    flag = "" if s["all_within_bound"] else " (OVER BOUND)"
    return f"{s['median_ms']} ({s['min_ms']}-{s['max_ms']}){flag}"


def print_tables(summary: list[dict[str, Any]]) -> None:
    def find(**want: Any) -> dict[str, Any] | None:
        return next((s for s in summary if all(s.get(k) == v for k, v in want.items())), None)

    print("\nvrrpd with vrrpd, takeover ms: median (min-max) of", end=" ")
    print(summary[0]["runs"] if summary else 0, "runs")
    for fault in ("sigterm", "port-down"):
        cells = [cell_text(find(peer="vrrpd", case=f"v{v} {i:g} s", fault=fault))
                 for v, i in VRRPD_CASES]
        shown = [f"v{v} {i:g} s: {c}" for (v, i), c in zip(VRRPD_CASES, cells, strict=True)]
        print(f"  {fault:<10} " + " | ".join(shown))
    for peer, other in (("keepalived", "keepalived"), ("frr", "FRR")):
        for vmac in (False, True):
            if find(peer=peer, vmac=vmac) is None:
                continue
            print(f"\nvrrpd with {other}{' (virtual MAC)' if vmac else ''}: takeover ms, "
                  f"SIGTERM / port down")
            for flavour in FLAVOURS:
                parts = []
                for master in (other, "vrrpd"):
                    got = [cell_text(find(peer=peer, case=flavour.name, vmac=vmac,
                                          master=master, fault=f)) for f in INTEROP_FAULTS]
                    taker = "vrrpd" if master == other else other
                    parts.append(f"{master} master -> {taker}: {' / '.join(got)}")
                print(f"  {flavour.name:<8} " + " | ".join(parts))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs per pair and fault (default 3)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help=f"comma-separated subset of {','.join(PEERS)} (default: all)")
    p.add_argument("--vmac", choices=("both", "off", "on"), default="both",
                   help="keepalived cases without / with the virtual MAC (default both)")
    p.add_argument("--seed", type=int, default=None, help="random phase seed (recorded)")
    p.add_argument(SKIP_KEEPALIVED, action="store_true",
                   help="leave keepalived out instead of failing when it is not installed")
    p.add_argument(SKIP_FRR, action="store_true",
                   help="leave FRR out instead of failing when it is not installed")
    args = p.parse_args()
    peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown or args.runs < 1:
        p.error(f"--peers takes {','.join(PEERS)} (got {unknown}); --runs at least 1")
    if "keepalived" in peers and not require_keepalived(args.skip_keepalived, "takeover.py"):
        peers.remove("keepalived")
    if "frr" in peers and not require_peer("frr", FRR / "vrrpd", args.skip_frr, SKIP_FRR,
                                           "takeover.py"):
        peers.remove("frr")
    args.seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(args.seed)
    record = Record("takeover", vars(args))
    vmacs = {"both": [False, True], "off": [False], "on": [True]}[args.vmac]
    cells: list[Cell] = []
    if "vrrpd" in peers:
        cells += vrrpd_cells()
    if "keepalived" in peers:
        cells += interop_cells("keepalived", vmacs)
    if "frr" in peers:
        cells += interop_cells("frr", [True])  # FRR runs on macvlan links only
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for cell in cells:
        try:
            rows += measure(cell, args.runs, rng)
        except Exception as exc:  # recorded; the other cells still run
            failures.append({**cell.labels, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  {cell.labels} FAILED: {exc}", flush=True)
    summary = summarise(rows)
    record.write(runs=rows, summary=summary, failures=failures)
    print_tables(summary)
    ok = not failures and all(s["all_within_bound"] for s in summary)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
