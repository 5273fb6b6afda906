"""``accept_mode`` on a real master (RFC 5798 §6.4.3, RFC 3768 §6.4.3 for VRRPv2).

lb1 (150) is master of VIP 192.0.2.100, lb2 (100) backup, lb3 a client.  With
``accept_mode: false`` the master holds the VIP and answers ARP for it (the client resolves
it), but the host accepts nothing addressed to it: the client's TCP SYN gets no answer, not
even a RST.  With the default ``true`` (HAProxy serves on the VIPs) it answers.  The nftables
chain of vrrpd's own table comes and goes with the VIPs; a chain left by a crash (SIGKILL) is
gone after the restart, and a clean stop leaves no table.
"""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.netns import Node, Topology

VIP = "192.0.2.100"
TABLE = "vrrpd_accept"


def config(priority: int, version: int, accept_mode: bool) -> list[dict[str, object]]:
    return [{"name": "web", "interface": "eth0", "vrid": 51, "priority": priority,
             "version": version, "advert_interval": 1.0 if version == 2 else 0.1,
             "vips": [f"{VIP}/24"], "accept_mode": accept_mode}]


def chains(node: Node) -> list[str] | None:
    """The chains of vrrpd's table on ``node``; None when there is no table."""
    done = node.ns.run(["nft", "-j", "list", "table", "inet", TABLE], check=False)
    if done.returncode:
        return None
    return [i["chain"]["name"] for i in json.loads(done.stdout)["nftables"] if "chain" in i]


def answers(client: Node) -> bool:
    """Whether the VIP's host takes a TCP SYN to port 9 from ``client``: a refused connection
    is an answer (the host accepted the packet and sent a RST); a timeout is a drop."""
    with client.ns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        sock.connect((VIP, 9))
    except ConnectionRefusedError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()
    return True


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize("accept_mode", [False, True])
def test_accept_mode(two_nodes: Topology, tmp_path: Path, version: int,
                     accept_mode: bool) -> None:
    client = two_nodes.add_node("lb3", "192.0.2.13/24", "2001:db8::13/64")
    lb1 = Vrrpd(two_nodes.nodes["lb1"], tmp_path, config(150, version, accept_mode))
    lb2 = Vrrpd(two_nodes.nodes["lb2"], tmp_path, config(100, version, accept_mode))
    probe = AddressProbe(two_nodes.nodes["lb1"])
    try:
        lb1.start().wait_state("web", "MASTER")
        lb2.start().wait_state("web", "BACKUP")
        wait_for(lambda: probe.has(f"{VIP}/24"), 5, "lb1 to hold the VIP")
        assert answers(client) is accept_mode
        neighbour = json.loads(client.ns.run(["ip", "-j", "neigh", "show", VIP]).stdout)
        assert neighbour and neighbour[0].get("lladdr"), neighbour  # ARP answered either way
        assert chains(two_nodes.nodes["lb1"]) == (None if accept_mode else ["am_web"])
        assert chains(two_nodes.nodes["lb2"]) is None  # a backup holds no VIP: no chain
        if accept_mode:
            return
        # A crash leaves the chain; the restart's reconcile deletes it, the master adds it
        # again with the VIP, and a clean stop leaves nothing.
        lb1.send_signal(signal.SIGKILL)
        assert lb1.proc is not None and lb1.proc.wait(5) == -signal.SIGKILL
        assert chains(two_nodes.nodes["lb1"]) == ["am_web"]
        lb1.start().wait_state("web", "MASTER", timeout=15)
        wait_for(lambda: probe.has(f"{VIP}/24"), 5, "lb1 to hold the VIP again")
        assert chains(two_nodes.nodes["lb1"]) == ["am_web"]
        assert not answers(client)
        assert lb1.stop() == 0
        assert chains(two_nodes.nodes["lb1"]) is None
    finally:
        lb1.stop()
        lb2.stop()
        probe.close()
        print(f"---- lb1 ----\n{lb1.log()[-3000:]}\n---- lb2 ----\n{lb2.log()[-2000:]}")
