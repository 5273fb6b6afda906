"""vrrpd and FRR's vrrpd (Debian 12's frr 8.4) as the two routers of one virtual router.

FRR is a second, independent implementation (after keepalived, tests/lab/test_interop_keepalived.py)
and the stricter one about the virtual MAC: it only runs on macvlan links
(:mod:`lab.frr`), so vrrpd runs with ``virtual_mac: true``.  Each case runs vrrpd on lb1 and
FRR on lb2, in both roles (priority 150 is master, 100 backup), for VRRPv2 IPv4 (1 s),
VRRPv3 IPv4 and VRRPv3 IPv6 (0.1 s), and checks RFC 5798 §6.4 from the outside:

* election: the higher priority is master, the other backup, exactly one holds the VIPs;
* the master stops (SIGTERM: priority 0, §6.4.3) or its switch port goes down; the backup
  holds the VIPs within Skew_Time / Master_Down_Interval + 100 ms (§6.4.2);
* the old master comes back and preempts (§6.4.2, Preempt_Mode True);
* FRR's log has no complaint about vrrpd's adverts, and vrrpd dropped none of FRR's.

Takeover times are printed as ``INTEROP-FRR ...`` lines (``pytest -s``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.frr import FrrVrrp
from lab.interop import FLAVOURS, HIGH, LOW, SLACK, VRID, Flavour
from lab.netns import Topology
from vrrpd.proto.timers import master_down_interval, skew_time


class Peers:
    """vrrpd (virtual_mac) on lb1 and FRR on lb2; ``vrrpd_master``: vrrpd gets 150."""

    def __init__(self, lab: Topology, tmp: Path, flavour: Flavour, vrrpd_master: bool) -> None:
        self.lab = lab
        self.flavour = flavour
        self.vrrpd_master = vrrpd_master
        vrrpd_prio, frr_prio = (HIGH, LOW) if vrrpd_master else (LOW, HIGH)
        self.vrrpd = Vrrpd(lab.nodes["lb1"], tmp, [{
            "name": "web", "interface": "eth0", "vrid": VRID, "priority": vrrpd_prio,
            "version": flavour.version, "advert_interval": flavour.interval,
            "vips": list(flavour.vips), "virtual_mac": True}])
        self.frr = FrrVrrp(lab.nodes["lb2"], vrid=VRID, priority=frr_prio,
                           interval=flavour.interval, vips=list(flavour.vips),
                           version=flavour.version)
        self.probe = {n: AddressProbe(lab.nodes[n]) for n in ("lb1", "lb2")}
        self.master_node, self.backup_node = ("lb1", "lb2") if vrrpd_master else ("lb2", "lb1")

    def serving(self) -> list[str]:
        """Who answers for the VIPs: vrrpd holds them on its macvlan only as master; FRR keeps
        them on its macvlan and sets it protodown while Backup."""
        vip = self.flavour.probe_vip
        held = ["lb1"] if self.probe["lb1"].has(vip) else []
        return held + (["lb2"] if self.frr.state() == "Master" else [])

    def elect(self) -> None:
        if self.vrrpd_master:
            self.vrrpd.start().wait_state("web", "MASTER")
            self.frr.start()
        else:
            self.frr.start().wait_state("Master")
            self.vrrpd.start()
        wait_for(lambda: self.serving() == [self.master_node]
                 and self.vrrpd.state("web") == ("MASTER" if self.vrrpd_master else "BACKUP")
                 and self.frr.state() == ("Backup" if self.vrrpd_master else "Master"), 15,
                 f"{self.master_node} to be the only master", poll=0.01)
        time.sleep(3 * self.flavour.interval)
        assert self.serving() == [self.master_node]

    def close(self) -> None:
        self.frr.stop()
        self.vrrpd.stop()
        for p in self.probe.values():
            p.close()
        print(f"---- vrrpd log ----\n{self.vrrpd.log()[-3000:]}")
        print(f"---- FRR vrrpd log ----\n{self.frr.log()[-3000:]}")
        print(f"INTEROP-FRR FRR's own warnings: {sorted({w[20:] for w in self.frr.warnings()})}")


@pytest.fixture
def peers(request: pytest.FixtureRequest, two_nodes: Topology, tmp_path: Path
          ) -> Iterator[Peers]:
    """The pair for the test's ``flavour`` and ``vrrpd_master`` parameters."""
    made = Peers(two_nodes, tmp_path, request.node.callspec.params["flavour"],
                 request.node.callspec.params["vrrpd_master"])
    try:
        yield made
    finally:
        made.close()


def _role(vrrpd_master: bool) -> str:
    return "vrrpd-master" if vrrpd_master else "frr-master"


@pytest.mark.parametrize("fault", ["sigterm", "port-down"])
@pytest.mark.parametrize("vrrpd_master", [False, True], ids=_role)
@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_frr_peer(peers: Peers, flavour: Flavour, vrrpd_master: bool, fault: str) -> None:
    """Election, takeover within the RFC 5798 §6.4.2 bound, preempt back, no complaints."""
    peers.elect()
    backup = peers.backup_node
    start = time.monotonic()
    if fault == "sigterm":
        if vrrpd_master:
            peers.vrrpd.send_signal()
        else:
            peers.frr.stop_vrrpd()
        bound = skew_time(flavour.version, LOW, flavour.interval_cs) + SLACK
    else:
        peers.lab.set_link(peers.master_node, False)
        bound = master_down_interval(flavour.version, LOW, flavour.interval_cs) + SLACK
    wait_for(lambda: backup in peers.serving(), 10, f"{backup} to take over")
    took = time.monotonic() - start
    taker = "FRR" if vrrpd_master else "vrrpd"
    print(f"INTEROP-FRR {flavour.name} {_role(vrrpd_master)} {fault.upper()} -> {taker} took "
          f"over in {took * 1000:.0f} ms (bound {bound * 1000:.0f} ms)")
    assert took <= bound
    if fault == "sigterm":  # a cut-off master stays master on its side of the cut
        wait_for(lambda: peers.serving() == [backup], 3, f"{backup} to be the only master")

    if fault == "sigterm":
        if vrrpd_master:
            assert peers.vrrpd.proc is not None and peers.vrrpd.proc.wait(10) == 0
            peers.vrrpd.start()
        else:
            peers.frr.start()
    else:
        peers.lab.set_link(peers.master_node, True)
    wait_for(lambda: peers.serving() == [peers.master_node], 6 * flavour.interval + 5,
             f"{peers.master_node} to preempt back")
    time.sleep(3 * flavour.interval)
    assert peers.serving() == [peers.master_node]
    assert peers.vrrpd.state("web") == ("MASTER" if vrrpd_master else "BACKUP")
    status = peers.vrrpd.instance("web")
    assert status["dropped"] == {}, status["dropped"]
    complaints = peers.frr.complaints()
    assert complaints == [], f"FRR complains: {complaints}"
