"""End to end, the transparent variant (issue 17; :class:`lab.tproxy.TransparentLab`): the PACS
sees the client's own address, before and after every failover, and the two VIPs never split.

lb1 and lb2 run the reference etc/haproxy/haproxy.cfg with ``PACS_TRANSPARENT=1`` (``source
0.0.0.0 usesrc clientip``) and etc/vrrpd/lbN-tproxy.yaml (client VIP and gateway VIP in one
sync group, the gateway with ``tproxy: {}``); pacs1/pacs2 sit on their own network with the
gateway VIP as default route and log every request with the address it came from.

Before and after each failover -- HAProxy SIGKILL on the master, ``vrrpctl demote``, the
master's client-side cable pulled, the master's server-side cable pulled -- a web GET, a DICOM
C-ECHO (104) and a C-FIND (105) through the client VIP succeed, the PACS logs each with the
client's address 192.0.2.50 (never a load balancer's) and answers it back (``X-Remote-Addr``,
C-FIND InstitutionAddress).  During each failover both nodes' addresses are sampled every
few ms: the client VIP is never on one node while the gateway VIP is only on the other for
longer than a takeover's few milliseconds (lab.tproxy.SplitWatch, SPLIT_LIMIT_MS), and at the
end both are on the new master.
Last, the control: with vrrpd's ``inet vrrpd_tproxy`` table deleted on the master, a new
connection through the VIP fails -- it is that table (and rule) that makes the replies reach
HAProxy.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator

import pytest

from lab.client import http_request
from lab.daemons import wait_for
from lab.dicom import echo, find
from lab.haproxy_pair import VIP, VIP_ADDR
from lab.tproxy import GATEWAY_VIP, SPLIT_LIMIT_MS, SplitWatch, TransparentLab

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

CLIENT = "192.0.2.50"
REQUESTS = {("http", "GET"), ("dicom:104", "C-ECHO"), ("dicom:105", "C-FIND")}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransparentLab]:
    with TransparentLab(tmp_path_factory.mktemp("tproxy")) as lab:
        yield lab


def web(lab: TransparentLab, timeout: float = 2) -> str:
    """GET / through the client VIP from the client: the address the PACS answers it saw."""
    return http_request(lab.node("client"), VIP_ADDR, "GET",
                        timeout=timeout).getheader("X-Remote-Addr", "")


def dicom(lab: TransparentLab) -> str:
    """C-ECHO on 104 and C-FIND on 105 through the client VIP (retried within 3 s, as a
    modality would); the address the PACS put in the C-FIND answer."""
    seen: list[str] = []

    def ok() -> bool:
        with lab.node("client").ns.entered():
            address = echo(VIP_ADDR, 104) and find(VIP_ADDR, 105, key="InstitutionAddress")
        if address:
            seen.append(address)
        return bool(address)

    wait_for(ok, 3, "C-ECHO 104 and C-FIND 105 through the client VIP", poll=0.05)
    return seen[-1]


def check_round(lab: TransparentLab, what: str) -> None:
    """Web and DICOM through the VIP; each logged by the PACS with the client's address."""
    before = lab.seen()
    assert web(lab) == CLIENT, what
    assert dicom(lab) == CLIENT, what
    new = lab.seen_after(before)
    requests = [s for s in new if s.detail.split()[0] in {kind for _, kind in REQUESTS}]
    assert {(s.service, s.detail.split()[0]) for s in requests} >= REQUESTS, (what, new)
    assert {s.address for s in requests} == {CLIENT}, (what, requests)


def both_on(lab: TransparentLab, node: str) -> bool:
    return lab.holders(VIP) == [node] and lab.holders(GATEWAY_VIP) == [node]


def failover(lab: TransparentLab, what: str, action: Callable[[], None], to: str) -> None:
    """Run ``action`` while sampling both nodes' VIPs; both VIPs end on ``to``, never split."""
    with SplitWatch(lab) as watch:
        action()
        wait_for(lambda: both_on(lab, to), 10, f"{to} to hold both VIPs after {what}",
                 poll=0.005)
        time.sleep(0.3)  # and a little longer: a late split would show here
    assert watch.samples, what
    assert watch.longest_split_ms() < SPLIT_LIMIT_MS, (what, watch.splits()[:5])
    check_round(lab, f"after {what}")


def test_pacs_sees_the_client_across_failovers_and_the_vips_never_split(
        lab: TransparentLab) -> None:
    assert lab.lab is not None
    topo = lab.lab
    assert both_on(lab, "lb1")
    check_round(lab, "before any failover")

    # (a) HAProxy dies on the master: both instances track it (weight 0: FAULT)
    failover(lab, "HAProxy SIGKILL on lb1", lab.haproxy["lb1"].kill, "lb2")
    lab.restart_haproxy("lb1")
    lab.vrrpd["lb1"].wait_state("gateway", "BACKUP")

    # (b) planned hand-over of the client-side instance only: the sync group takes the
    # gateway along
    failover(lab, "vrrpctl demote pacs on lb2",
             lambda: lab.vrrpd["lb2"].ctl("demote", instance="pacs"), "lb1")
    lab.vrrpd["lb2"].ctl("resume", instance="pacs")
    lab.vrrpd["lb2"].wait_state("pacs", "BACKUP")

    # (c) lb1's client-side cable pulled: its pacs instance is in FAULT, the group puts the
    # gateway in FAULT too; back, lb1 waits preempt_delay (60 s) as BACKUP
    failover(lab, "lb1's client-side cable (eth1) pulled",
             lambda: topo.set_link("lb1", False, "eth1"), "lb2")
    topo.set_link("lb1", True, "eth1")
    lab.vrrpd["lb1"].wait_state("pacs", "BACKUP")
    lab.vrrpd["lb1"].wait_state("gateway", "BACKUP")

    # (d) lb2's server-side cable pulled: the gateway faults, and takes the client VIP along
    failover(lab, "lb2's server-side cable (eth2) pulled",
             lambda: topo.set_link("lb2", False, "eth2"), "lb1")
    topo.set_link("lb2", True, "eth2")
    lab.vrrpd["lb2"].wait_state("gateway", "BACKUP")
    lab.vrrpd["lb2"].wait_state("pacs", "BACKUP")
    check_round(lab, "after lb2's cable is back")

    # the control: without vrrpd's table on the master, the PACS's replies are routed on to
    # the client instead of reaching HAProxy, and a new connection fails
    lab.node("lb1").ns.run("nft delete table inet vrrpd_tproxy")
    with pytest.raises(OSError):
        web(lab, timeout=1)
