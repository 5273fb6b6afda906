"""The pure parts of the draining hand-over (issue 20): counting HAProxy's sessions on the
VIPs, the side channel's messages, the nftables scripts (checked by ``nft -c``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
from ipaddress import ip_address, ip_interface
from types import SimpleNamespace
from typing import Any

import pytest
from status_docs import DRAINING, FORWARDING, doc, instance
from test_metrics import scrape

from vrrpd.cli.render import render_status
from vrrpd.drain.forwarding import Forwarding
from vrrpd.drain.handover import Handover
from vrrpd.drain.messages import DrainMessage, Phase
from vrrpd.drain.sessions import count_sessions, listener_address
from vrrpd.kernel.conntrack import parse_tuple
from vrrpd.kernel.drain_forward import (
    TCP_TIME_WAIT,
    DrainForwarding,
    Forward,
    guard_rules,
    mark_rules,
    unknown_flows,
)
from vrrpd.kernel.drain_hold import DrainHold, host_addresses
from vrrpd.track.haproxy_stats import StatsError

# `show sess all` of HAProxy 2.6.12 (abridged): a session on the VIP, one on the loopback
# monitor, the stats socket's own session, and an IPv6 one.
SHOW_SESS_ALL = """\
0x562d16545840: [30/Nov/2026:13:37:54.246141] id=2 proto=tcpv4 source=192.0.2.50:34722
  flags=0x4a, conn_retries=0, conn_exp=<NEVER> conn_et=0x000 srv_conn=0x5, pend_pos=(nil)
  frontend=dicom (id=2 mode=tcp), listener=? (id=1) addr=192.0.2.100:104
  backend=dicom (id=3 mode=tcp) addr=192.0.2.11:39314
  server=pacs1 (id=1) addr=192.0.2.30:104
0x7fa8c8039d90: [30/Nov/2026:13:37:52.601253] id=1 proto=tcpv4 source=127.0.0.1:34712
  frontend=monitor (id=4 mode=http), listener=? (id=1) addr=127.0.0.1:8405
  backend=<NONE> (id=-1 mode=-)
0x7fa8c8042c40: [30/Nov/2026:13:37:54.854718] id=4 proto=unix_stream source=unix:1
  frontend=GLOBAL (id=0 mode=tcp), listener=? (id=1) addr=unix:1
  backend=<NONE> (id=-1 mode=-)
0x7fa8c8042d00: [30/Nov/2026:13:37:55.000000] id=5 proto=tcpv6 source=[2001:db8::50]:4000
  frontend=web6 (id=5 mode=http), listener=? (id=1) addr=[2001:db8::100]:80
"""


def test_sessions_on_the_vips_are_counted_and_the_others_not() -> None:
    assert count_sessions(SHOW_SESS_ALL, [ip_address("192.0.2.100")]) == 1
    assert count_sessions(SHOW_SESS_ALL, [ip_address("2001:db8::100")]) == 1
    assert count_sessions(SHOW_SESS_ALL, [ip_address("192.0.2.101")]) == 0
    assert count_sessions("", [ip_address("192.0.2.100")]) == 0  # nothing open


def test_a_reply_that_is_no_session_list_is_an_error() -> None:
    with pytest.raises(StatsError, match="unexpected reply"):
        count_sessions("Unknown command.\n", [ip_address("192.0.2.100")])


@pytest.mark.parametrize(("text", "address"), [
    ("192.0.2.100:104", "192.0.2.100"), ("[2001:db8::100]:80", "2001:db8::100"),
    ("2001:db8::100:80", "2001:db8::100"), ("unix:1", None), ("abns@x:1", None)])
def test_listener_address_forms(text: str, address: str | None) -> None:
    assert listener_address(text) == (None if address is None else ip_address(address))


def test_a_message_survives_its_round_trip() -> None:
    msg = DrainMessage("pacs", 51, Phase.DRAINING, ip_address("192.0.2.11"), 3, 597.5)
    assert DrainMessage.parse(msg.header()) == msg
    assert DrainMessage.parse(DrainMessage("pacs", 51, Phase.PLANNED,
                                           ip_address("fe80::11")).header()).sessions is None


@pytest.mark.parametrize("change", [
    {"phase": "resting"}, {"via": "lb1"}, {"vrid": "51"}, {"vrid": True}, {"sessions": -1},
    {"left": "soon"}, {"instance": None}])
def test_a_malformed_message_is_refused_with_the_reason(change: dict[str, object]) -> None:
    header = {**DrainMessage("pacs", 51, Phase.DRAINING, ip_address("192.0.2.11"), 1,
                             1.0).header(), **change}
    with pytest.raises(ValueError, match="malformed drain message"):
        DrainMessage.parse(header)


def test_vips_are_held_as_host_addresses_without_link_local() -> None:
    vips = (ip_interface("192.0.2.100/24"), ip_interface("fe80::51/64"),
            ip_interface("2001:db8::100/64"))
    assert host_addresses(vips) == (ip_interface("192.0.2.100/32"),
                                    ip_interface("2001:db8::100/128"))


def test_syns_are_never_marked_and_only_unknown_flows_are() -> None:
    script = mark_rules("web-1", [ip_interface("192.0.2.100/24"), ip_interface("192.0.2.101")])
    assert "chain inet vrrpd_drain fw_web_d1" in script
    assert ("ip daddr { 192.0.2.100, 192.0.2.101 } tcp flags & (syn | ack) == ack "
            "ct state new ct mark set 0x7672") in script
    assert "ct mark 0x7672 meta mark set 0x7672" in script
    v6 = mark_rules("web6", [ip_interface("2001:db8::100/64")])
    assert "ip6 daddr { 2001:db8::100 }" in v6


def test_only_marked_packets_are_forwarded_and_no_redirect_leaves() -> None:
    script = guard_rules({"eth1", "vrrp4-2-51"})
    assert 'iifname { "eth1", "vrrp4-2-51" } meta mark != 0x7672 drop' in script
    assert "icmp type redirect drop" in script and "icmpv6 type nd-redirect drop" in script
    assert "meta mark != " not in guard_rules(())


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian's nftables) missing")
def test_the_scripts_are_valid_nftables() -> None:
    script = guard_rules({"eth1"}) + mark_rules("pacs", [ip_interface("192.0.2.100/24")]) \
        + mark_rules("pacs6", [ip_interface("2001:db8::100/64")])
    result = subprocess.run(["nft", "-c", "-f", "-"], input=script, text=True,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr


def test_status_and_metrics_show_the_drain_on_both_nodes() -> None:
    """``vrrpctl status``: "draining: N sessions, T s left" on the old master, "forwarding
    unknown flows to X" on the new one; the metrics say the same."""
    old = doc(instance(state="BACKUP", vips_held=False, drain=DRAINING))
    new = doc(instance(state="MASTER", drain=FORWARDING))
    assert "pacs: draining: 2 sessions, 584 s left (forwarded by lb2)" in render_status(old)
    assert ("pacs: forwarding unknown flows to 192.0.2.11 (it drains 2 sessions, 584 s left)"
            in render_status(new))
    assert "draining" not in render_status(doc(instance()))
    body = scrape(old)
    for line in ('vrrpd_drain_active{vrrp_instance="pacs"} 1.0',
                 'vrrpd_drain_sessions{vrrp_instance="pacs"} 2.0',
                 'vrrpd_drain_seconds_left{vrrp_instance="pacs"} 584.2',
                 'vrrpd_drain_forwarding{vrrp_instance="pacs"} 0.0',
                 'vrrpd_drains_total{vrrp_instance="pacs"} 1.0'):
        assert line in body
    body = scrape(new)
    assert 'vrrpd_drain_forwarding{vrrp_instance="pacs"} 1.0' in body
    assert 'vrrpd_drain_forwards_total{vrrp_instance="pacs"} 1.0' in body
    assert "vrrpd_drain_sessions{" not in body


def test_the_drain_is_off_without_timeout_channel_or_with_the_transparent_variant() -> None:
    """Never worse than today: no drain without drain_timeout, without the config-sync
    channel, or in the transparent variant (its server-side packets would stall)."""
    def off(timeout: float, channel: bool, tproxy: bool) -> str | None:
        async def run() -> str | None:
            config: Any = SimpleNamespace(instances=[SimpleNamespace(
                tproxy=object() if tproxy else None)])
            addresses: Any = SimpleNamespace()
            handover = Handover(DrainHold(addresses), DrainForwarding(),
                                lambda: object() if channel else None,  # type: ignore[arg-type,return-value]
                                dict, lambda: config)
            driver: Any = SimpleNamespace(cfg=SimpleNamespace(drain_timeout=timeout))
            return handover.off(driver)
        return asyncio.run(run())
    assert off(600, True, False) is None
    assert off(0, True, False) == "drain_timeout is 0"
    assert off(600, False, False) == "no config_sync: (the side channel)"
    assert off(600, True, True) == "the transparent variant (tproxy:) cannot drain"


CLIENT, VIP = ip_address("192.0.2.50"), ip_address("192.0.2.100")
TCP_ESTABLISHED, TCP_CLOSE_WAIT = 1, 8


@pytest.mark.parametrize(("socket_state", "forgotten"), [
    (None, True),  # no socket: a flow cut by a failover, or its TIME_WAIT socket gone
    (TCP_TIME_WAIT, True),  # this host closed it (HAProxy closes first): over
    (TCP_ESTABLISHED, False),  # a connection of this host (a drain here, cancelled)
    (TCP_CLOSE_WAIT, False),  # still this host's, closing
])
def test_conntrack_entries_no_socket_serves_are_forgotten(socket_state: int | None,
                                                         forgotten: bool) -> None:
    """Before forwarding, the new master forgets conntrack's entries of flows to the VIPs that
    none of its sockets serves: a client port reused by an old flow of the draining peer must
    be ``ct state new`` here, or its packets stay here and meet a TIME_WAIT socket or none."""
    flow = (CLIENT, 40000, VIP, 80)
    other = (CLIENT, 40002, VIP, 80)
    sockets = [((CLIENT, 40002, VIP, 80), TCP_ESTABLISHED)]
    if socket_state is not None:
        sockets.append((flow, socket_state))
    assert unknown_flows([flow, other], sockets) == ({flow} if forgotten else set())


def nla(kind: int, payload: bytes, nested: bool = False) -> bytes:
    """One netlink attribute, padded (NLA_F_NESTED on nested ones, as the kernel sends)."""
    raw = struct.pack("=HH", 4 + len(payload), kind | (0x8000 if nested else 0)) + payload
    return raw + b"\0" * (-len(raw) % 4)


@pytest.mark.parametrize(("family", "src", "dst", "proto", "flow"), [
    (socket.AF_INET, "192.0.2.50", "192.0.2.100", socket.IPPROTO_TCP,
     (ip_address("192.0.2.50"), 40000, ip_address("192.0.2.100"), 80)),
    (socket.AF_INET6, "2001:db8::50", "2001:db8::100", socket.IPPROTO_TCP,
     (ip_address("2001:db8::50"), 40000, ip_address("2001:db8::100"), 80)),
    (socket.AF_INET, "192.0.2.50", "192.0.2.100", socket.IPPROTO_UDP, None),
])
def test_conntrack_tuple_parsed(family: int, src: str, dst: str, proto: int,
                                flow: Any) -> None:
    """A ctnetlink CTA_TUPLE_ORIG payload (nfnetlink_conntrack.h) as a flow; TCP only."""
    first = 1 if family == socket.AF_INET else 3  # CTA_IP_V4_SRC / CTA_IP_V6_SRC
    ips = nla(first, ip_address(src).packed) + nla(first + 1, ip_address(dst).packed)
    ports = (nla(1, bytes([proto])) + nla(2, struct.pack("!H", 40000))
             + nla(3, struct.pack("!H", 80)))
    payload = nla(1, ips, nested=True) + nla(2, ports, nested=True)
    assert parse_tuple(family, payload) == flow


def test_the_longest_wait_for_a_heartbeat_is_kept() -> None:
    """The new master keeps how long it waited at most for a heartbeat (the first counted from
    the start of forwarding): how close a drain came to the lapse that ends it."""
    async def run() -> dict[str, Any]:
        kernel: Any = SimpleNamespace(start=lambda fwd: asyncio.sleep(0),
                                      stop=lambda name: asyncio.sleep(0))
        forwarding = Forwarding(kernel)
        via = ip_address("192.0.2.11")
        fwd = Forward("pacs", (ip_interface("192.0.2.100/24"),), via, "eth1", "eth1")
        log: Any = SimpleNamespace(info=lambda *args: None)
        await forwarding.start(fwd, 2.0, log)
        beat = DrainMessage("pacs", 51, Phase.DRAINING, via, 2, 500.0)
        for wait in (0.05, 0.2, 0.05):
            await asyncio.sleep(wait)
            assert forwarding.heartbeat(beat)
        status = forwarding.active["pacs"].status()
        await forwarding.close()
        return status
    status = asyncio.run(run())
    assert status["heartbeats"] == 3
    assert 0.2 <= status["longest_heartbeat_gap"] < 1.0
