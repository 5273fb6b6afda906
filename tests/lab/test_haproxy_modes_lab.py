"""The ``haproxy`` tracker with real HAProxy 2.6 in every mode users run it in (issue 14):
master-worker (``-W -D -p``), classic daemon (``-D -p``, reload ``-sf``) and foreground
``-Ws`` under a supervisor without a pidfile (found by its stats socket's owner).

For each mode, on the master lb1 of a :class:`lab.haproxy_pair.HAProxyPair`:
a normal reload changes nothing (no transition on either node, the VIP stays), a SIGKILL
moves the VIP to lb2 at once (lb1 resigns with priority 0: Skew_Time, not
Master_Down_Interval), and a restart brings lb1 back (BACKUP, then it preempts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import wait_for
from lab.haproxy_pair import HAPROXY_MODES, HAProxyPair
from vrrpd.proto.timers import master_down_interval, skew_time

INTERVAL = 0.1
MDI_LB2 = master_down_interval(3, 100, round(INTERVAL * 100))  # seconds, lb2 priority 100
SKEW_LB2 = skew_time(3, 100, round(INTERVAL * 100))


@pytest.fixture(params=list(HAPROXY_MODES))
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HAProxyPair]:
    lab = HAProxyPair(tmp_path, interval=INTERVAL, track_interval=0.1,
                      haproxy_mode=request.param)
    try:
        yield lab.__enter__()
    finally:
        print(lab.logs())
        lab.close()


def tracker(pair: HAProxyPair, node: str) -> dict[str, object]:
    trackers = pair.vrrpd[node].instance("web")["trackers"]
    return next(t for t in trackers if t["name"] == "haproxy")


def latest(pair: HAProxyPair, node: str) -> str:
    """The detail of the tracker's latest check (the published one changes with its state)."""
    return str(tracker(pair, node)["last_check"]["detail"])  # type: ignore[index]


def transitions(pair: HAProxyPair, node: str) -> list[tuple[str, str]]:
    return [(t["old"], t["new"]) for t in pair.vrrpd[node].instance("web")["transitions"]]


def test_kill_reload_restart(pair: HAProxyPair) -> None:
    mode = pair.haproxy_mode
    shown = tracker(pair, "lb1")
    expected = "master-worker" if mode == "foreground" else mode  # -Ws: a master, no pidfile
    assert shown["mode"] == expected, shown
    assert shown["ok"], shown
    if mode == "foreground":
        assert str(shown["found_by"]).startswith("stats socket owner ")

    # reload: nothing happens (checked over 2 s, 20 tracker intervals after the reload)
    before = {n: transitions(pair, n) for n in ("lb1", "lb2")}
    old_detail = latest(pair, "lb1")
    pair.haproxy["lb1"].reload()
    wait_for(lambda: latest(pair, "lb1") != old_detail, 5,
             "the tracker to follow the reload to the new process")
    time.sleep(2)
    assert {n: transitions(pair, n) for n in ("lb1", "lb2")} == before
    assert pair.holders() == ["lb1"] and tracker(pair, "lb1")["ok"]
    print(f"{mode}: before reload: {old_detail}; after: {latest(pair, 'lb1')}")

    # kill: lb1 resigns at once: lb2 takes over on its priority-0 advert after Skew_Time
    start = time.monotonic()
    pair.haproxy["lb1"].kill()
    wait_for(lambda: pair.holders() == ["lb2"], 2, "lb2 to hold the VIP alone")
    took = time.monotonic() - start
    inst = pair.vrrpd["lb1"].instance("web")
    assert inst["state"] == "FAULT" and inst["faults"] == ["track:haproxy"]
    resigned, taken = inst["transitions"][-1], pair.vrrpd["lb2"].instance("web")["transitions"][-1]
    assert (taken["old"], taken["new"], taken["cause"]) == ("BACKUP", "MASTER",
                                                            "master_resigned"), taken
    # the daemons' own clocks (this test's polling of `ip` is not what is measured)
    gap = taken["at"] - resigned["at"]
    assert gap < MDI_LB2, f"{gap:.3f}s from lb1's FAULT to lb2's MASTER"
    print(f"{mode}: HAProxy SIGKILL -> lb2 MASTER {gap * 1000:.0f} ms after lb1's FAULT "
          f"(Skew_Time {SKEW_LB2 * 1000:.0f} ms), holds the VIP after {took * 1000:.0f} ms; "
          f"{latest(pair, 'lb1')}")

    # restart: lb1 comes back and preempts
    pair.haproxy["lb1"].stop()
    pair.haproxy["lb1"].start()
    wait_for(lambda: pair.holders() == ["lb1"], 5, "lb1 to preempt back")
    assert transitions(pair, "lb1")[-3:] == [("MASTER", "FAULT"), ("FAULT", "BACKUP"),
                                             ("BACKUP", "MASTER")]
    assert tracker(pair, "lb1")["mode"] == expected
