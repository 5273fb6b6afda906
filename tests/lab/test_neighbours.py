"""Neighbour-cache hygiene on link up (vrrpd.kernel.neighbours), against the real kernel."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from lab.daemons import wait_for
from lab.netns import Topology
from vrrpd.kernel.neighbours import NeighbourCache

UNREACHABLE = "192.0.2.99"  # nobody on the lab switch answers ARP for it
CONNECT = ("import socket; s = socket.socket(); s.settimeout(5); "
           f"s.connect_ex(('{UNREACHABLE}', 80))")


def test_unresolved_entries_are_cleared_and_resolved_ones_kept(two_nodes: Topology) -> None:
    """An INCOMPLETE entry (ARP unanswered) goes; lb2's REACHABLE entry stays."""
    lb1 = two_nodes.nodes["lb1"]
    lb1.ns.run(["ip", "neigh", "replace", "192.0.2.12", "lladdr", "02:00:00:00:00:12",
                "dev", "eth0", "nud", "reachable"])
    pending = lb1.ns.popen([sys.executable, "-c", CONNECT], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: "INCOMPLETE" in lb1.ns.run(["ip", "neigh", "show", UNREACHABLE]).stdout,
                 3, "an INCOMPLETE entry", poll=0.02)

        async def flush() -> list[str]:
            async with NeighbourCache() as cache:
                return await cache.flush_unresolved("eth0")

        with lb1.ns.entered():
            cleared = asyncio.run(flush())
        assert [str(a) for a in cleared] == [UNREACHABLE]
        assert lb1.ns.run(["ip", "neigh", "show", UNREACHABLE]).stdout.strip() == ""
        assert "02:00:00:00:00:12" in lb1.ns.run(["ip", "neigh", "show", "192.0.2.12"]).stdout
    finally:
        pending.kill()
        pending.wait()
