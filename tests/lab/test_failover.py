"""Two real vrrpd processes on a namespace switch: election, takeover, preempt (issue: core).

Takeover times are measured on the backup's wire (:func:`lab.takeover.wire_takeover`): from the
last advert it heard from the master (priority 0 after SIGTERM; the last before the port went
down) to the first frame it sent as master (an advert or a gratuitous ARP for the VIP).  The time
from the fault as the test saw it (to the VIP in the backup's kernel, polled over netlink every
millisecond) is printed beside: on a loaded host it also holds how late the fault was delivered.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import wait_for
from lab.interop import SLACK
from lab.netns import Topology
from lab.sniff import Sniffer
from lab.takeover import VIP4, Pair, fault_bound, instance, timed_takeover, wire_takeover
from vrrpd.proto.timers import skew_time

VIP6 = ["fe80::100/64", "2001:db8::100/64"]


@pytest.fixture
def pair_factory(two_nodes: Topology, tmp_path: Path) -> Iterator[Any]:
    made: list[Pair] = []

    def make(builder: Any) -> Pair:
        made.append(Pair(two_nodes, tmp_path, builder))
        return made[-1]

    yield make
    for pair in made:
        pair.close()
        for d in (pair.lb1, pair.lb2):
            print(f"---- {d.node.name} log ----\n{d.log()[-4000:]}")


FAULTS = ("port down", "SIGTERM")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("version,interval", [(3, 0.1), (3, 1.0), (2, 1.0)])
def test_takeover_within_rfc_timer_then_preempt_back(pair_factory: Any, fault: str,
                                                     version: int, interval: float) -> None:
    """Port down: Master_Down_Interval + 100 ms; SIGTERM (priority 0): Skew_Time + 100 ms."""
    pair = pair_factory(lambda prio: [instance("web", 51, prio, interval, [VIP4],
                                               version=version)])
    pair.elect(VIP4)
    time.sleep(interval * 2)  # let lb2 learn the master's interval
    took, on_wire = timed_takeover(pair.lab, "lb2", VIP4, lambda: pair.inject(fault),
                                   lambda: pair.probe["lb2"].has(VIP4))
    bound = fault_bound(fault, version, interval, SLACK)
    print(f"v{version} {interval}s {fault}: lb2 took over in {on_wire * 1000:.0f} ms on the "
          f"wire (bound {bound * 1000:.0f} ms; holds the VIP {took * 1000:.0f} ms after the "
          "fault)")
    assert on_wire <= bound
    pair.restore(fault)
    # Preempt: lb1 (150) takes the VIP back.
    wait_for(lambda: pair.holders(VIP4) == ["lb1"], 6 * interval + 3, "lb1 to preempt back")


def test_nopreempt_keeps_the_current_master(pair_factory: Any) -> None:
    pair = pair_factory(lambda prio: [instance("web", 51, prio, 0.1, [VIP4], preempt=False)])
    pair.lb2.start()
    pair.lb2.wait_state("web", "MASTER")
    pair.lb1.start()
    pair.lb1.wait_state("web", "BACKUP")
    time.sleep(1.0)  # ten advert intervals: lb1 must not take over
    assert pair.lb1.state("web") == "BACKUP"
    assert pair.holders(VIP4) == ["lb2"]


def test_ipv4_and_ipv6_instances_side_by_side(pair_factory: Any) -> None:
    pair = pair_factory(lambda prio: [instance("web", 51, prio, 0.1, [VIP4]),
                                      instance("web6", 52, prio, 0.1, VIP6)])
    pair.elect(VIP4)
    pair.lb1.wait_state("web6", "MASTER")
    wait_for(lambda: pair.holders(VIP6[1]) == ["lb1"], 5, "IPv6 VIP on lb1 only")
    wait_for(lambda: pair.lb2.instance("web6")["counters"].get("adverts_received"), 3,
             "lb2 to hear lb1's IPv6 adverts", poll=0.01)
    assert pair.lb2.state("web6") == "BACKUP"
    pair.lab.set_link("lb1", False)
    wait_for(lambda: pair.probe["lb2"].has(VIP4) and pair.probe["lb2"].has(VIP6[1]), 2,
             "lb2 to hold both VIPs")
    assert pair.lb2.state("web6") == "MASTER"
    assert pair.lb2.instance("web6")["dropped"] == {}


def test_unicast_peers_end_to_end(pair_factory: Any) -> None:
    """``unicast_peers``: every advert goes to the peer's address, never to 224.0.0.18
    (RFC 5798 §5.1.1.2 allows unicast where multicast cannot be used), the pair elects lb1,
    and lb1's SIGTERM (a unicast priority-0 advert) hands over within Skew_Time."""
    peer = {150: "192.0.2.12", 100: "192.0.2.11"}
    pair = pair_factory(lambda prio: [instance("web", 51, prio, 0.1, [VIP4],
                                               unicast_peers=[peer[prio]])])
    with Sniffer(pair.lab.nodes["lb2"], outgoing=True) as sniff:
        pair.elect(VIP4)
        wait_for(lambda: pair.lb2.instance("web")["counters"].get("adverts_received", 0) >= 5,
                 3, "lb2 to hear five of lb1's unicast adverts", poll=0.01)
        start, fault_at = time.monotonic(), time.time()
        pair.lb1.send_signal(signal.SIGTERM)
        wait_for(lambda: pair.probe["lb2"].has(VIP4), 2, "lb2 to hold the VIP")
        took = time.monotonic() - start
        time.sleep(0.3)
        on_wire = wire_takeover(sniff.frames(), VIP4, fault_at)
    adverts = sniff.frames("vrrp")
    by_source = {src: {f.dst for f in adverts if f.src == src} for src in peer.values()}
    print(f"unicast: destinations by source {by_source}; takeover {on_wire * 1000:.0f} ms on "
          f"lb2's wire, {took * 1000:.0f} ms from the SIGTERM")
    assert by_source == {"192.0.2.11": {"192.0.2.12"}, "192.0.2.12": {"192.0.2.11"}}
    assert [f.priority for f in adverts if f.src == "192.0.2.11"][-1] == 0
    assert pair.lb2.instance("web")["transitions"][-1]["cause"] == "master_resigned"
    assert on_wire <= skew_time(3, 100, 10) + SLACK
    assert pair.lb2.instance("web")["dropped"] == {}
