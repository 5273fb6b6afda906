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
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import Vrrpd
from lab.netns import Topology
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
