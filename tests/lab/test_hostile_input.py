"""Receive-side validation and hostile input against a running vrrpd pair (issue: conformance).

lb1 (priority 150) is master and lb2 (100) backup of three virtual routers: ``web`` (VRRPv3
IPv4, VRID 51), ``legacy`` (VRRPv2, VRID 52) and ``web6`` (VRRPv3 IPv6, VRID 53).  A third node,
lb3, injects crafted frames with scapy onto the switch.  Every bad packet must be dropped by
both daemons and counted under its reason - by the endpoint (``status()["endpoints"]``) for
what the packet's form and IP header decide, by the instance for what its configuration
decides - with rate-limited log lines, and nothing else may change: no transition, no VIP
move.  Injected adverts carry priority 254, so one that were wrongly accepted would unseat
lb1 and show.

The lab is module-scoped (the VRRPv2 instance needs 3.4 s to become master); every test
compares counters before and after its own injection.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.inject import Injector
from lab.netns import Topology
from lab.wire_flood import endpoint_and_instance_drops, flood_frames, raw_socket_drops

VIP4, LEGACY_VIP, VIP6 = "192.0.2.100", "192.0.2.102", ["fe80::100", "2001:db8::100"]
HOSTILE_PRIORITY = 254  # would beat lb1's 150 if it got through
INSTANCES = [
    ("web", 51, 3, 0.1, [f"{VIP4}/24"]),
    ("legacy", 52, 2, 1.0, [f"{LEGACY_VIP}/24"]),
    ("web6", 53, 3, 0.1, [f"{v}/64" for v in VIP6]),
]
FLOOD = 5000
RSS_GROWTH_LIMIT = 4 * 1024 * 1024  # bytes


@dataclass
class Lab:
    topology: Topology
    daemons: dict[str, Vrrpd]
    probes: dict[str, AddressProbe]
    injector: Injector

    def holders(self) -> dict[str, list[str]]:
        return {vip: [n for n, p in self.probes.items() if p.has_ip(vip)]
                for vip in (VIP4, LEGACY_VIP, VIP6[1])}


class _Probe(AddressProbe):
    def has_ip(self, ip: str) -> bool:
        return any(a.split("/")[0] == ip for a in self.addresses())


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("hostile")
    with Topology() as topology:
        for i, name in enumerate(("lb1", "lb2", "lb3"), start=11):
            topology.add_node(name, f"192.0.2.{i}/24", f"2001:db8::{i}/64")
        nodes = topology.nodes
        peer_of = {"lb1": nodes["lb2"], "lb2": nodes["lb1"]}
        daemons = {name: Vrrpd(nodes[name], tmp, [
            {"name": n, "interface": "eth0", "vrid": vrid, "version": v, "priority": prio,
             "advert_interval": interval, "vips": vips,
             "peers": [str(peer_of[name].ipv4.ip) if ":" not in vips[0]
                       else peer_of[name].link_local()]}
            for n, vrid, v, interval, vips in INSTANCES]) for name, prio in (("lb1", 150),
                                                                             ("lb2", 100))}
        probes = {n: _Probe(topology.nodes[n]) for n in daemons}
        injector = Injector(topology.nodes["lb3"])
        try:
            daemons["lb1"].start()
            for name, *_ in INSTANCES:
                daemons["lb1"].wait_state(name, "MASTER")
            daemons["lb2"].start()
            for name, *_ in INSTANCES:
                daemons["lb2"].wait_state(name, "BACKUP")
            yield Lab(topology, daemons, probes, injector)
        finally:
            injector.close()
            for d in daemons.values():
                d.stop()
                print(f"---- {d.node.name} log ----\n{d.log()[-3000:]}")
            for p in probes.values():
                p.close()


def _transitions(status: dict[str, Any]) -> dict[str, int]:
    return {i["name"]: i["counters"].get("transitions", 0) for i in status["instances"]}


class Snapshot:
    """Counters, transitions, VIP holders and log length of both daemons at one moment."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.status = {n: d.ctl("status") for n, d in lab.daemons.items()}
        self.drops = {n: endpoint_and_instance_drops(s) for n, s in self.status.items()}
        self.log_at = {n: len(d.log()) for n, d in lab.daemons.items()}
        self.holders = lab.holders()
        self.socket_drops = {n: raw_socket_drops(lab.topology.nodes[n]) for n in lab.daemons}

    def new_drops(self, node: str) -> Counter[str]:
        now = endpoint_and_instance_drops(self.lab.daemons[node].ctl("status"))
        now.subtract(self.drops[node])
        return +now

    def new_log(self, node: str) -> str:
        return self.lab.daemons[node].log()[self.log_at[node]:]

    def assert_nothing_moved(self) -> None:
        """No transition on either node, the VIPs where they were."""
        for name, daemon in self.lab.daemons.items():
            assert _transitions(daemon.ctl("status")) == _transitions(self.status[name])
        assert self.lab.holders() == self.holders == {VIP4: ["lb1"], LEGACY_VIP: ["lb1"],
                                                     VIP6[1]: ["lb1"]}


# ---- receive-side validation, one reason at a time -------------------------------------------

Build = Callable[[Injector], bytes]


def v3(family: int = 4, ttl: int = 255, vrid: int = 51, addresses: list[str] | None = None,
       **fields: Any) -> Build:
    """A VRRPv3 advert from lb3 (scapy computes the checksum unless ``chksum`` is given)."""
    if addresses is None:
        addresses = [VIP4] if family == 4 else VIP6

    def build(inj: Injector) -> bytes:
        layer = VRRPv3(**{"vrid": vrid, "priority": HOSTILE_PRIORITY, "adv": 10,
                          "addrlist": addresses, **fields})
        return bytes(inj.ip(family, ttl) / layer)
    return build


def v2(addresses: tuple[str, ...] = (LEGACY_VIP,), **fields: Any) -> Build:
    """A VRRPv2 advert from lb3 for the ``legacy`` instance (VRID 52, 1 s)."""
    def build(inj: Injector) -> bytes:
        layer = VRRP(**{"vrid": 52, "priority": HOSTILE_PRIORITY, "adv": 1,
                        "addrlist": list(addresses), **fields})
        return bytes(inj.ip(4) / layer)
    return build


def raw(payload: bytes) -> Build:
    return lambda inj: bytes(inj.ip(4) / Raw(payload))


RATE_LIMIT = 10.0  # seconds, vrrpd.daemon.logs.RateLimitedLog's period
_last_logged: dict[tuple[str, str], float] = {}

# (case id, frame builder, counter key that must count it, log fragment that names it)
CASES: list[tuple[str, Build, str, str]] = [
    ("ttl-64", v3(ttl=64), "endpoint/ipv4/ttl", "TTL/hop limit 64"),
    ("hop-limit-1", v3(family=6, ttl=1), "endpoint/ipv6/ttl", "TTL/hop limit 1"),
    ("version-4", v3(version=4), "endpoint/ipv4/version", "version 4"),
    ("v2-over-ipv6", lambda inj: bytes(inj.ip(6) / Raw(bytes(VRRP(vrid=53)))),
     "endpoint/ipv6/version", "version 2 over IPv6"),
    ("type-2", v3(type=2), "endpoint/ipv4/type", "type 2"),
    ("truncated", raw(b"\x31\x33\xfe"), "endpoint/ipv4/truncated", "truncated"),
    ("count-too-high", v3(ipcount=2), "endpoint/ipv4/truncated", "count 2"),
    ("count-too-low", v3(ipcount=1, addresses=[VIP4, "192.0.2.99"]), "endpoint/ipv4/length",
     "count 1"),
    ("bad-checksum", v3(chksum=0x1234), "endpoint/ipv4/checksum", "checksum"),
    ("count-zero", v3(ipcount=0, addresses=[]), "endpoint/ipv4/count_zero", "count_zero"),
    ("interval-zero", v3(adv=0), "endpoint/ipv4/interval_zero", "interval_zero"),
    ("ipv6-first-not-link-local", v3(family=6, vrid=53, addresses=["2001:db8::100"]),
     "endpoint/ipv6/not_link_local", "first address 2001:db8::100"),
    ("unconfigured-vrid", v3(vrid=99), "endpoint/ipv4/unknown_vrid", "VRID 99"),
    ("v3-for-v2-instance", v3(vrid=52, addresses=[LEGACY_VIP]), "legacy/version",
     "VRRPv3 advert, this instance runs VRRPv2"),
    ("v2-auth-type-1", v2(authtype=1), "legacy/auth_type", "auth type 1"),
    ("v2-interval-mismatch", v2(adv=3), "legacy/interval", "advert interval 3s"),
    ("v2-address-list-mismatch", v2(addresses=("192.0.2.199",)), "legacy/address_list",
     "address list [192.0.2.199]"),
]


@pytest.mark.parametrize(("build", "counter", "logged"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_invalid_advert_dropped_and_counted(lab: Lab, build: Build, counter: str,
                                            logged: str) -> None:
    """RFC 5798 §7.1 (RFC 9568) / RFC 3768 §7.1: "The receiver MUST ... discard" adverts
    with TTL/hop limit != 255, a version other than the instance's, a bad checksum, a
    length that does not match Count IPvX Addrs, an unconfigured VRID; VRRPv2 also an Auth
    Type other than ours, an Adver Interval other than ours, and (unless the sender is the
    owner) an address list other than ours.  Type must be ADVERTISEMENT (§5.2.2); Count 0 and
    Max Adver Int 0 cannot be a virtual router; the first IPv6 address is link-local (§5.2.9).

    Three copies: each counted once under exactly one reason on both nodes, one log line
    (the rest held back by the rate limit), no transition, no VIP move."""
    before = Snapshot(lab)
    lab.injector.send([build(lab.injector)] * 3)
    for node in lab.daemons:
        wait_for(lambda n=node: sum(before.new_drops(n).values()) >= 3, 3,
                 f"{node} to count 3 drops", poll=0.02)
    time.sleep(0.2)  # anything counted twice, or elsewhere, shows up by now
    for node in lab.daemons:
        assert before.new_drops(node) == {counter: 3}, node
        lines = [line for line in before.new_log(node).splitlines() if logged in line]
        # One line per reason per 10 s (RateLimitedLog): none if an earlier case of the same
        # reason logged less than 10 s ago.
        held = time.monotonic() - _last_logged.get((node, counter), -60.0) < RATE_LIMIT - 0.5
        assert len(lines) == (0 if held else 1), f"{node}: {lines}"
        if not held:
            _last_logged[node, counter] = time.monotonic()
    before.assert_nothing_moved()


@pytest.mark.parametrize(("family", "instance", "addresses"), [
    (4, "web", ["192.0.2.199"]),
    (6, "web6", ["fe80::1", "2001:db8::199"]),
], ids=["ipv4", "ipv6"])
def test_duplicate_vrid_is_a_conflict(lab: Lab, family: int, instance: str,
                                      addresses: list[str]) -> None:
    """An advert for our VRID whose address list differs, from a router that is not one of
    the listed ``peers``, is another virtual router misconfigured with our VRID: reported (log
    line naming the VRID clash, ``conflict`` counter), never obeyed.  (Without ``peers``
    RFC 5798 §7.1 has it logged and processed: tests/test_router.py.)"""
    before = Snapshot(lab)
    vrid = 51 if family == 4 else 53
    frame = v3(family=family, vrid=vrid, addresses=addresses)(lab.injector)
    lab.injector.send([frame] * 5)
    key = f"{instance}/conflict"
    for node in lab.daemons:
        wait_for(lambda n=node: before.new_drops(n)[key] >= 5, 3, f"{node} to count conflicts",
                 poll=0.02)
        assert before.new_drops(node) == {key: 5}
        # the log writer is off the loop (vrrpd/daemon/logs.py): the line can come after the
        # count (scripts/stress saw it missing 3 times in 10 runs with both cores busy)
        wait_for(lambda n=node: "two virtual routers share this VRID" in before.new_log(n), 3,
                 f"{node} to log the VRID clash", poll=0.02)
    before.assert_nothing_moved()


# ---- flood -------------------------------------------------------------------------------


def _flood_frames(inj: Injector, count: int, seed: int) -> list[bytes]:
    """``count`` malformed or random protocol-112 frames (80 % IPv4), none of which is a
    well-formed advert for a configured VRID (:func:`lab.wire_flood.flood_frames` without
    rogue adverts), so every one must be dropped."""
    return flood_frames(inj, count, seed, rogue_share=0)[0]


def _advert_counts(status: dict[str, Any], counter: str) -> dict[str, int]:
    return {i["name"]: i["counters"].get(counter, 0) for i in status["instances"]}


def test_flood_of_malformed_packets(lab: Lab) -> None:
    """5000 malformed / random protocol-112 packets at the running pair: no crash, no
    transition, no VIP move; every packet that reached a daemon's socket is counted as a
    drop (sum of drop counters == packets in); rate-limited logging; flat memory; and lb2
    receives every advert lb1 sent meanwhile (the flood crowds out none of them)."""
    lab.injector.send(_flood_frames(lab.injector, 500, seed=1))  # warm-up: caches, logging
    time.sleep(0.5)
    before = Snapshot(lab)
    rss = {n: psutil.Process(d.proc.pid).memory_info().rss for n, d in lab.daemons.items()
           if d.proc is not None}
    frames = _flood_frames(lab.injector, FLOOD, seed=2)
    started = time.monotonic()
    lab.injector.send(frames)
    for node, daemon in lab.daemons.items():
        def lost(n: str = node) -> int:
            return raw_socket_drops(lab.topology.nodes[n]) - before.socket_drops[n]

        wait_for(lambda n=node: sum(before.new_drops(n).values()) + lost(n) >= FLOOD, 10,
                 f"{node} to account for {FLOOD} packets", poll=0.05)
        time.sleep(0.2)
        drops = before.new_drops(node)
        reached = FLOOD - lost()
        growth = psutil.Process(daemon.proc.pid).memory_info().rss - rss[node]  # type: ignore
        log_lines = [line for line in before.new_log(node).splitlines() if "dropped" in line]
        print(f"FLOOD {node}: {FLOOD} sent, {FLOOD - reached} lost in the socket buffer, "
              f"{sum(drops.values())} counted; RSS {growth / 1024:+.0f} KiB; "
              f"{len(log_lines)} log lines; by reason {json.dumps(dict(drops))}")
        assert sum(drops.values()) == reached
        assert FLOOD - reached <= FLOOD // 100
        assert daemon.proc is not None and daemon.proc.poll() is None
        assert growth < RSS_GROWTH_LIMIT
        # One line per reason per 10 s rate-limit window.
        windows = 1 + int((time.monotonic() - started) // 10) + 1
        assert len(log_lines) <= len(drops) * windows
    # lb1's status is read just before lb2's at both ends, so at most one advert per instance
    # can be in flight between the two readings.
    sent = _advert_counts(lab.daemons["lb1"].ctl("status"), "adverts_sent")
    received = _advert_counts(lab.daemons["lb2"].ctl("status"), "adverts_received")
    sent_before = _advert_counts(before.status["lb1"], "adverts_sent")
    received_before = _advert_counts(before.status["lb2"], "adverts_received")
    for name in sent:
        delta_sent = sent[name] - sent_before[name]
        delta_received = received[name] - received_before[name]
        print(f"FLOOD {name}: lb1 sent {delta_sent} adverts, lb2 received {delta_received}")
        assert delta_sent > 0 and abs(delta_sent - delta_received) <= 1, name
    before.assert_nothing_moved()


def test_nothing_dropped_between_the_peers(lab: Lab) -> None:
    """After all that, the pair still hears each other: lb2 receives lb1's adverts and drops
    none of them (its instances' drop counters hold only what lb3 sent)."""
    before = {i["name"]: i["counters"].get("adverts_received", 0)
              for i in lab.daemons["lb2"].ctl("status")["instances"]}
    time.sleep(1.2)
    after = {i["name"]: i["counters"].get("adverts_received", 0)
             for i in lab.daemons["lb2"].ctl("status")["instances"]}
    assert all(after[n] > before[n] for n in before), (before, after)
    assert lab.daemons["lb2"].state("web") == "BACKUP"
