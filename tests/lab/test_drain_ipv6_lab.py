"""The draining hand-over (issue 20) over IPv6: a VRRPv3 IPv6 instance beside the reference's
IPv4 one in :class:`lab.pacs.PacsLab`, its VIP 2001:db8::100 bound by the web frontend.

``vrrpctl demote pacs6`` on lb1: a long HTTP download through [2001:db8::100]:80 completes
without a reset while new connections land on lb2; lb1 keeps 2001:db8::100/128 on lo and
answers no neighbour solicitation for it (the client's neighbour entry names lb2), lb2
forwards the download's packets to lb1's link-local address (the VRRPv3 advert's source,
RFC 5798 5.1.2.1), its ``ip6`` rule set and route are in place during the drain and gone
after it, and the IPv4 instance never moves.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lab.client import http_request
from lab.daemons import REALTIME, wait_for
from lab.haproxy_pair import LBS
from lab.pacs import PacsLab
from lab.transfers import HttpDownload

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

VIP6 = "2001:db8::100"
VIP6_HELD = f"{VIP6}/64"  # as the master holds it (on lo a draining node keeps a /128)
INSTANCE6 = "pacs6"
VRID6 = 61
WEB_BIND = "    bind 192.0.2.100:80\n"


class PacsLabV6(PacsLab):
    """The PACS lab with a second instance, ``pacs6``: VRRPv3 over IPv6 for :data:`VIP6`."""

    def _add_lbs(self) -> None:
        super()._add_lbs()
        for name in LBS:  # the backup's HAProxy binds the VIP it does not hold (as for IPv4)
            self.node(name).ns.sysctl("net.ipv6.ip_nonlocal_bind", 1)

    def haproxy_config(self) -> str:
        text = super().haproxy_config()
        assert text.count(WEB_BIND) == 1, "etc/haproxy/haproxy.cfg: the web bind moved"
        return text.replace(WEB_BIND, f"{WEB_BIND}    bind [{VIP6}]:80\n")

    def vrrpd_config(self, node: str) -> dict[str, Any]:
        doc = super().vrrpd_config(node)
        (pacs,) = doc["instances"]
        pacs["preempt_delay"] = 1  # the reference waits 60 s
        doc["instances"].append({
            "name": INSTANCE6, "interface": pacs["interface"], "vrid": VRID6, "version": 3,
            "priority": pacs["priority"], "advert_interval": pacs["advert_interval"],
            "preempt_delay": 1, "vips": [f"fe80::{VRID6}/64", f"{VIP6}/64"],
            "track": ["haproxy"]})  # RFC 5798 5.2.9: the first IPv6 VIP is link-local
        for tracker in doc["tracks"].values():  # as tests/lab/test_drain_lab.py, for a loaded host
            tracker.update(interval=max(tracker.get("interval", 1.0), 0.5), timeout=0.5, fall=3)
        return doc


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacsLabV6]:
    # real-time vrrpd: a demote's hand-over window is 0.4 s (test_pacs_e2e.py says why)
    with PacsLabV6(tmp_path_factory.mktemp("drain6"), realtime_priority=REALTIME) as lab:
        wait_for(lambda: lab.holders(VIP6_HELD) == ["lb1"], 10, "lb1 to hold the IPv6 VIP",
                 poll=0.02)
        yield lab


def drain(lab: PacsLab, node: str) -> dict[str, Any]:
    return dict(lab.vrrpd[node].instance(INSTANCE6)["drain"])


def test_demote_keeps_an_ipv6_download(lab: PacsLabV6) -> None:
    client = lab.node("client")
    download = HttpDownload(client, VIP6, 12_000_000, 8).start()
    time.sleep(2)
    lab.vrrpd["lb1"].ctl("demote", instance=INSTANCE6)
    wait_for(lambda: lab.holders(VIP6_HELD) == ["lb2"], 10, "lb2 to hold the IPv6 VIP", poll=0.01)
    wait_for(lambda: drain(lab, "lb1")["draining"] and drain(lab, "lb2")["forwarding"], 3,
             "lb1 to drain and lb2 to forward", poll=0.02)
    lb1_link_local = lab.node("lb1").link_local()
    assert drain(lab, "lb2")["forwarding"]["to"] == lb1_link_local
    assert f"{VIP6}/128" in lab.node("lb1").ns.run(["ip", "-6", "addr", "show", "dev",
                                                    "lo"]).stdout
    rules = lab.node("lb2").ns.run(["nft", "list", "table", "inet", "vrrpd_drain"]).stdout
    # the download's packets (ACKs without SYN, unknown to lb2) are marked: forwarded to lb1
    assert f"ip6 daddr {VIP6} tcp flags ack / syn,ack ct state new" in rules, rules
    marked = re.search(rf"ip6 daddr {VIP6} ct mark .* counter packets (\d+)", rules)
    assert marked and int(marked[1]) > 0, rules
    route = lab.node("lb2").ns.run(["ip", "-6", "route", "show", "table", "30322"]).stdout
    assert f"{VIP6} via {lb1_link_local}" in route, route
    for _ in range(5):  # new connections (SYNs) land on the new master
        assert http_request(client, VIP6).getheader("X-Remote-Addr") == "192.0.2.12"
    # lb1 answers no neighbour solicitation for the VIP it keeps on lo: the client's entry,
    # re-learnt now, is lb2's MAC
    client.ns.run(["ip", "-6", "neigh", "flush", "dev", client.ifname])
    http_request(client, VIP6)
    neigh = client.ns.run(["ip", "-6", "neigh", "show", VIP6]).stdout
    assert lab.node("lb2").ns.run(["cat", f"/sys/class/net/{lab.node('lb2').ifname}/address"]
                                  ).stdout.strip() in neigh, neigh
    assert drain(lab, "lb1")["draining"]["sessions"] >= 1  # the download
    result = download.wait(30)
    assert result.complete and not result.reset, (result.as_dict(), lab.logs())
    ended = result.ended or 0
    wait_for(lambda: not drain(lab, "lb1")["draining"] and not drain(lab, "lb2")["forwarding"],
             3, "the drain to end", poll=0.02)
    assert time.monotonic() - ended < 1.5, "the drain outlived the last session by > 1 s"
    assert VIP6 not in lab.node("lb1").ns.run(["ip", "-6", "addr", "show", "dev", "lo"]).stdout
    assert lab.node("lb2").ns.run(["nft", "list", "table", "inet", "vrrpd_drain"],
                                  check=False).returncode != 0
    assert "lookup 30322" not in lab.node("lb2").ns.run(["ip", "-6", "rule"]).stdout
    assert lab.holders() == ["lb1"]  # the IPv4 instance never moved
