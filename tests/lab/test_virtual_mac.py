"""``virtual_mac: true`` in a real failover (RFC 5798 §7.3, §8.1.2): the client's neighbour
entry for the VIP holds the virtual router MAC before and after the failover, and the VIP keeps
answering although the client hears no gratuitous ARP at all (an nftables filter on the client
drops them; its counter shows they were sent).  VRRPv3 at 0.1 s, in multicast and unicast
mode, and VRRPv2 at 1 s; the fault is SIGTERM of lb1's vrrpd or lb1's switch port going down.

The figures (outage, failed requests) come from ``benchmarks/vmac_failover.py``; this test
asserts only what must hold in every run.  What the frames look like is
tests/lab/test_wire_conformance.py (the ``-vmac`` cases).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import Vrrpd
from lab.netns import Node, Topology
from lab.vmac_pair import FAULTS, VIRTUAL_MAC, VmacPair, failover


@pytest.fixture(scope="module", params=[(3, False), (3, True), (2, False)],
                ids=["v3", "v3-unicast", "v2"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[VmacPair]:
    version, unicast = request.param
    tmp: Path = tmp_path_factory.mktemp("vmac")
    with VmacPair(tmp, version=version, unicast=unicast,
                  interval=0.1 if version == 3 else 1.0) as lab:
        try:
            yield lab
        finally:
            print(lab.logs())


def test_only_the_master_has_the_virtual_mac_up(pair: VmacPair) -> None:
    """The master's macvlan link is up and holds the VIP; the backup's exists but is down, so
    it never sends from, nor answers for, the shared MAC."""
    for node, up in (("lb1", True), ("lb2", False)):
        link = pair.vrrpd[node].instance("web")["virtual_mac"]["link"]
        shown = json.loads(pair.node(node).ns.run(["ip", "-j", "addr", "show", link]).stdout)[0]
        assert shown["address"] == VIRTUAL_MAC
        assert ("UP" in shown["flags"]) is up
        assert any(a["local"] == "192.0.2.100" for a in shown["addr_info"]) is up


@pytest.mark.parametrize("fault", FAULTS)
def test_failover_without_gratuitous_arp(pair: VmacPair, fault: str) -> None:
    """The client's entry for the VIP is the virtual MAC before and after; no gratuitous ARP
    reached it (all dropped, and there were some); the VIP answered again after the fault."""
    result = failover(pair, fault)
    print(result)
    assert result.neighbour_before == VIRTUAL_MAC
    assert result.neighbour_after == VIRTUAL_MAC
    assert result.garps_dropped > 0
    assert pair.neighbour() == VIRTUAL_MAC


def test_interface_that_appears_later(two_nodes: Topology, tmp_path: Path) -> None:
    """An instance with ``virtual_mac`` whose interface does not exist yet waits in FAULT
    like any other; when the interface appears it takes over, and the virtual MAC link is
    made then, on the new interface."""
    lb1 = two_nodes.nodes["lb1"]
    daemon = Vrrpd(lb1, tmp_path, [{"name": "web", "interface": "lan0", "vrid": 51,
                                    "priority": 150, "advert_interval": 0.1,
                                    "vips": ["192.0.2.100/24"], "virtual_mac": True}])
    try:
        daemon.start().wait_state("web", "FAULT")
        two_nodes.switch.run(["ip", "link", "add", "lb1-lan0", "type", "veth", "peer", "name",
                              "lan0", "netns", lb1.ns.name])
        two_nodes.switch.run(["ip", "link", "set", "lb1-lan0", "master", "br0", "up"])
        lb1.ns.run(["ip", "addr", "add", "192.0.2.21/24", "dev", "lan0"])
        lb1.ns.run(["ip", "link", "set", "lan0", "up"])
        daemon.wait_state("web", "MASTER")
        link = daemon.instance("web")["virtual_mac"]["link"]
        shown = json.loads(lb1.ns.run(["ip", "-j", "addr", "show", link]).stdout)[0]
        assert shown["address"] == VIRTUAL_MAC and shown["link"] == "lan0"
        assert any(a["local"] == "192.0.2.100" for a in shown["addr_info"])
    finally:
        daemon.stop()
        print(daemon.log()[-3000:])


def _link(node: Node, name: str) -> dict[str, Any] | None:
    """``ip -j addr show NAME`` of ``node``, or None when there is no such link."""
    shown = node.ns.run(["ip", "-j", "addr", "show", name], check=False)
    return json.loads(shown.stdout)[0] if shown.returncode == 0 else None


def _vips(node: Node, name: str) -> list[str]:
    found = _link(node, name)
    return [a["local"] for a in found["addr_info"]] if found else []


def test_restart_reconciles_the_link_a_crash_left(two_nodes: Topology, tmp_path: Path) -> None:
    """Issue 11: a SIGKILLed master leaves its macvlan link, up and holding the VIP.  A restart
    with the same config adopts it (the VIP on it once, nowhere else); a restart without that
    instance deletes it; a link of that name vrrpd did not make (no alias) is refused and
    left alone."""
    lb1 = two_nodes.nodes["lb1"]
    web = {"name": "web", "interface": "eth0", "vrid": 51, "priority": 150,
           "advert_interval": 0.1, "vips": ["192.0.2.100/24"], "virtual_mac": True}
    other = {"name": "db", "interface": "eth0", "vrid": 52, "priority": 150,
             "advert_interval": 0.1, "vips": ["192.0.2.101/24"]}
    daemon = Vrrpd(lb1, tmp_path / "run1", [web])
    try:
        daemon.start().wait_state("web", "MASTER")
        name = daemon.instance("web")["virtual_mac"]["link"]
        daemon.stop(signal.SIGKILL)
        left = _link(lb1, name)
        assert left is not None and "UP" in left["flags"], left  # what the crash left
        assert _vips(lb1, name) == ["192.0.2.100"]

        daemon = Vrrpd(lb1, tmp_path / "run2", [web])  # the same config: adopted
        daemon.start().wait_state("web", "MASTER")
        assert daemon.instance("web")["virtual_mac"]["link"] == name
        assert f"adopting {name}, left by an earlier run" in daemon.log()
        adopted = _link(lb1, name)
        assert adopted is not None and adopted["address"] == VIRTUAL_MAC
        assert "UP" in adopted["flags"]
        assert _vips(lb1, name) == ["192.0.2.100"]  # once
        assert "192.0.2.100" not in _vips(lb1, "eth0")
        daemon.stop(signal.SIGKILL)
        assert _link(lb1, name) is not None

        daemon = Vrrpd(lb1, tmp_path / "run3", [other])  # web is gone: its link too
        daemon.start().wait_state("db", "MASTER")
        assert _link(lb1, name) is None
        assert f"removed virtual MAC link {name}" in daemon.log()
        daemon.stop()

        # The same name, made by someone else (no vrrpd alias): refused, never deleted.
        lb1.ns.run(["ip", "link", "add", name, "link", "eth0", "type", "macvlan",
                    "mode", "bridge"])
        daemon = Vrrpd(lb1, tmp_path / "foreign", [web])
        daemon.start(wait=False)
        assert daemon.proc is not None and daemon.proc.wait(10) != 0
        assert f"the virtual MAC link name {name} is taken by an interface vrrpd did not " \
               "create" in daemon.log()
        daemon = Vrrpd(lb1, tmp_path / "foreign-unused", [other])  # not deleted as stale
        daemon.start().wait_state("db", "MASTER")
        assert _link(lb1, name) is not None
    finally:
        daemon.stop()
        print(daemon.log()[-3000:])
