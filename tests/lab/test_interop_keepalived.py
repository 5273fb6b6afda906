"""vrrpd and keepalived 2.2 as the two routers of one virtual router (issue: conformance).

Every case runs one vrrpd and one keepalived on a namespace switch, in both roles (the higher
priority, 150, is master; the other, 100, backup), for VRRPv2, VRRPv3 over IPv4 and VRRPv3 over
IPv6.  It checks RFC 5798 §6.4 from the outside:

* election: the higher priority is master, the other backup, exactly one holds the VIPs;
* the master stops (SIGTERM: it sends priority 0, §6.4.3) -> the backup holds the VIPs within
  Skew_Time + 100 ms (§6.4.2: "Set the Master_Down_Timer to Skew_Time");
* the master's switch port goes down -> the backup holds the VIPs within Master_Down_Interval
  + 100 ms (§6.4.2: "If the Master_Down_Timer fires");
* the old master comes back and preempts (§6.4.2, Preempt_Mode True);
* both bounds are measured on the backup's wire (:func:`lab.takeover.wire_takeover`): from the
  master's last advert it heard to its own first frame as master (advert, gratuitous ARP or
  NA);
* keepalived never complains about vrrpd's adverts (checksum, TTL, version, interval,
  address list), except that keepalived 2.2.7, which checks only the pseudo-header form of the
  VRRPv3 IPv4 checksum, drops the RFC 9568-form adverts vrrpd sends (``v3_checksum: auto``)
  until vrrpd hears keepalived once.  That costs one short dual-master episode when vrrpd is
  the master and keepalived joins later; vrrpd then re-announces the VIPs so hosts do not keep
  sending to keepalived's MAC (:func:`test_late_keepalived_backup_does_not_keep_arp_caches`).

Takeover times are printed as ``INTEROP ...`` lines (run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import wait_for
from lab.interop import FLAVOURS, LOW, SLACK, Flavour
from lab.netns import Topology
from lab.takeover import INTEROP_FAULTS, KeepalivedPeers, fault_bound, timed_takeover
from vrrpd.proto.timers import master_down_interval


@pytest.fixture
def peers_factory(two_nodes: Topology, tmp_path: Path) -> Iterator[type[KeepalivedPeers]]:
    made: list[KeepalivedPeers] = []

    def make(flavour: Flavour, vrrpd_master: bool, vmac: bool = False) -> KeepalivedPeers:
        made.append(KeepalivedPeers(two_nodes, tmp_path, flavour, vrrpd_master, vmac))
        return made[-1]

    yield make  # type: ignore[misc]
    for peers in made:
        peers.close()
        print(f"---- vrrpd log ----\n{peers.vrrpd.log()[-3000:]}")
        print(f"---- keepalived log ----\n{peers.keepalived.log()[-3000:]}")


def _role(vrrpd_master: bool) -> str:
    return "vrrpd-master" if vrrpd_master else "keepalived-master"


def _check_complaints(peers: KeepalivedPeers, converged_at: int) -> None:
    """keepalived must not object to vrrpd's adverts once they have heard each other.

    Before that, the only objection allowed is keepalived 2.2.7's "Invalid VRRPv3 checksum"
    for vrrpd's RFC 9568-form VRRPv3 IPv4 adverts (``v3_checksum: auto``), and only while
    vrrpd is the master that keepalived has never been heard by.
    """
    before = peers.keepalived.complaints(0, converged_at)
    after = peers.keepalived.complaints(converged_at)
    assert after == [], f"keepalived complains about vrrpd's adverts: {after}"
    f = peers.flavour
    what = sorted({line.split(": ", 1)[-1] for line in before})
    print(f"INTEROP {f.name} {_role(peers.vrrpd_master)}: keepalived complained "
          f"{len(before)} time(s) before convergence: {what}")
    if f.name != "v3-ipv4" or not peers.vrrpd_master:
        assert before == []
    else:
        assert all("Invalid VRRPv3 checksum" in line for line in before), before
        # At most the adverts of one Master_Down_Interval of keepalived (plus one in flight).
        bound = master_down_interval(3, LOW, f.interval_cs) / f.interval + 2
        assert len(before) <= bound


@pytest.mark.parametrize("vmac", [False, True], ids=["", "vmac"])
@pytest.mark.parametrize("fault", INTEROP_FAULTS)
@pytest.mark.parametrize("vrrpd_master", [False, True], ids=_role)
@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_keepalived_peer(peers_factory: type[KeepalivedPeers], flavour: Flavour, vrrpd_master: bool,
                         fault: str, vmac: bool) -> None:
    """Election, takeover within the RFC 5798 §6.4.2 bound, preempt back, no complaints.

    SIGTERM: the master sends priority 0, so the backup takes over after Skew_Time
    ("If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to
    Skew_Time").  Port down: no more adverts, so it takes over after Master_Down_Interval.
    ``vmac``: both on the virtual router MAC (vrrpd ``virtual_mac``, keepalived
    ``use_vmac``, RFC 5798 §7.3).
    """
    peers = peers_factory(flavour, vrrpd_master, vmac)
    peers.elect()
    converged_at = len(peers.keepalived.log())
    backup = peers.backup_node
    took, on_wire = timed_takeover(peers.lab, backup, flavour.probe_vip,
                                   lambda: peers.inject(fault), peers.taken_over)
    bound = fault_bound(fault, flavour.version, flavour.interval, SLACK)
    taker = "keepalived" if vrrpd_master else "vrrpd"
    print(f"INTEROP {flavour.name}{' vmac' if vmac else ''} {_role(vrrpd_master)} "
          f"{fault.upper()} -> {taker} took over in {on_wire * 1000:.0f} ms on the wire "
          f"(bound {bound * 1000:.0f} ms; {took * 1000:.0f} ms from the fault)")
    assert on_wire <= bound
    # The old master let go: exactly one holder (SIGTERM releases, a dead port means FAULT).
    wait_for(lambda: peers.holders() == [backup], 3, f"{backup} to be the only holder")

    # Preempt back: the old master returns with the higher priority.
    peers.restore(fault)
    wait_for(lambda: peers.holders() == [peers.master_node], 6 * flavour.interval + 5,
             f"{peers.master_node} to preempt back")
    wait_for(lambda: peers.vrrpd.state("web") == ("MASTER" if vrrpd_master else "BACKUP"), 3,
             "vrrpd to settle", poll=0.01)
    time.sleep(3 * flavour.interval)
    assert peers.holders() == [peers.master_node]
    assert peers.keepalived.state() == ("BACKUP" if vrrpd_master else "MASTER")
    status = peers.vrrpd.instance("web")
    assert status["dropped"] == {}, status["dropped"]
    _check_complaints(peers, converged_at)


def _neighbour_mac(lab: Topology, node: str, address: str) -> str | None:
    out = lab.nodes[node].ns.run(["ip", "-j", "neigh", "show", address, "dev", "eth0"]).stdout
    entries = json.loads(out or "[]")
    return entries[0].get("lladdr") if entries else None


def test_late_keepalived_backup_does_not_keep_arp_caches(
        peers_factory: type[KeepalivedPeers]) -> None:
    """vrrpd (150) is master with ``v3_checksum: auto`` and keepalived (100) joins later.

    keepalived 2.2.7 drops vrrpd's first VRRPv3 adverts (RFC 9568 checksum form), so after its
    Master_Down_Interval it becomes master too and sends gratuitous ARPs for the VIP.  vrrpd
    answers (RFC 9568 §6.4.3), hears the pseudo-header form and switches to it; keepalived
    steps down.  A host that believed keepalived's gratuitous ARP must end up sending to
    vrrpd's MAC again, so vrrpd re-announces (RFC 5798 §6.4.1: hosts learn the VIP's MAC from
    the master's gratuitous ARP).
    """
    flavour = FLAVOURS[1]
    peers = peers_factory(flavour, vrrpd_master=True)
    client = peers.lab.add_node("lb3", "192.0.2.13/24", "2001:db8::13/64")
    client.ns.sysctl("net.ipv4.conf.eth0.arp_accept", 1)  # learn from gratuitous ARP
    vip = flavour.vips[0].split("/")[0]
    macs = {n: json.loads(peers.lab.nodes[n].ns.run(["ip", "-j", "link", "show", "eth0"])
                          .stdout)[0]["address"] for n in ("lb1", "lb2")}
    peers.start_master()
    time.sleep(2.5)  # vrrpd's own announcements (burst + repeat 2 s later) are all out
    peers.start_backup()
    # keepalived's detour through MASTER is over ...
    wait_for(lambda: peers.keepalived.state() == "BACKUP"
             and "Entering MASTER" in peers.keepalived.log(), 5,
             "keepalived's dual-master episode", poll=0.01)
    time.sleep(2.5)  # ... and so are keepalived's gratuitous ARPs and vrrpd's answer to them
    seen = _neighbour_mac(peers.lab, "lb3", vip)
    counters = peers.vrrpd.instance("web")["counters"]
    print(f"INTEROP v3-ipv4 late keepalived backup: dual-master episode, vrrpd re-announced "
          f"{counters.get('dual_master_reclaims', 0)} time(s); client's ARP entry for {vip} "
          f"-> {seen} (vrrpd {macs['lb1']}, keepalived {macs['lb2']})")
    assert peers.holders() == ["lb1"]
    assert seen == macs["lb1"]
    assert peers.vrrpd.instance("web")["checksum_form"] == "pseudo-header"
