"""Random, mutated and rogue VRRP packets at a running pair from a third node (issue 12).

:class:`WireLab` runs lb1 (priority 150, master) and lb2 (100, backup) with three virtual
routers: ``web`` (VRRPv3 IPv4, VRID 51, 0.1 s), ``legacy`` (VRRPv2, VRID 52, 1 s) and ``web6``
(VRRPv3 IPv6, VRID 53, 0.1 s), each listing the other node in ``peers`` with
``strict_peers: true``.  lb3, on the same switch, injects frames (:mod:`lab.inject`).
:func:`flood_frames` makes a mix that must all be dropped, each under exactly one reason:
random bytes, valid adverts with bits flipped, truncated or extended ones, wrong TTLs, and
well-formed *rogue* adverts (any priority, 0 and 255 included) for the configured VRIDs from
lb3 or from spoofed sources.  :func:`flood` sends them and accounts: every frame that reached
a daemon's raw socket (sent minus the kernel's receive-buffer drops, ``/proc/net/raw``) must
be counted as a drop, with no transition, no VIP move and flat memory.  The lab test
(``tests/lab/test_wire_volume.py``) and ``benchmarks/vrrp_flood.py`` use it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import psutil
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.inject import Injector
from lab.netns import LabSetup, Node, Topology
from vrrpd.proto.packet import DecodeError, decode

VIP4, LEGACY_VIP, VIP6 = "192.0.2.100", "192.0.2.102", ["fe80::100", "2001:db8::100"]
INSTANCES = [  # name, VRID, version, interval, VIPs
    ("web", 51, 3, 0.1, [f"{VIP4}/24"]),
    ("legacy", 52, 2, 1.0, [f"{LEGACY_VIP}/24"]),
    ("web6", 53, 3, 0.1, [f"{v}/64" for v in VIP6]),
]
ADDRESSES = {51: [VIP4], 52: [LEGACY_VIP], 53: VIP6}


def endpoint_and_instance_drops(status: dict[str, Any]) -> Counter[str]:
    """Every drop counter of one daemon, keyed ``endpoint/ipv4/ttl`` or ``web/unknown_peer``."""
    total: Counter[str] = Counter()
    for ep in status["endpoints"]:
        for reason, n in ep["dropped"].items():
            total[f"endpoint/ipv{ep['family']}/{reason}"] += n
    for inst in status["instances"]:
        for reason, n in inst["dropped"].items():
            total[f"{inst['name']}/{reason}"] += n
    return total


def raw_socket_drops(node: Node) -> int:
    """Packets the kernel dropped at the node's raw VRRP sockets (full receive buffer)."""
    total = 0
    for table in ("/proc/net/raw", "/proc/net/raw6"):
        for line in node.ns.run(["cat", table]).stdout.splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":0070"):  # local "port" is the protocol, 112
                total += int(fields[-1])
    return total


class WireLab(LabSetup):
    """lb1/lb2 running vrrpd with strict peers, lb3 injecting.  A context manager."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.topology: Topology | None = None
        self.daemons: dict[str, Vrrpd] = {}
        self.probes: dict[str, AddressProbe] = {}
        self.injector: Injector | None = None

    def _build(self) -> None:
        self.topology = Topology()
        for i, name in enumerate(("lb1", "lb2", "lb3"), start=11):
            self.topology.add_node(name, f"192.0.2.{i}/24", f"2001:db8::{i}/64")
        nodes = self.topology.nodes
        for name, prio, other in (("lb1", 150, "lb2"), ("lb2", 100, "lb1")):
            peer4, peer6 = str(nodes[other].ipv4.ip), nodes[other].link_local()
            self.daemons[name] = Vrrpd(nodes[name], self.tmp, [
                {"name": n, "interface": "eth0", "vrid": vrid, "version": v,
                 "priority": prio, "advert_interval": interval, "vips": vips,
                 "peers": [peer6 if vrid == 53 else peer4], "strict_peers": True}
                for n, vrid, v, interval, vips in INSTANCES])
        self.probes = {n: AddressProbe(nodes[n]) for n in self.daemons}
        self.injector = Injector(nodes["lb3"])
        for name, state in (("lb1", "MASTER"), ("lb2", "BACKUP")):
            self.daemons[name].start()
            for instance, *_ in INSTANCES:
                self.daemons[name].wait_state(instance, state)

    def holders(self) -> dict[str, list[str]]:
        return {vip: [n for n, p in self.probes.items()
                      if any(a.split("/")[0] == vip for a in p.addresses())]
                for vip in (VIP4, LEGACY_VIP, VIP6[1])}

    def close(self) -> None:
        if self.injector is not None:
            self.injector.close()
        for d in self.daemons.values():
            d.stop()
        for p in self.probes.values():
            p.close()
        if self.topology is not None:
            self.topology.close()


def flood_frames(inj: Injector, count: int, seed: int, rogue_share: float = 0.4
                 ) -> tuple[list[bytes], Counter[str]]:
    """``count`` frames none of which the pair may obey, and how many of each kind.

    ``rogue_share`` of them are well-formed adverts for VRIDs 51-53 from an unlisted source
    (lb3 itself or a spoofed address), any priority; the rest random or mutated protocol-112
    payloads that are *not* a well-formed advert for a configured VRID (checked with the codec,
    so every one must be dropped by the endpoint).
    """
    rng = random.Random(seed)
    good = {4: bytes(VRRPv3(vrid=51, priority=254, adv=10, addrlist=[VIP4])),
            6: bytes(VRRPv3(vrid=53, priority=254, adv=10, addrlist=VIP6))}
    sources = {4: (IPv4Address(inj.src4), IPv4Address("224.0.0.18")),
               6: (IPv6Address(inj.src6), IPv6Address("ff02::12"))}
    frames: list[bytes] = []
    kinds: Counter[str] = Counter()
    while len(frames) < count:
        if rng.random() < rogue_share:
            frames.append(_rogue(inj, rng, kinds))
            continue
        family = 4 if rng.random() < 0.8 else 6
        kind = rng.randrange(3)
        if kind == 0:
            payload, name = rng.randbytes(rng.randrange(0, 96)), "random"
        elif kind == 1:
            buf = bytearray(good[family])
            for _ in range(rng.randrange(1, 4)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            payload, name = bytes(buf), "bit-flipped"
        else:
            payload = good[family][:rng.randrange(len(good[family]))] + rng.randbytes(
                rng.choice((0, 0, 4, 16)))
            name = "truncated/extended"
        ttl = 255 if rng.random() < 0.9 else rng.randrange(255)
        if ttl == 255:
            try:
                if decode(payload, *sources[family]).vrid in ADDRESSES:
                    continue
            except DecodeError:
                pass
        frames.append(bytes(inj.ip(family, ttl) / Raw(payload)))
        kinds[name if ttl == 255 else "bad-ttl"] += 1
    return frames, kinds


def _rogue(inj: Injector, rng: random.Random, kinds: Counter[str]) -> bytes:
    """A well-formed advert for a configured VRID from a source that is not a listed peer."""
    vrid = rng.choice(list(ADDRESSES))
    priority = rng.choice((0, 254, 255, rng.randrange(1, 256)))
    spoofed = rng.random() < 0.5
    kinds[f"rogue-{'spoofed' if spoofed else 'lb3'}"] += 1
    if vrid == 53:
        frame = inj.ip(6)
        if spoofed:
            frame[IPv6].src = f"fe80::{rng.randrange(0x100, 0xffff):x}:{rng.randrange(1, 0xffff):x}"
        return bytes(frame / VRRPv3(vrid=53, priority=priority, adv=10, addrlist=VIP6))
    frame = inj.ip(4)
    if spoofed:
        frame[IP].src = f"192.0.2.{rng.randrange(128, 255)}"  # never lb1/lb2 (.11/.12)
    layer = (VRRPv3(vrid=51, priority=priority, adv=10, addrlist=[VIP4]) if vrid == 51 else
             VRRP(vrid=52, priority=priority, adv=1, addrlist=[LEGACY_VIP]))
    return bytes(frame / layer)


class Snapshot:
    """Drops, kernel socket drops, transitions, RSS, log length of both daemons now."""

    def __init__(self, lab: WireLab) -> None:
        assert lab.topology is not None
        self.status = {n: d.ctl("status") for n, d in lab.daemons.items()}
        self.drops = {n: endpoint_and_instance_drops(s) for n, s in self.status.items()}
        self.socket_drops = {n: raw_socket_drops(lab.topology.nodes[n]) for n in lab.daemons}
        self.transitions = {n: {i["name"]: i["counters"].get("transitions", 0)
                                for i in s["instances"]} for n, s in self.status.items()}
        self.rss = {n: psutil.Process(d.proc.pid).memory_info().rss  # type: ignore[union-attr]
                    for n, d in lab.daemons.items()}
        self.cpu = {n: sum(psutil.Process(d.proc.pid).cpu_times()[:2])  # type: ignore[union-attr]
                    for n, d in lab.daemons.items()}
        self.log_at = {n: len(d.log()) for n, d in lab.daemons.items()}
        self.holders = lab.holders()


def flood(lab: WireLab, count: int, seed: int, pace: int = 50) -> dict[str, Any]:
    """Send ``count`` frames from lb3, ``pace`` per 10 ms at most, and account for them on
    both daemons."""
    assert lab.injector is not None
    frames, kinds = flood_frames(lab.injector, count, seed)
    before = Snapshot(lab)
    started = time.monotonic()
    lab.injector.send(frames, pace)
    sent_in = time.monotonic() - started

    def settled(node: str) -> bool:
        assert lab.topology is not None
        counted = sum((endpoint_and_instance_drops(lab.daemons[node].ctl("status"))
                       - before.drops[node]).values())
        lost = raw_socket_drops(lab.topology.nodes[node]) - before.socket_drops[node]
        return counted + lost >= count

    for node in lab.daemons:
        wait_for(lambda n=node: settled(n), 30, f"{node} to account for {count} frames",
                 poll=0.1)
    time.sleep(0.3)  # anything counted twice shows up by now
    after = Snapshot(lab)
    out: dict[str, Any] = {"frames": count, "kinds": dict(kinds), "send_seconds": sent_in,
                           "rate_per_s": count / sent_in,
                           "holders_before": before.holders, "holders_after": after.holders}
    for node, daemon in lab.daemons.items():
        drops = after.drops[node] - before.drops[node]
        lost = after.socket_drops[node] - before.socket_drops[node]
        log_lines = [line for line in daemon.log()[before.log_at[node]:].splitlines()
                     if "WARNING" in line]
        out[node] = {
            "alive": daemon.proc is not None and daemon.proc.poll() is None,
            "reached": count - lost, "socket_drops": lost, "counted": sum(drops.values()),
            "by_reason": dict(sorted(drops.items())),
            "transitions": {i: after.transitions[node][i] - before.transitions[node][i]
                            for i in after.transitions[node]},
            "rss_growth_kib": (after.rss[node] - before.rss[node]) / 1024,
            "rss_mib": after.rss[node] / 2**20,
            "cpu_seconds": after.cpu[node] - before.cpu[node],
            "warning_lines": len(log_lines)}
    return out
