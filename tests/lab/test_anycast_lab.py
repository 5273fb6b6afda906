"""The anycast fleet for real (issue 18): FRR bgpd + bfdd + zebra on a router and three LB
nodes, real HAProxy, vrrpd anycast groups, the PACS stand-ins and a client behind the router
(:mod:`lab.anycast`).  One lab for the module; each test leaves all three nodes announced.

The figures (outage for new connections, BFD detection, drain, flow spread) are measured by
benchmarks/anycast.py; these tests check the behaviour and print what they saw.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from lab.anycast import LBS, SERVICE, AnycastLab
from lab.client import http_request
from lab.daemons import wait_for
from lab.dicom import DicomProber, answers

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None
                                or shutil.which("vtysh") is None,
                                reason="needs haproxy and FRR")
ALL = set(LBS)
# seconds a probe waits for its connection and again for the answer: longer than TCP's first
# SYN retransmission (1 s), as a browser or modality waits; the host's cores are shared, and
# one lost SYN is a slow request, not a failed one (benchmarks/anycast.py measures latency)
PROBE_TIMEOUT = 1.5
STARVED = 0.2  # seconds without a request from the 10 ms prober: it was not running
LATE_FAILURES = 0.02  # share of requests after the router settled that may fail (check())
RISE_S = 0.4  # etc/vrrpd/anycast-lb1.yaml: haproxy tracker rise 5 x interval 0.1 s, first at 0
STRANDED = 16  # etc/haproxy/haproxy-anycast.cfg: clitcpka-idle + intvl x cnt, and tcp-ut


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnycastLab]:
    with AnycastLab(tmp_path_factory.mktemp("anycast")) as lab:
        yield lab


def web(lab: AnycastLab) -> str:
    """HEAD / to the service from the client: the PACS server that answered."""
    return http_request(lab.node("client"), SERVICE).getheader("X-Backend", "")


def dicom(lab: AnycastLab) -> dict[int, str]:
    """C-ECHO on 104, C-FIND on 105 and 204 through the service address."""
    return answers(lab.node("client"), SERVICE)


class Event:
    """Web and DICOM probes around one event; :meth:`check` asserts what the client saw."""

    def __init__(self, lab: AnycastLab) -> None:
        self.lab = lab
        self.backend = web(lab)
        self.finds = dicom(lab)
        for name in LBS:
            wait_for(lambda name=name: "server_key=" in lab.haproxy[name].stats(
                "show table web"), 3, f"{name} to learn the client's stick entry", poll=0.05)
        self.dicom = DicomProber(lab.node("client"), SERVICE, interval=0.05, timeout=0.5)

    def __enter__(self) -> Event:
        self.monitor = self.lab.node("router").ns.popen(
            ["ip", "-ts", "monitor", "route"], stdout=subprocess.PIPE, text=True)
        self.web = self.lab.client(interval=0.01, timeout=PROBE_TIMEOUT)
        self.prober = self.web.__enter__()
        self.dicom.start()
        time.sleep(0.3)
        self.fault = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.dicom.stop()
        self.web.__exit__(*exc)
        self.monitor.kill()
        self.monitor.wait()

    def routes(self) -> str:
        """What the router's kernel route table did so far (``ip monitor``), for a report."""
        self.monitor.kill()
        out, _ = self.monitor.communicate()
        return str(out)

    def check(self, what: str, settled: float) -> None:
        """The requests sent after ``settled`` (monotonic: the router's new ECMP set is in
        the kernel) succeeded (but :data:`LATE_FAILURES`), all were answered by the client's
        PACS server (persistence through the stick tables replicated to all nodes); C-FIND
        still reaches the same server.  Requests in flight on a node when the router moved
        its flows may fail: the other nodes answer their next packets with a reset
        (README.md, "Scaling out")."""
        time.sleep(PROBE_TIMEOUT + 0.5)  # every request sent so far has its answer
        web_samples = self.prober.samples()
        echoes = self.dicom.samples()
        failed = [s for s in web_samples if s.sent > self.fault and not s.ok]
        late = [s for s in web_samples + echoes if s.sent > settled + 0.05 and not s.ok]
        spread = Counter(s.lb for s in web_samples if s.ok and s.sent > settled)
        print(f"{what}: {len(failed)} failed web request(s) in "
              f"{(failed[-1].sent - self.fault) * 1000 if failed else 0:.0f} ms after the "
              f"fault, {sum(not s.ok for s in echoes)} failed C-ECHO; the router settled "
              f"after {(settled - self.fault) * 1000:.0f} ms; since then served by "
              f"{dict(spread)}")
        after = [s for s in web_samples + echoes if s.sent > settled + 0.05]
        if late:
            print(f"{what}: {len(late)} of {len(after)} requests sent after the router "
                  f"settled failed: {late[:5]}")
        # strict would be `not late`; on this shared 2-core host (load average 10-30 while
        # other work runs) an isolated slow or 503 answer happens (benchmarks/anycast.py
        # counts them: 0 in its committed runs), a routing fault fails a run of requests.
        # A prober that was itself starved (sends 10 ms apart, a gap of more than
        # STARVED s) sent a burst that its own starvation times out: it measured nothing.
        sent = sorted(s.sent for s in web_samples if s.sent > settled)
        stall = max((b - a for a, b in itertools.pairwise(sent)), default=0.0)
        if stall > STARVED:
            print(f"{what}: the client prober stalled {stall * 1000:.0f} ms (host "
                  f"overloaded, load average {os.getloadavg()[0]:.0f}): not judged")
            late = []
        assert len(late) <= LATE_FAILURES * len(after), (
            f"{what}: new connections failed after the router settled ({settled:.3f}, "
            f"{time.time() - time.monotonic() + settled:.3f} wall): {late[:5]}\n"
            f"{self.routes()}\n{self.lab.logs()}")
        assert {s.backend for s in web_samples if s.ok} == {self.backend}, \
            f"{what}: web persistence broken"
        assert web(self.lab) == self.backend
        assert dicom(self.lab) == self.finds, f"C-FIND answered by another server: {what}"


def test_all_three_nodes_announce_and_the_router_spreads_flows(lab: AnycastLab) -> None:
    assert lab.ecmp() == ALL
    route = lab.node("router").ns.run(["ip", "route", "show", f"{SERVICE}/32"]).stdout
    assert route.count("nexthop via") == 3, route
    want = {"router": "192.0.2.1", "session": "Established", "bfd": "Up",
            "advertised": [f"{SERVICE}/32"]}
    for name in LBS:  # the status polls the speaker every second
        wait_for(lambda name=name: lab.status(name)["peers"] == [want], 5,
                 f"{name}'s status to show the router's session, BFD and what it was sent",
                 poll=0.1)
        status = lab.status(name)
        assert status["state"] == "announced" and status["med"] == 0, status
    text = lab.vrrpd["lb1"].ctl("status")
    assert text["bgp"]["peers"][0]["state"] == "Established"
    backend = web(lab)  # the stick entry, replicated to every node before the spread
    for name in LBS:
        wait_for(lambda name=name: "server_key=" in lab.haproxy[name].stats("show table web"),
                 3, f"{name} to learn the client's stick entry (peers pacs)", poll=0.05)
    with lab.client(timeout=PROBE_TIMEOUT) as prober:
        time.sleep(1 + PROBE_TIMEOUT)
        samples = [s for s in prober.samples() if s.sent < time.monotonic() - PROBE_TIMEOUT]
    spread = Counter(s.lb for s in samples if s.ok)
    print(f"one client, {len(samples)} connections: {dict(spread)}")
    assert set(spread) == ALL and all(s.ok for s in samples), samples
    assert {s.backend for s in samples if s.ok} == {backend}  # stick on src, on every node


def test_haproxy_kill_withdraws_and_the_node_returns_after_its_rise_count(
        lab: AnycastLab) -> None:
    with Event(lab) as event:
        lab.kill_haproxy("lb2")
        took = lab.wait_ecmp(ALL - {"lb2"}, 5)
        event.check("HAProxy SIGKILL on lb2", event.fault + took)
    assert lab.status("lb2")["state"] == "withdrawn"
    restart = time.monotonic()
    lab.haproxy["lb2"].start()
    lab.wait_ecmp(ALL, 10)
    back = time.monotonic() - restart
    print(f"lb2 back in the ECMP set {back * 1000:.0f} ms after HAProxy started")
    assert back >= RISE_S, "announced before the tracker's rise count"


def test_a_weighted_tracker_de_prefers_by_med(lab: AnycastLab) -> None:
    """lb2's HAProxy sees no web server UP (both disabled on its stats socket): its monitor
    answers 503, the weighted `http` tracker (-100) fails, vrrpd raises the MED to 100 and
    the router keeps lb2's path but takes it out of the ECMP set; enabled again, it returns."""
    servers = ("web/pacs1", "web/pacs2")
    for server in servers:
        lab.haproxy["lb2"].stats(f"disable server {server}")
    try:
        lab.wait_ecmp(ALL - {"lb2"}, 10)
        status = lab.status("lb2")
        assert (status["state"], status["med"]) == ("de-preferred", 100), status
        paths = lab.frr["router"].vty("bgpd", f"show bgp ipv4 unicast {SERVICE}/32")
        assert "from lb2(192.0.2.12)" in paths and "metric 100" in paths, paths
    finally:
        for server in servers:
            lab.haproxy["lb2"].stats(f"enable server {server}")
    lab.wait_ecmp(ALL, 15)
    assert lab.status("lb2")["med"] == 0


def test_a_node_cut_off_leaves_the_ecmp_set_by_bfd(lab: AnycastLab) -> None:
    with Event(lab) as event:
        lab.cut("lb3")
        took = lab.wait_ecmp(ALL - {"lb3"}, 5)
        event.check("lb3's cable pulled", event.fault + took)
    # BFD, not the BGP hold time (9 s), took it out: the router's BFD session is down
    assert took < 3, took
    log = lab.frr["router"].log("bgpd")
    assert any("192.0.2.13" in line and "BFD Down" in line for line in log.splitlines()), \
        log[-3000:]
    lab.cut("lb3", off=False)
    lab.wait_ecmp(ALL, 20)


def stranded_on(lab: AnycastLab, node: str) -> socket.socket:
    """An idle TCP connection from the client to the service's DICOM port that the router
    hashed to ``node``: when ``node`` leaves the ECMP set it is stranded there."""
    others: list[socket.socket] = []
    try:
        for _ in range(40):
            with lab.node("client").ns.entered():
                sock = socket.create_connection((SERVICE, 104), timeout=2)
            source = "source={}:{}\n".format(*sock.getsockname())
            try:
                wait_for(lambda source=source: any(
                    source in lab.haproxy[name].stats("show sess all") for name in LBS),
                    2, f"HAProxy's session {source}", poll=0.05)
            except AssertionError:
                others.append(sock)
                continue
            if source in lab.haproxy[node].stats("show sess all"):
                return sock
            others.append(sock)
        raise AssertionError(f"none of 40 connections was hashed to {node}")
    finally:
        for other in others:
            other.close()


def test_drain_moves_new_flows_off_before_withdrawal(lab: AnycastLab) -> None:
    """New flows go to the other nodes at once; the drain waits for lb1's sessions, among
    them an idle connection the router's rehash stranded on lb1, which HAProxy's keepalive
    ends (etc/haproxy/haproxy-anycast.cfg) long before its `timeout client` (1 h)."""
    result: dict[str, Any] = {}
    stranded = stranded_on(lab, "lb1")
    with stranded, Event(lab) as event:
        drain = threading.Thread(target=lambda: result.update(
            lab.vrrpd["lb1"].ctl("demote")))
        drain.start()
        took = lab.wait_ecmp(ALL - {"lb1"}, 5)
        # de-preferred, not yet withdrawn: the router still has lb1's path, with the top MED
        paths = lab.frr["router"].vty("bgpd", f"show bgp ipv4 unicast {SERVICE}/32")
        assert drain.is_alive()  # sessions must stay at 0 for a second first
        # a probe's connection in flight on lb1 when the router moved its flows is stranded
        # there until the keepalive or tcp-ut of etc/haproxy/haproxy-anycast.cfg ends it
        drain.join(STRANDED + 10)
        assert not drain.is_alive(), "lb1's drain still waits; its HAProxy holds:\n" + \
            lab.haproxy["lb1"].stats("show sess")
        event.check("vrrpctl demote on lb1", event.fault + took)
    print(f"drain: {result}")
    assert "from lb1(192.0.2.11)" in paths and "metric 4294967295" in paths, paths
    assert result["drained"]["pacs"]["result"] == "sessions reached 0", result
    # held up by the stranded connection, and not much longer than its keepalive
    assert 10 < result["drained"]["pacs"]["seconds"] < STRANDED + 3, result
    wait_for(lambda: "from lb1(192.0.2.11)" not in lab.frr["router"].vty(
        "bgpd", f"show bgp ipv4 unicast {SERVICE}/32"), 5, "lb1's path withdrawn", poll=0.05)
    assert lab.status("lb1")["state"] == "withdrawn"
    lab.vrrpd["lb1"].ctl("resume")
    lab.wait_ecmp(ALL, 5)


def test_restart_withdraws_at_stop_and_reconciles_at_start(lab: AnycastLab) -> None:
    """vrrpd's stop withdraws; a SIGKILLed run's announcement stays in bgpd, and the next
    start withdraws it (startup reconcile) before the trackers announce again."""
    lab.vrrpd["lb3"].stop()
    lab.wait_ecmp(ALL - {"lb3"}, 5)
    lab.vrrpd["lb3"].start()
    lab.wait_ecmp(ALL, 10)
    lab.vrrpd["lb3"].stop(signal.SIGKILL)
    time.sleep(0.5)
    assert lab.ecmp() == ALL  # nobody withdrew: bgpd still announces
    lab.vrrpd["lb3"].start()
    wait_for(lambda: "startup reconcile" in lab.vrrpd["lb3"].log(), 5, "the reconcile")
    lab.wait_ecmp(ALL, 10)
