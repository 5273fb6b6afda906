"""vrrpd starts in any network state and joins the pair when its interface becomes usable.

Each node starts while its interface cannot carry VRRP yet: cable out, no IPv4 address, IPv6
link-local still tentative (duplicate address detection enabled in the node's namespace).  The
daemon must keep running with the instance in FAULT, ``vrrpctl status`` must say why, and the
instance must join (here: preempt the lower-priority peer) as soon as netlink reports the
interface usable: no restart, no operator.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import REPO, Vrrpd, wait_for
from lab.netns import Topology

INTERVAL = 0.1
VIPS = {4: ["192.0.2.100/24"], 6: ["fe80::51/64", "2001:db8::100/64"]}


def instance(priority: int, family: int = 4, ifname: str = "eth0",
             **extra: Any) -> list[dict[str, Any]]:
    return [{"name": "web", "interface": ifname, "vrid": 51, "priority": priority,
             "advert_interval": INTERVAL, "vips": VIPS[family], **extra}]


@pytest.fixture
def daemons(two_nodes: Topology, tmp_path: Path) -> Iterator[list[Vrrpd]]:
    """Started daemons are stopped after the test (logs printed)."""
    started: list[Vrrpd] = []
    yield started
    for d in started:
        d.stop()
        print(f"--- {d.node.name}\n{d.log()}")


def start(daemons: list[Vrrpd], lab: Topology, tmp: Path, node: str, priority: int,
          family: int = 4, ifname: str = "eth0", **extra: Any) -> Vrrpd:
    d = Vrrpd(lab.nodes[node], tmp, instance(priority, family, ifname, **extra)).start()
    daemons.append(d)
    return d


def status_text(d: Vrrpd) -> str:
    """``vrrpctl status`` of a node waiting in FAULT: health CRITICAL, exit 2
    (vrrpd/control/health.py)."""
    done = subprocess.run([sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket",
                           str(d.socket), "status"], capture_output=True, text=True,
                          timeout=30, cwd=REPO)
    assert done.returncode == 2 and "CRITICAL: web FAULT (link:" in done.stdout, done
    return done.stdout


def waits_in_fault(d: Vrrpd, reason: str, ifname: str = "eth0") -> None:
    """The daemon runs, its instance is in FAULT and status (JSON and text) says why."""
    d.wait_state("web", "FAULT", timeout=5)
    web = d.instance("web")
    assert web["faults"] == [f"link:{ifname}"] and reason in web["interface_problem"], web
    assert f"web: waiting for {ifname}: {reason}" in status_text(d)
    assert d.proc is not None and d.proc.poll() is None


def joins(d: Vrrpd, peer: Vrrpd, timeout: float = 10) -> float:
    """``d`` (the higher priority) takes over from ``peer``; the seconds it took."""
    took = d.wait_state("web", "MASTER", timeout=timeout)
    peer.wait_state("web", "BACKUP", timeout=5)
    web = d.instance("web")
    assert (web["faults"], web["interface_problem"], web["vips_held"]) == ([], None, True)
    assert "usable again" in d.log() and d.proc is not None and d.proc.poll() is None
    return took


def test_started_with_the_cable_out_joins_when_plugged_in(two_nodes: Topology, tmp_path: Path,
                                                          daemons: list[Vrrpd]) -> None:
    lb2 = start(daemons, two_nodes, tmp_path, "lb2", 100)
    lb2.wait_state("web", "MASTER")
    two_nodes.set_link("lb1", up=False)
    lb1 = start(daemons, two_nodes, tmp_path, "lb1", 150)
    waits_in_fault(lb1, "eth0 has no carrier")
    two_nodes.set_link("lb1", up=True)
    joins(lb1, lb2)


def test_started_without_its_ipv4_address_joins_when_it_is_added(
        two_nodes: Topology, tmp_path: Path, daemons: list[Vrrpd]) -> None:
    lb2 = start(daemons, two_nodes, tmp_path, "lb2", 100)
    lb2.wait_state("web", "MASTER")
    node = two_nodes.nodes["lb1"]
    node.ns.run(["ip", "addr", "del", str(node.ipv4), "dev", "eth0"])
    lb1 = start(daemons, two_nodes, tmp_path, "lb1", 150)
    waits_in_fault(lb1, "eth0 has no primary IPv4 address of its own to send VRRP adverts")
    node.ns.run(["ip", "addr", "add", str(node.ipv4), "dev", "eth0"])
    joins(lb1, lb2)
    assert lb2.instance("web")["master"] == "192.0.2.11"  # adverts from the new address


def test_ipv6_started_as_its_link_comes_up_joins_once_dad_completes(
        two_nodes: Topology, tmp_path: Path, daemons: list[Vrrpd]) -> None:
    lb2 = start(daemons, two_nodes, tmp_path, "lb2", 100, family=6)
    lb2.wait_state("web", "MASTER")
    node = two_nodes.nodes["lb1"]
    # DAD on, 3 probes: the new link-local address stays tentative for about 3 s.
    node.ns.run(["ip", "link", "set", "eth0", "down"])
    node.ns.sysctl("net.ipv6.conf.eth0.accept_dad", 1)
    node.ns.sysctl("net.ipv6.conf.eth0.dad_transmits", 3)
    node.ns.run(["ip", "link", "set", "eth0", "up"])
    lb1 = start(daemons, two_nodes, tmp_path, "lb1", 150, family=6)
    assert node.link_local() is None, "DAD finished before the daemon was up; test is moot"
    waits_in_fault(lb1, "eth0's IPv6 link-local address is tentative (duplicate address "
                        "detection is running)")
    wait_for(lambda: node.link_local() is not None, 10, "DAD to complete", poll=0.01)
    took = joins(lb1, lb2)
    assert took < 10


@pytest.mark.parametrize("virtual_mac", [False, True])
def test_started_before_its_interface_exists_joins_when_it_appears(
        two_nodes: Topology, tmp_path: Path, daemons: list[Vrrpd], virtual_mac: bool) -> None:
    """The configured interface (lan0) appears later, as a renamed or late-created NIC does;
    with ``virtual_mac`` the macvlan link is made on it then."""
    lb2 = start(daemons, two_nodes, tmp_path, "lb2", 100, virtual_mac=virtual_mac)
    lb2.wait_state("web", "MASTER")
    lb1 = start(daemons, two_nodes, tmp_path, "lb1", 150, ifname="lan0", virtual_mac=virtual_mac)
    waits_in_fault(lb1, "interface lan0 does not exist", ifname="lan0")
    link_before = (lb1.instance("web")["virtual_mac"] or {}).get("link")
    assert link_before == ("" if virtual_mac else None)  # no macvlan without its interface
    ns = two_nodes.nodes["lb1"].ns
    ns.run("ip link set eth0 down")
    ns.run("ip link set eth0 name lan0")
    ns.run("ip link set lan0 up")  # IPv4 addresses survive the rename
    joins(lb1, lb2)
    if virtual_mac:
        link = lb1.instance("web")["virtual_mac"]["link"]
        assert link.startswith("vrrp4-")
        assert VIPS[4][0] in {f"{a['local']}/{a['prefixlen']}" for a in ns.addresses(link)}
