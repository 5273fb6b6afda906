"""Hostile VRRP packets at volume against a running pair (issue 12 part 6).

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/vrrp_flood.py [--frames 100000]

Builds :class:`lab.wire_flood.WireLab` (lb1 master, lb2 backup; VRRPv3 IPv4 VRID 51 at 0.1 s,
VRRPv2 VRID 52 at 1 s, VRRPv3 IPv6 VRID 53 at 0.1 s; ``peers`` + ``strict_peers``) and sends
from lb3 (a third namespace) :func:`lab.wire_flood.flood_frames`: random bytes, bit-flipped,
truncated/extended adverts, wrong TTLs, and 40 % well-formed rogue adverts (any priority, from
lb3 or spoofed sources).  Two runs: ``--frames`` paced at 5,000 frames/s at most, then
``--burst`` frames as fast as the injector goes (the receive buffers' limit).  For each node:
frames that reached the daemon, counted drops (must be equal), kernel receive-buffer drops,
transitions, RSS growth, CPU seconds, WARNING lines.  Writes
``benchmarks/results/vrrp-flood-<time>.json``; exit status 1 when the paced run fails
(a count mismatch, a transition, a dead daemon, RSS growth of 4 MiB or more).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.wire_flood import WireLab, flood  # noqa: E402


def line(name: str, r: dict[str, Any]) -> str:
    lines = [f"{name}: {r['frames']} frames in {r['send_seconds']:.1f} s "
             f"({r['rate_per_s']:.0f}/s); kinds {r['kinds']}"]
    for node in ("lb1", "lb2"):
        n = r[node]
        lines.append(
            f"  {node}: reached {n['reached']}, counted {n['counted']}, kernel buffer drops "
            f"{n['socket_drops']}, transitions {sum(n['transitions'].values())}, RSS "
            f"{n['rss_growth_kib']:+.0f} KiB ({n['rss_mib']:.1f} MiB), CPU "
            f"{n['cpu_seconds']:.2f} s, WARNING lines {n['warning_lines']}, alive {n['alive']}")
    return "\n".join(lines)


def ok(r: dict[str, Any]) -> bool:
    return all(r[n]["alive"] and r[n]["counted"] == r[n]["reached"]
               and not any(r[n]["transitions"].values()) and r[n]["rss_growth_kib"] < 4096
               for n in ("lb1", "lb2"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--burst", type=int, default=20_000)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("run as root (network namespaces)", file=sys.stderr)
        return 2
    record = Record("vrrp-flood", vars(args))
    with tempfile.TemporaryDirectory(prefix="vrrpd-wire-bench-") as tmp, \
            WireLab(Path(tmp)) as lab:
        flood(lab, 1000, seed=1)  # warm-up
        paced = flood(lab, args.frames, seed=2, pace=50)
        print(line("paced (<= 5,000/s)", paced), flush=True)
        time.sleep(4)  # the pair settles before the burst
        burst = flood(lab, args.burst, seed=3, pace=10**9)
        print(line("burst (unpaced)", burst))
    verdict = ok(paced)
    good = "every frame counted, nothing moved, memory flat"
    print(f"\npaced run: {good if verdict else 'FAILED'}; burst run: "
          f"{good if ok(burst) else 'see above (beyond the receive buffers)'}")
    record.write(runs={"paced": paced, "burst": burst},
                 summary={"paced_ok": verdict, "burst_ok": ok(burst)})
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
