"""Failover when the local HAProxy or its health checks fail (issue), with real HAProxy.

Each test builds :class:`lab.haproxy_pair.HAProxyPair`: lb1 (priority 150) and lb2 (100)
run HAProxy in master-worker mode and vrrpd with a ``haproxy`` tracker (weight 0, 0.1 s),
VRRPv3 adverts every 0.1 s, VIP 192.0.2.100.  Who holds a VIP is read from the kernel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import wait_for
from lab.haproxy_pair import VIP, HAProxyPair
from vrrpd.proto.timers import master_down_interval, skew_time

INTERVAL = 0.1
VIP6 = ["fe80::100/64", "2001:db8::100/64"]
# Master_Down_Interval of lb2 (priority 100) at 0.1 s adverts, in seconds
MDI_LB2 = master_down_interval(3, 100, round(INTERVAL * 100))
SKEW_LB2 = skew_time(3, 100, round(INTERVAL * 100))


@pytest.fixture
def make_pair(tmp_path: Path) -> Iterator[Callable[..., HAProxyPair]]:
    """Build a pair (``customize`` edits each node's vrrpd config); torn down after the test,
    with both daemons' logs printed (pytest shows them when the test fails)."""
    pairs: list[HAProxyPair] = []

    def make(customize: Callable[[str, dict[str, Any]], None] | None = None) -> HAProxyPair:
        pair = HAProxyPair(tmp_path, interval=INTERVAL, track_interval=0.1, customize=customize)
        pairs.append(pair)
        return pair.__enter__()

    yield make
    for pair in pairs:
        print(pair.logs())
        pair.close()


def transitions(pair: HAProxyPair, node: str, name: str = "web") -> list[tuple[str, str]]:
    return [(t["old"], t["new"]) for t in pair.vrrpd[node].instance(name)["transitions"]]


def test_haproxy_kill_faults_the_master_then_rise_and_preempt(make_pair: Any) -> None:
    """SIGKILL of the master's HAProxy: FAULT with exactly one priority-0 advert, the VIP moves
    at once (Skew_Time, not Master_Down_Interval); HAProxy back: BACKUP, then preempt."""
    pair = make_pair()
    lb1, lb2 = pair.vrrpd["lb1"], pair.vrrpd["lb2"]
    zero_before = lb1.instance("web")["counters"].get("priority_zero_sent", 0)
    start = time.monotonic()
    pair.haproxy["lb1"].kill()
    took = wait_for(lambda: pair.holders() == ["lb2"], 2, "lb2 to hold the VIP alone")
    # The priority-0 advert makes lb2 take over after Skew_Time (61 ms), not after
    # Master_Down_Interval (361 ms); the rest is the pidfd event, the advert and the VIP add.
    assert took < SKEW_LB2 + 1.5 * INTERVAL, f"took {took:.3f}s (Skew_Time {SKEW_LB2:.3f}s, " \
        f"Master_Down_Interval {MDI_LB2:.3f}s): did lb1 resign with a priority-0 advert?"
    inst = lb1.instance("web")
    assert inst["state"] == "FAULT" and inst["faults"] == ["track:haproxy"]
    assert inst["counters"]["priority_zero_sent"] == zero_before + 1
    assert lb2.state("web") == "MASTER"
    print(f"HAProxy SIGKILL -> lb2 holds the VIP after {(time.monotonic() - start) * 1000:.0f} ms")

    time.sleep(10 * INTERVAL)  # FAULT stays FAULT: no adverts, no VIP
    assert lb1.state("web") == "FAULT" and pair.holders() == ["lb2"]
    assert lb1.instance("web")["counters"]["priority_zero_sent"] == zero_before + 1

    pair.haproxy["lb1"].start()
    wait_for(lambda: pair.holders() == ["lb1"], 5, "lb1 to preempt back")
    assert transitions(pair, "lb1")[-3:] == [("MASTER", "FAULT"), ("FAULT", "BACKUP"),
                                             ("BACKUP", "MASTER")]
    assert "preempting" in lb1.instance("web")["transitions"][-1]["reason"]
    wait_for(lambda: lb2.state("web") == "BACKUP", 2, "lb2 to step down")


def test_fault_never_becomes_master(make_pair: Any) -> None:
    """Both HAProxies dead: both FAULT, nobody holds the VIP (a VIP on a node whose HAProxy
    is dead only black-holes traffic), for 20 advert intervals."""
    pair = make_pair()
    pair.haproxy["lb1"].kill()
    wait_for(lambda: pair.holders() == ["lb2"], 2, "lb2 to take over")
    pair.haproxy["lb2"].kill()
    wait_for(lambda: pair.holders() == [], 2, "lb2 to drop the VIP")
    end = time.monotonic() + 20 * INTERVAL
    while time.monotonic() < end:
        assert pair.holders() == [], "a node in FAULT holds the VIP"
        time.sleep(0.005)
    assert pair.vrrpd["lb1"].state("web") == "FAULT"
    assert pair.vrrpd["lb2"].state("web") == "FAULT"
    # lb2 recovers alone: it becomes master (nobody else advertises).
    pair.haproxy["lb2"].start()
    wait_for(lambda: pair.holders() == ["lb2"], 3, "lb2 to recover and take the VIP")


def test_weighted_file_tracker_lets_the_peer_preempt(make_pair: Any, tmp_path: Path) -> None:
    """A ``file`` tracker with weight -60 on lb1: the file holding 1 makes lb1's effective
    priority 90 < 100, so lb2 preempts after its Master_Down_Interval; removing it gives 150
    back and lb1 preempts back."""
    flag = tmp_path / "lb1-maint"

    def weighted(node: str, doc: dict[str, Any]) -> None:
        if node == "lb1":
            doc["tracks"]["maint"] = {"type": "file", "path": str(flag), "weight": -60,
                                      "interval": 0.1}
            doc["instances"][0]["track"].append("maint")

    pair = make_pair(weighted)
    lb1 = pair.vrrpd["lb1"]
    assert lb1.instance("web")["effective_priority"] == 150
    start = time.monotonic()
    flag.write_text("1\n")
    wait_for(lambda: lb1.instance("web")["effective_priority"] == 90, 1,
             "lb1's effective priority to drop to 90", poll=0.01)
    wait_for(lambda: pair.holders() == ["lb2"], 3, "lb2 to preempt")
    took = time.monotonic() - start
    bound = MDI_LB2 + INTERVAL + 0.1 + 0.15  # + one advert, file poll, slack
    print(f"lb1 at priority 90 -> lb2 master after {took * 1000:.0f} ms "
          f"(Master_Down_Interval {MDI_LB2 * 1000:.0f} ms, bound {bound * 1000:.0f} ms)")
    assert took <= bound
    assert lb1.state("web") == "BACKUP" and pair.vrrpd["lb2"].state("web") == "MASTER"
    flag.unlink()
    wait_for(lambda: pair.holders() == ["lb1"], 3, "lb1 (150 again) to preempt back")


def test_sync_group_follows_a_tracker_fault(make_pair: Any) -> None:
    """Sync group pacs = [web (IPv4, tracks HAProxy), web6 (IPv6, no tracker)]: HAProxy dies
    on lb1 -> web FAULT, web6 follows to FAULT, the IPv6 VIP moves to lb2 too."""

    def grouped(node: str, doc: dict[str, Any]) -> None:
        web = doc["instances"][0]
        doc["instances"].append({"name": "web6", "interface": "eth0", "vrid": 52,
                                 "priority": web["priority"], "advert_interval": INTERVAL,
                                 "vips": VIP6})
        doc["sync_groups"] = {"pacs": ["web", "web6"]}

    pair = make_pair(grouped)
    lb1, lb2 = pair.vrrpd["lb1"], pair.vrrpd["lb2"]
    lb1.wait_state("web6", "MASTER")
    wait_for(lambda: pair.holders(VIP6[1]) == ["lb1"], 3, "the IPv6 VIP on lb1 only")
    pair.haproxy["lb1"].kill()
    wait_for(lambda: pair.holders(VIP6[1]) == ["lb2"] and pair.holders(VIP) == ["lb2"], 2,
             "both VIPs on lb2 only")
    web6 = lb1.instance("web6")
    assert web6["state"] == "FAULT" and web6["faults"] == ["group:pacs"]
    assert lb1.state("web") == "FAULT"
    assert lb2.state("web6") == "MASTER" and lb2.state("web") == "MASTER"
    pair.haproxy["lb1"].start()
    wait_for(lambda: pair.holders(VIP6[1]) == ["lb1"] and pair.holders(VIP) == ["lb1"], 5,
             "both VIPs back on lb1")


def _tracker_ok(pair: HAProxyPair, node: str) -> bool:
    return all(t["ok"] for t in pair.vrrpd[node].instance("web")["trackers"])


def test_backends_gate_the_rejoin(make_pair: Any) -> None:
    """lb1's cable out long enough for its HAProxy to mark the backend DOWN: when the cable
    is back, lb1 stays in FAULT (tracker ``backends: [web]``) and only takes the VIP back
    once a health check has seen the server UP again, so it never preempts into 503s."""
    pair = make_pair()
    pair.lab.set_link("lb1", False)
    wait_for(lambda: pair.holders() == ["lb2"], 2, "lb2 to take over")
    wait_for(lambda: not _tracker_ok(pair, "lb1"), 10, "lb1's HAProxy to mark web DOWN",
             poll=0.05)
    pair.lab.set_link("lb1", True)
    cable_back = time.monotonic()
    tracker_ok_at = vip_at = None
    while vip_at is None and time.monotonic() - cable_back < 15:
        if tracker_ok_at is None and _tracker_ok(pair, "lb1"):
            tracker_ok_at = time.monotonic()
        if pair.holders() == ["lb1"]:
            vip_at = time.monotonic()
        time.sleep(0.01)
    assert tracker_ok_at is not None and vip_at is not None, "lb1 never came back"
    print(f"cable back: lb1's backend UP after {(tracker_ok_at - cable_back) * 1000:.0f} ms, "
          f"VIP back on lb1 after {(vip_at - cable_back) * 1000:.0f} ms")
    assert tracker_ok_at - cable_back > 0.5  # HAProxy needs `rise` good checks (inter 1s)
    assert vip_at >= tracker_ok_at
    assert ("FAULT", "BACKUP") in transitions(pair, "lb1")[-2:]
