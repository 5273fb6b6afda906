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
