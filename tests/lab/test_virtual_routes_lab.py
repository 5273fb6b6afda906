"""keepalived's virtual_routes / virtual_rules (issue 15 part 2) on the real kernel: the master
holds the routes and rules, they move on failover, a stopped daemon leaves none, and the start
after a SIGKILL removes what the killed run left (vrrpd's routing protocol 112,
vrrpd/kernel/routes.py) without touching anybody else's routes.
"""

from __future__ import annotations

import signal
from pathlib import Path

from lab.daemons import Vrrpd, wait_for
from lab.netns import Node, Topology

VIP = "192.0.2.100/24"
ROUTES = [{"to": "198.51.100.0/24", "via": "192.0.2.1", "dev": "eth0", "table": 100},
          # src is the VIP: the kernel accepts it only once the VIP is there
          {"to": "203.0.113.0/24", "via": "192.0.2.1", "src": "192.0.2.100", "metric": 5},
          {"to": "203.0.113.128/25", "type": "blackhole", "table": 100}]
RULES = [{"from": "192.0.2.100", "table": 100, "priority": 100},
         {"fwmark": 7, "table": 100, "priority": 101}]
# what `ip route show table all proto 112` and `ip rule show` print for them
ROUTE_LINES = {"198.51.100.0/24 via 192.0.2.1 dev eth0 table 100",
               "203.0.113.0/24 via 192.0.2.1 dev eth0 src 192.0.2.100 metric 5",
               "blackhole 203.0.113.128/25 table 100"}
RULE_LINES = {"100:\tfrom 192.0.2.100 lookup 100 proto 112",
              "101:\tfrom all fwmark 0x7 lookup 100 proto 112"}
OTHERS = "192.0.2.128/25 via 192.0.2.1 dev eth0"  # an operator's route in table 100


def held(node: Node) -> tuple[set[str], set[str]]:
    """The routes and rules with vrrpd's routing protocol on ``node``."""
    routes = node.ns.run("ip route show table all proto 112").stdout
    rules = node.ns.run("ip rule show").stdout
    return ({line.strip() for line in routes.splitlines() if line.strip()},
            {line.rstrip() for line in rules.splitlines() if "proto 112" in line})


def daemon(lab: Topology, tmp: Path, name: str, priority: int) -> Vrrpd:
    return Vrrpd(lab.nodes[name], tmp, [{
        "name": "web", "interface": "eth0", "vrid": 51, "priority": priority,
        "advert_interval": 0.1, "vips": [VIP], "virtual_routes": ROUTES,
        "virtual_rules": RULES}])


def test_routes_and_rules_follow_the_master(two_nodes: Topology, tmp_path: Path) -> None:
    lb1_node, lb2_node = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    lb2_node.ns.run(f"ip route add {OTHERS} table 100")
    lb1, lb2 = daemon(two_nodes, tmp_path, "lb1", 150), daemon(two_nodes, tmp_path, "lb2", 100)
    try:
        lb1.start().wait_state("web", "MASTER")
        lb2.start().wait_state("web", "BACKUP")
        wait_for(lambda: held(lb1_node) == (ROUTE_LINES, RULE_LINES), 5,
                 "lb1 (master) to hold the routes and rules")
        assert held(lb2_node) == (set(), set())

        lb1.stop()  # failover: lb2 takes them, lb1 (stopped) keeps none
        lb2.wait_state("web", "MASTER")
        wait_for(lambda: held(lb2_node) == (ROUTE_LINES, RULE_LINES), 5,
                 "lb2 (new master) to hold the routes and rules")
        assert held(lb1_node) == (set(), set())

        lb2.stop(signal.SIGKILL)  # a crash: its routes and rules stay behind
        assert held(lb2_node) == (ROUTE_LINES, RULE_LINES)
        lb1.start().wait_state("web", "MASTER")
        lb2.start().wait_state("web", "BACKUP")  # the start removes the leftovers
        assert held(lb2_node) == (set(), set())
        assert "left by an earlier run" in lb2.log()
        assert OTHERS in lb2_node.ns.run("ip route show table 100").stdout
        wait_for(lambda: held(lb1_node) == (ROUTE_LINES, RULE_LINES), 5,
                 "lb1 (master again) to hold the routes and rules")
    finally:
        lb1.stop()
        lb2.stop()
    assert held(lb1_node) == (set(), set())
