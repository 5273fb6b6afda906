"""``tproxy:`` on the real kernel (issue 17 part 1): the master holds the transparent-proxy
rule, the ``local default`` route and the nftables ``socket`` chain, the backup none; they move
on failover; a stopped daemon leaves none; the start after a SIGKILL removes what the killed
run left (vrrpd/kernel/tproxy.py, vrrpd/kernel/routes.py).  The whole path (HAProxy with
``usesrc clientip``, a PACS answering through the gateway VIP) is tests/lab/test_tproxy_lab.py.
"""

from __future__ import annotations

import signal
from pathlib import Path

from lab.daemons import Vrrpd, wait_for
from lab.netns import Node, Topology

GATEWAY_VIP = "198.51.100.1/24"
# what `ip rule`, `ip route show table all proto 112` and `nft list table` show while master
RULE = "7470:\tfrom all fwmark 0x7470 lookup 7470 proto 112"
ROUTE = "local default dev lo table 7470 scope host"
NFT_RULE = "meta nfproto ipv4 meta l4proto tcp socket transparent 1 meta mark set 0x00007470"


def held(node: Node) -> tuple[set[str], set[str], bool]:
    """vrrpd's rules and routes on ``node``, and whether its tproxy chain marks packets."""
    routes = node.ns.run("ip route show table all proto 112").stdout
    rules = node.ns.run("ip rule show").stdout
    nft = node.ns.run("nft list table inet vrrpd_tproxy", check=False).stdout
    return ({line.strip() for line in routes.splitlines() if line.strip()},
            {line.rstrip() for line in rules.splitlines() if "proto 112" in line},
            NFT_RULE in nft)


MASTER = ({ROUTE}, {RULE}, True)
NOTHING: tuple[set[str], set[str], bool] = (set(), set(), False)


def daemon(lab: Topology, tmp: Path, name: str, priority: int) -> Vrrpd:
    return Vrrpd(lab.nodes[name], tmp, [{
        "name": "gateway", "interface": "eth0", "vrid": 52, "priority": priority,
        "advert_interval": 0.1, "vips": [GATEWAY_VIP], "tproxy": {}}])


def test_tproxy_routing_follows_the_master(two_nodes: Topology, tmp_path: Path) -> None:
    lb1_node, lb2_node = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    lb1, lb2 = daemon(two_nodes, tmp_path, "lb1", 150), daemon(two_nodes, tmp_path, "lb2", 100)
    try:
        lb1.start().wait_state("gateway", "MASTER")
        lb2.start().wait_state("gateway", "BACKUP")
        wait_for(lambda: held(lb1_node) == MASTER, 5, "lb1 (master) to hold the tproxy routing")
        assert held(lb2_node) == NOTHING

        lb1.ctl("demote", instance="gateway")  # failover: lb2 takes it, lb1 keeps none
        lb2.wait_state("gateway", "MASTER")
        wait_for(lambda: held(lb2_node) == MASTER, 5, "lb2 (new master) to hold it")
        wait_for(lambda: held(lb1_node) == NOTHING, 5, "lb1 (demoted) to drop it")

        lb2.stop(signal.SIGKILL)  # a crash: its rule, route and chain stay behind
        assert held(lb2_node) == MASTER
        lb1.ctl("resume", instance="gateway")
        lb1.wait_state("gateway", "MASTER")
        lb2.start().wait_state("gateway", "BACKUP")  # the start removes the leftovers
        assert held(lb2_node) == NOTHING
        wait_for(lambda: held(lb1_node) == MASTER, 5, "lb1 (master again) to hold it")
    finally:
        lb1.stop()
        lb2.stop()
    assert held(lb1_node) == NOTHING  # a clean stop leaves nothing either
    assert held(lb2_node) == NOTHING
