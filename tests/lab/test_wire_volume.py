"""20,000 random, mutated and rogue VRRP packets at a running pair (issue 12 part 6).

lb1 (master) and lb2 (backup) run three virtual routers (VRRPv3 IPv4, VRRPv2, VRRPv3 IPv6)
with ``strict_peers``; lb3, a third namespace, sends :func:`lab.wire_flood.flood_frames`: 60 %
random bytes, valid adverts with bits flipped, truncated or extended ones and wrong TTLs, 40 %
well-formed rogue adverts for the configured VRIDs (any priority, 0 and 255 included) from lb3
or spoofed sources.  Every frame that reached a daemon is counted once as a drop, nothing
moves, memory stays flat, the logs stay rate-limited.  The longer run is
``benchmarks/vrrp_flood.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab.wire_flood import LEGACY_VIP, VIP4, VIP6, WireLab, flood

FRAMES = 20_000
RSS_GROWTH_LIMIT_KIB = 4096
KERNEL_LOSS_LIMIT = FRAMES // 100  # receive-buffer drops tolerated (counted, not the daemon's)


def test_twenty_thousand_hostile_packets(tmp_path: Path) -> None:
    with WireLab(tmp_path) as lab:
        flood(lab, 1000, seed=1)  # warm-up: caches, logging, rate-limit keys
        result = flood(lab, FRAMES, seed=2)
        print("WIRE FLOOD", json.dumps(result, indent=1))
        assert result["kinds"]["rogue-lb3"] > 3000 and result["kinds"]["rogue-spoofed"] > 3000
        expected = {VIP4: ["lb1"], LEGACY_VIP: ["lb1"], VIP6[1]: ["lb1"]}
        assert result["holders_before"] == result["holders_after"] == expected
        for node in ("lb1", "lb2"):
            r = result[node]
            assert r["alive"], node
            assert r["counted"] == r["reached"], (node, r)
            assert r["socket_drops"] <= KERNEL_LOSS_LIMIT, (node, r)
            assert not any(r["transitions"].values()), (node, r)
            assert r["rss_growth_kib"] < RSS_GROWTH_LIMIT_KIB, (node, r)
            rogue = sum(n for k, n in r["by_reason"].items() if k.endswith("/unknown_peer"))
            assert rogue >= result["kinds"]["rogue-lb3"] + result["kinds"]["rogue-spoofed"] \
                - r["socket_drops"], (node, r)
            # one WARNING per reason per 10 s window (RateLimitedLog)
            windows = 2 + int(result["send_seconds"] // 10)
            assert r["warning_lines"] <= len(r["by_reason"]) * windows, (node, r)
