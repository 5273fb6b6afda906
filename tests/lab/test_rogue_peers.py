"""A rogue VRRP router on the LAN (issue 12 part 1), against real daemons in namespaces.

lb1 (150) and lb2 (100) run VRRPv3 at 0.1 s and list each other in ``peers``; lb3, a third
namespace on the same switch that is no configured router, sends well-formed priority-254
adverts for their VRID with scapy.  With ``strict_peers: true`` they are dropped on receipt
(``unknown_peer``) and nothing moves.  Without it the rogue takes over as RFC 5798 §6.4.3 says,
and the takeover shows: a WARNING naming the source, ``vrrpd_foreign_master`` and
``vrrpd_foreign_adverts_total`` in the Prometheus metrics, "foreign master" in ``vrrpctl
status`` and in the notify hook's reason; when the rogue goes quiet, lb1 takes the VIP back.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.inject import Injector, rogue_advert
from lab.netns import Topology

VIP = "192.0.2.100"
ROGUE = "192.0.2.13"
METRICS = "127.0.0.1:9650"  # each daemon in its own namespace


class Pair:
    def __init__(self, topology: Topology, tmp: Path, strict: bool) -> None:
        self.topology = topology
        self.hook_out = tmp / "hook.log"
        hook = tmp / "notify.sh"
        hook.write_text(f'#!/bin/sh\necho "$VRRPD_NODE $3 $VRRPD_REASON" >> {self.hook_out}\n')
        hook.chmod(0o755)
        self.daemons = {
            name: Vrrpd(topology.nodes[name], tmp, [{
                "name": "web", "interface": "eth0", "vrid": 51, "priority": prio,
                "advert_interval": 0.1, "vips": [f"{VIP}/24"], "peers": [peer],
                "strict_peers": strict, "notify": str(hook)}], metrics={"listen": METRICS})
            for name, prio, peer in (("lb1", 150, "192.0.2.12"), ("lb2", 100, "192.0.2.11"))}
        self.probes = {n: AddressProbe(topology.nodes[n]) for n in self.daemons}
        self.injector = Injector(topology.nodes["lb3"])

    def holders(self) -> list[str]:
        return [n for n, p in self.probes.items() if p.has(f"{VIP}/24")]

    def metrics(self, node: str) -> str:
        return self.topology.nodes[node].ns.run(
            ["curl", "-s", f"http://{METRICS}/metrics"]).stdout

    def rogue(self, count: int, spacing: float = 0.1) -> None:
        """``count`` priority-254 adverts from lb3, one every ``spacing`` seconds (a rogue
        router advertising at the pair's own interval)."""
        frame = rogue_advert(self.injector, 51, [VIP])
        for _ in range(count):
            self.injector.sock.send(frame)
            time.sleep(spacing)

    @contextlib.contextmanager
    def rogue_advertising(self, spacing: float = 0.1) -> Iterator[None]:
        """The rogue's adverts every ``spacing`` seconds until the block ends: what is checked
        inside sees the pair following it however slowly a busy machine runs the checks (a
        rogue gone quiet for a Master_Down_Interval has lost the VRID again)."""
        frame = rogue_advert(self.injector, 51, [VIP])
        stop = threading.Event()

        def advertise() -> None:
            while not stop.is_set():
                self.injector.sock.send(frame)
                stop.wait(spacing)

        sender = threading.Thread(target=advertise, daemon=True)
        sender.start()
        try:
            yield
        finally:
            stop.set()
            sender.join()


@pytest.fixture(params=[True, False], ids=["strict_peers", "peers-only"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    with Topology() as topology:
        for i, name in enumerate(("lb1", "lb2", "lb3"), start=11):
            topology.add_node(name, f"192.0.2.{i}/24", f"2001:db8::{i}/64")
        lab = Pair(topology, tmp_path, request.param)
        try:
            lab.daemons["lb1"].start().wait_state("web", "MASTER")
            lab.daemons["lb2"].start().wait_state("web", "BACKUP")
            wait_for(lambda: lab.holders() == ["lb1"], 5, "lb1 to hold the VIP")
            yield lab
        finally:
            lab.injector.close()
            for d in lab.daemons.values():
                d.stop()
                print(f"---- {d.node.name} log ----\n{d.log()[-3000:]}")
            for p in lab.probes.values():
                p.close()


def _transitions(lab: Pair) -> dict[str, int]:
    return {n: d.instance("web")["counters"].get("transitions", 0)
            for n, d in lab.daemons.items()}


def test_rogue_priority_254(pair: Pair) -> None:
    strict = pair.daemons["lb1"].doc["instances"][0]["strict_peers"]
    before = _transitions(pair)
    if strict:
        pair.rogue(20)
        time.sleep(0.5)  # more than Master_Down_Interval: anything obeyed would have moved
        assert _transitions(pair) == before and pair.holders() == ["lb1"]
        for name, daemon in pair.daemons.items():
            web = daemon.instance("web")
            assert web["dropped"] == {"unknown_peer": 20}, name
            assert web["master"] == "192.0.2.11" and not web["foreign_master"]
            assert "dropped advert from 192.0.2.13" in daemon.log()
            assert 'vrrpd_dropped_total{reason="unknown_peer",vrrp_instance="web"} 20.0' in (
                pair.metrics(name))
        return
    with pair.rogue_advertising():
        time.sleep(1)  # lb1 steps down at the first advert; lb2 follows the rogue
        assert pair.holders() == []  # the finding: the rogue holds the VRID, nobody the VIP
        for name, daemon in pair.daemons.items():
            web = daemon.instance("web")
            assert web["state"] == "BACKUP" and web["master"] == ROGUE and web["foreign_master"]
            # lb2 may count 2: lb1's farewell advert as it steps down (proto/router.py) comes
            # between the rogue's first two
            counters = web["counters"]
            assert counters["foreign_adverts"] >= 9 and counters["foreign_masters"] >= 1
            log = daemon.log()
            assert f"WARNING [eth0 vrid=51 v3 web] following foreign master {ROGUE}" in log
            assert f"WARNING [eth0 vrid=51 v3 web] advert from {ROGUE} (priority 254)" in log
            metrics = pair.metrics(name)
            assert 'vrrpd_foreign_master{vrrp_instance="web"} 1.0' in metrics
            assert 'vrrpd_foreign_adverts_total{vrrp_instance="web"}' in metrics
        status = pair.daemons["lb2"].ctl("status")
        assert status["instances"][0]["foreign_master"]
        wait_for(lambda: pair.hook_out.exists() and
                 f"lb1 BACKUP {ROGUE} (foreign master, not in peers) is master with higher priority"
                 in pair.hook_out.read_text(), 5, "lb1's notify hook to get the reason")
    # The rogue goes quiet: lb1 (priority 150) wins again after Master_Down_Interval.
    wait_for(lambda: pair.holders() == ["lb1"], 3, "lb1 to take the VIP back", poll=0.01)
    assert pair.daemons["lb1"].state("web") == "MASTER"
    assert 'vrrpd_foreign_master{vrrp_instance="web"} 0.0' in pair.metrics("lb2")
    # The rogue's checksum form (scapy: pseudo-header) was not learnt: only peers teach it.
    assert pair.daemons["lb1"].instance("web")["checksum_form"] == "rfc9568"
