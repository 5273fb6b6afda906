"""keepalived's per-VIP ``dev`` and ``label`` (issue 15 part 2) on the real kernel: a VIP on a
second interface, labelled, is held by the master there, moves on failover, is gone after stop,
and the start after a SIGKILL removes it from that interface.
"""

from __future__ import annotations

import signal
from pathlib import Path

from lab.daemons import Vrrpd, wait_for
from lab.netns import Node, Topology

VIP = "192.0.2.100/24"
OTHER = "198.51.100.100/24"  # on eth2, labelled eth2:pacs
LINE = "inet 198.51.100.100/24 brd 198.51.100.255 scope global eth2:pacs"  # `ip -4 addr`


def on_eth2(node: Node) -> bool:
    """Whether ``node`` holds OTHER on eth2, with its label (and nowhere else)."""
    eth2 = node.ns.run("ip -4 -o addr show dev eth2").stdout
    eth0 = node.ns.run("ip -4 -o addr show dev eth0").stdout
    assert "198.51.100.100" not in eth0
    if "198.51.100.100" in eth2:
        assert LINE in " ".join(eth2.split()), eth2
        return True
    return False


def daemon(lab: Topology, tmp: Path, name: str, priority: int) -> Vrrpd:
    node = lab.nodes[name]
    node.ns.run("ip link add eth2 type veth peer name eth2p")
    node.ns.run("ip link set eth2 up")
    node.ns.run("ip link set eth2p up")
    return Vrrpd(node, tmp, [{
        "name": "web", "interface": "eth0", "vrid": 51, "priority": priority,
        "advert_interval": 0.1,
        "vips": [VIP, {"address": OTHER, "dev": "eth2", "label": "eth2:pacs"}]}])


def test_vip_on_its_dev_with_its_label(two_nodes: Topology, tmp_path: Path) -> None:
    lb1_node, lb2_node = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    lb1, lb2 = daemon(two_nodes, tmp_path, "lb1", 150), daemon(two_nodes, tmp_path, "lb2", 100)
    try:
        lb1.start().wait_state("web", "MASTER")
        lb2.start().wait_state("web", "BACKUP")
        wait_for(lambda: on_eth2(lb1_node), 5, "lb1 (master) to hold the VIP on eth2")
        assert not on_eth2(lb2_node)

        lb1.stop()  # failover
        lb2.wait_state("web", "MASTER")
        wait_for(lambda: on_eth2(lb2_node), 5, "lb2 (new master) to hold the VIP on eth2")
        assert not on_eth2(lb1_node)
        wait_for(lambda: lb2.instance("web")["counters"].get("announcements", 0) >= 1, 5,
                 "lb2 to announce its VIPs (on eth0 and eth2)")
        assert "Traceback" not in lb2.log() and "cannot announce" not in lb2.log()

        lb2.stop(signal.SIGKILL)  # a crash leaves the VIP on eth2
        assert on_eth2(lb2_node)
        lb1.start().wait_state("web", "MASTER")
        lb2.start().wait_state("web", "BACKUP")  # the start removes it from eth2
        assert not on_eth2(lb2_node)
        wait_for(lambda: on_eth2(lb1_node), 5, "lb1 (master again) to hold the VIP on eth2")
    finally:
        lb1.stop()
        lb2.stop()
    assert not on_eth2(lb1_node)
