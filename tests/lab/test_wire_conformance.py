"""What vrrpd puts on the wire, checked by an independent dissector (tshark 4.0).

One vrrpd on lb1 becomes master alone, advertises for a few intervals and is stopped with
SIGTERM, with the interface's MAC and with ``virtual_mac: true`` (RFC 5798 §7.3).  tshark
captures on lb1's switch port (in the switch namespace, so it sees exactly
what lb1 transmits) and dissects the capture; each test asserts the RFC rules below on
tshark's reading, not on vrrpd's own codec.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_interface
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import Vrrpd, terminate, wait_for
from lab.netns import Namespace, Topology

PRIORITY = 150
# Gratuitous ARP / NA: two bursts of COUNT frames per VIP, REPEAT_DELAY apart (README, announce)
ANNOUNCE = {"count": 3, "interval": 0.01, "repeat_delay": 0.5}


@dataclass(frozen=True)
class Case:
    """One advert flavour and the tshark preference it is to be checked with."""

    name: str
    version: int
    interval: float
    vips: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    tshark_prefs: tuple[str, ...] = ()

    @property
    def family(self) -> int:
        return ip_interface(self.vips[0]).version

    @property
    def virtual_mac(self) -> str | None:
        """RFC 5798 §7.3: 00-00-5E-00-01-{VRID} (IPv4) / 00-00-5E-00-02-{VRID} (IPv6)."""
        return f"00:00:5e:00:0{1 if self.family == 4 else 2}:33" if self.extra.get(
            "virtual_mac") else None  # VRID 51 = 0x33


CASES = [
    Case("v2", 2, 1.0, ("192.0.2.100/24", "192.0.2.101/24")),
    # RFC 9568 §5.2.8 form: tshark's "v3 checksum as in v2" preference checks it.
    Case("v3-ipv4-rfc9568", 3, 0.1, ("192.0.2.100/24", "192.0.2.101/24"),
         {"v3_checksum": "rfc9568"}, ("-o", "vrrp.v3_checksum_as_in_v2:TRUE")),
    Case("v3-ipv4-pseudo-header", 3, 0.1, ("192.0.2.100/24", "192.0.2.101/24"),
         {"v3_checksum": "pseudo-header"}),
    Case("v3-ipv6", 3, 0.1, ("fe80::100/64", "2001:db8::100/64", "2001:db8::101/64")),
    Case("v2-vmac", 2, 1.0, ("192.0.2.100/24", "192.0.2.101/24"), {"virtual_mac": True}),
    Case("v3-ipv4-vmac", 3, 0.1, ("192.0.2.100/24", "192.0.2.101/24"),
         {"virtual_mac": True, "v3_checksum": "pseudo-header"}),
    Case("v3-ipv6-vmac", 3, 0.1, ("fe80::100/64", "2001:db8::100/64", "2001:db8::101/64"),
         {"virtual_mac": True}),
]


class Capture:
    """``tshark -i PORT -w FILE`` in a namespace; :meth:`packets` dissects what it wrote."""

    def __init__(self, ns: Namespace, ifname: str, path: Path) -> None:
        self.path = path
        self.err = path.with_suffix(".err")
        with self.err.open("wb") as err:
            self.proc = ns.popen(["tshark", "-q", "-i", ifname, "-w", str(path)],
                                 stdout=subprocess.DEVNULL, stderr=err)
        wait_for(lambda: "Capturing on" in self.err.read_text(), 10, "tshark to capture",
                 poll=0.02)

    def stop(self) -> None:
        time.sleep(0.3)  # let the last frames reach the capture
        terminate(self.proc, signal.SIGINT)

    def packets(self, *prefs: str) -> list[dict[str, Any]]:
        """Every frame as tshark's JSON ``layers`` (raw bytes included, lists for repeats)."""
        out = subprocess.run(["tshark", "-r", str(self.path), *prefs, "-T", "json", "-x",
                              "--no-duplicate-keys"], capture_output=True, text=True,
                             check=True).stdout
        return [frame["_source"]["layers"] for frame in json.loads(out or "[]")]


def _values(layer: dict[str, Any], key: str) -> list[str]:
    """A field's values: tshark gives one string, or a list when the field repeats."""
    value = layer.get(key, [])
    return value if isinstance(value, list) else [value]


@dataclass
class Run:
    """What the capture of one master's life holds, split by protocol."""

    case: Case
    mac: str
    source: str
    adverts: list[dict[str, Any]]
    announcements: list[dict[str, Any]]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.name)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Run]:
    """One capture per case, shared by the tests of this module (they only read it)."""
    case: Case = request.param
    tmp_path = tmp_path_factory.mktemp(case.name)
    with Topology() as lab:
        lab.add_node("lb1", "192.0.2.11/24", "2001:db8::11/64")
        yield _capture_master_life(lab, case, tmp_path)


def _capture_master_life(lab: Topology, case: Case, tmp_path: Path) -> Run:
    lb1 = lab.nodes["lb1"]
    capture = Capture(lab.switch, lb1.port, tmp_path / "lb1.pcap")
    daemon = Vrrpd(lb1, tmp_path, [{"name": "web", "interface": "eth0", "vrid": 51,
                                    "priority": PRIORITY, "version": case.version,
                                    "advert_interval": case.interval,
                                    "vips": list(case.vips), "announce": ANNOUNCE,
                                    **case.extra}])
    try:
        daemon.start().wait_state("web", "MASTER")
        time.sleep(max(4 * case.interval, ANNOUNCE["repeat_delay"] + 0.3))
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        capture.stop()
        print(f"---- vrrpd log ----\n{daemon.log()[-3000:]}")
    frames = capture.packets(*case.tshark_prefs)
    links = json.loads(lb1.ns.run(["ip", "-j", "link", "show"]).stdout)
    assert [k["ifname"] for k in links] == ["lo", "eth0"]  # the virtual MAC link is gone
    link = links[1]
    source = str(lb1.ipv4.ip) if case.family == 4 else str(lb1.link_local())
    announce_proto = "arp" if case.family == 4 else "icmpv6"
    return Run(case, case.virtual_mac or link["address"], source,
              adverts=[f for f in frames if "vrrp" in f],
              announcements=[f for f in frames if announce_proto in f
                             and (case.family == 4 or f["icmpv6"]["icmpv6.type"] == "136")])


def _ip(frame: dict[str, Any], family: int) -> dict[str, Any]:
    layer: dict[str, Any] = frame["ip" if family == 4 else "ipv6"]
    return layer


def test_adverts_ip_header(run: Run) -> None:
    """RFC 5798 §5.1.1 / §5.1.2 (RFC 3768 §5.1): sent to 224.0.0.18 / ff02::12, protocol 112,
    TTL / hop limit 255, from the primary IPv4 address / the interface's link-local address
    (never a VIP, even the link-local VIP); §7.3: from the virtual router MAC when
    ``virtual_mac`` is on, else the interface's."""
    assert run.adverts, "no VRRP advert captured"
    for frame in run.adverts:
        if run.case.family == 4:
            ip = _ip(frame, 4)
            got = (ip["ip.dst"], ip["ip.proto"], ip["ip.ttl"], ip["ip.src"])
            assert got == ("224.0.0.18", "112", "255", run.source)
            assert frame["eth"]["eth.dst"] == "01:00:5e:00:00:12"
        else:
            ip = _ip(frame, 6)
            got = (ip["ipv6.dst"], ip["ipv6.nxt"], ip["ipv6.hlim"], ip["ipv6.src"])
            assert got == ("ff02::12", "112", "255", run.source)
            assert ip_address(ip["ipv6.src"]).is_link_local
            assert frame["eth"]["eth.dst"] == "33:33:00:00:00:12"
        assert frame["eth"]["eth.src"] == run.mac


def test_adverts_vrrp_fields(run: Run) -> None:
    """RFC 5798 §5.2 / RFC 3768 §5.3: version and type 1 in the first byte, VRID, address
    count and list, v3 Max Adver Int in centiseconds (§5.2.7), v2 Adver Int in seconds with
    Auth Type 0 and eight zero bytes of authentication data (RFC 3768 §5.3.6, §5.3.10), and a
    checksum tshark verifies (§5.2.8; RFC 9568 form with ``v3_checksum_as_in_v2``)."""
    case = run.case
    addresses = [str(ip_interface(v).ip) for v in case.vips]
    for frame in run.adverts:
        vrrp = frame["vrrp"]
        assert int(vrrp["vrrp.typever"]) == case.version << 4 | 1
        tree = vrrp["vrrp.typever_tree"]
        assert (tree["vrrp.version"], tree["vrrp.type"]) == (str(case.version), "1")
        assert vrrp["vrrp.virt_rtr_id"] == "51"
        assert vrrp["vrrp.addr_count"] == str(len(addresses))
        key = "vrrp.ip_addr" if case.family == 4 else "vrrp.ipv6_addr"
        assert _values(vrrp, key) == addresses
        assert vrrp["vrrp.checksum.status"] == "1", f"tshark: bad checksum {vrrp}"
        raw = bytes.fromhex(frame["vrrp_raw"][0])
        if case.version == 3:
            assert vrrp["vrrp.short_adver_int"] == str(round(case.interval * 100))
            assert raw[4] >> 4 == 0  # reserved bits
        else:
            assert vrrp["vrrp.adver_int"] == str(round(case.interval))
            assert vrrp["vrrp.auth_type"] == "0"
            assert raw[-8:] == bytes(8) and len(raw) == 8 + 4 * len(addresses) + 8


def test_one_priority_zero_advert_on_sigterm(run: Run) -> None:
    """RFC 5798 §6.4.3: on Shutdown the master sends one ADVERTISEMENT with Priority 0; every
    advert before it carries the configured priority."""
    priorities = [frame["vrrp"]["vrrp.prio"] for frame in run.adverts]
    assert len(priorities) >= 3
    assert priorities[-1] == "0"
    assert priorities[:-1] == [str(PRIORITY)] * (len(priorities) - 1)


def test_announcement_per_vip(run: Run) -> None:
    """RFC 5798 §6.4.1 / §6.4.2 on becoming master: a gratuitous ARP for each IPv4 VIP
    (sender and target address the VIP, sender MAC ours), an unsolicited Neighbor
    Advertisement for each IPv6 VIP (RFC 4861 §7.2.6: to ff02::1, Override set, Solicited
    clear, hop limit 255, target the VIP, our MAC as target link-layer address; RFC 5798
    §6.4.2: Router flag set, from the interface's link-local address).  "Our MAC" is the
    virtual router MAC with ``virtual_mac`` (§7.3, §8.1.2)."""
    announced: set[str] = set()
    for frame in run.announcements:
        assert frame["eth"]["eth.src"] == run.mac
        if run.case.family == 4:
            arp = frame["arp"]
            assert arp["arp.src.proto_ipv4"] == arp["arp.dst.proto_ipv4"]
            assert arp["arp.isgratuitous"] == "1"
            assert arp["arp.src.hw_mac"] == run.mac
            announced.add(arp["arp.src.proto_ipv4"])
        else:
            ip, icmp = _ip(frame, 6), frame["icmpv6"]
            assert (ip["ipv6.dst"], ip["ipv6.hlim"]) == ("ff02::1", "255")
            flags = int(icmp["icmpv6.nd.na.flag_tree"]["icmpv6.nd.na.flag.o"])
            solicited = int(icmp["icmpv6.nd.na.flag_tree"]["icmpv6.nd.na.flag.s"])
            router = int(icmp["icmpv6.nd.na.flag_tree"]["icmpv6.nd.na.flag.r"])
            assert (flags, solicited, router) == (1, 0, 1)
            assert ip["ipv6.src"] == run.source
            option = icmp["icmpv6.opt"]
            assert option["icmpv6.opt.linkaddr"] == run.mac
            announced.add(icmp["icmpv6.nd.na.target_address"])
    assert announced == {str(ip_interface(v).ip) for v in run.case.vips}


def _announced(frame: dict[str, Any], family: int) -> str:
    if family == 4:
        return str(frame["arp"]["arp.src.proto_ipv4"])
    return str(frame["icmpv6"]["icmpv6.nd.na.target_address"])


def test_second_announcement_burst(run: Run) -> None:
    """RFC 5798 §6.4.1 asks for the announcement on becoming master; vrrpd sends a burst of
    ``announce.count`` per VIP ``announce.interval`` apart, and a second one
    ``announce.repeat_delay`` later while still master (hosts that missed the first)."""
    count, delay = ANNOUNCE["count"], ANNOUNCE["repeat_delay"]
    for vip in {str(ip_interface(v).ip) for v in run.case.vips}:
        times = sorted(float(f["frame"]["frame.time_epoch"]) for f in run.announcements
                       if _announced(f, run.case.family) == vip)
        assert len(times) == 2 * count, (vip, times)
        first, second = times[:count], times[count:]
        assert first[-1] - first[0] < 0.2 and second[-1] - second[0] < 0.2
        assert delay - 0.05 <= second[0] - first[0] <= delay + 0.25, (vip, times)
