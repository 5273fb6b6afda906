"""vrrpd and FRR's vrrpd (Debian 12's frr 8.4) as the two routers of one virtual router.

FRR is a second, independent implementation (after keepalived, tests/lab/test_interop_keepalived.py)
and the stricter one about the virtual MAC: it only runs on macvlan links
(:mod:`lab.frr`), so vrrpd runs with ``virtual_mac: true``.  Each case runs vrrpd on lb1 and
FRR on lb2, in both roles (priority 150 is master, 100 backup), for VRRPv2 IPv4 (1 s),
VRRPv3 IPv4 and VRRPv3 IPv6 (0.1 s), and checks RFC 5798 §6.4 from the outside:

* election: the higher priority is master, the other backup, exactly one holds the VIPs;
* the master stops (SIGTERM: priority 0, §6.4.3) or its switch port goes down; the backup
  holds the VIPs within Skew_Time / Master_Down_Interval + 100 ms (§6.4.2), measured on its
  wire from the master's last advert to its own first frame as master (advert, gratuitous
  ARP or NA: :func:`lab.takeover.wire_takeover`);
* the old master comes back and preempts (§6.4.2, Preempt_Mode True);
* FRR's log has no complaint about vrrpd's adverts, and vrrpd dropped none of FRR's.

Takeover times are printed as ``INTEROP-FRR ...`` lines (``pytest -s``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import wait_for
from lab.interop import FLAVOURS, SLACK, Flavour
from lab.netns import Topology
from lab.takeover import INTEROP_FAULTS, FrrPeers, fault_bound, timed_takeover


@pytest.fixture
def peers(request: pytest.FixtureRequest, two_nodes: Topology, tmp_path: Path
          ) -> Iterator[FrrPeers]:
    """The pair for the test's ``flavour`` and ``vrrpd_master`` parameters."""
    made = FrrPeers(two_nodes, tmp_path, request.node.callspec.params["flavour"],
                    request.node.callspec.params["vrrpd_master"])
    try:
        yield made
    finally:
        made.close()
        print(f"---- vrrpd log ----\n{made.vrrpd.log()[-3000:]}")
        print(f"---- FRR vrrpd log ----\n{made.frr.log()[-3000:]}")
        print(f"INTEROP-FRR FRR's own warnings: {sorted({w[20:] for w in made.frr.warnings()})}")


def _role(vrrpd_master: bool) -> str:
    return "vrrpd-master" if vrrpd_master else "frr-master"


@pytest.mark.parametrize("fault", INTEROP_FAULTS)
@pytest.mark.parametrize("vrrpd_master", [False, True], ids=_role)
@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_frr_peer(peers: FrrPeers, flavour: Flavour, vrrpd_master: bool, fault: str) -> None:
    """Election, takeover within the RFC 5798 §6.4.2 bound, preempt back, no complaints."""
    peers.elect()
    backup = peers.backup_node
    took, on_wire = timed_takeover(peers.lab, backup, flavour.probe_vip,
                                   lambda: peers.inject(fault), peers.taken_over)
    bound = fault_bound(fault, flavour.version, flavour.interval, SLACK)
    taker = "FRR" if vrrpd_master else "vrrpd"
    print(f"INTEROP-FRR {flavour.name} {_role(vrrpd_master)} {fault.upper()} -> {taker} took "
          f"over in {on_wire * 1000:.0f} ms on the wire (bound {bound * 1000:.0f} ms; "
          f"{took * 1000:.0f} ms from the fault)")
    assert on_wire <= bound
    if fault == "sigterm":  # a cut-off master stays master on its side of the cut
        wait_for(lambda: peers.serving() == [backup], 3, f"{backup} to be the only master")

    peers.restore(fault)
    wait_for(lambda: peers.serving() == [peers.master_node], 6 * flavour.interval + 5,
             f"{peers.master_node} to preempt back")
    time.sleep(3 * flavour.interval)
    assert peers.serving() == [peers.master_node]
    assert peers.vrrpd.state("web") == ("MASTER" if vrrpd_master else "BACKUP")
    status = peers.vrrpd.instance("web")
    assert status["dropped"] == {}, status["dropped"]
    complaints = peers.frr.complaints()
    assert complaints == [], f"FRR complains: {complaints}"
