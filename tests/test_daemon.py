"""Two whole daemons in one event loop on an in-memory link (kernel fakes), real control socket.

The lab tests prove the same against the kernel; these run in a second each and cover the
runtime's own logic: reconcile, resign on shutdown, make-before-break demote, hitless reload,
metrics, and the control socket's handling of bad clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import VIP, Node, ctl, until, write_config

from vrrpd.cli.render import render_status
from vrrpd.daemon.runtime import Daemon
from vrrpd.kernel.fakes import FakeInterfaceWatcher, FakeLink
from vrrpd.proto.events import State
from vrrpd.proto.packet import decode


@pytest.mark.parametrize("scenario", ["elect", "shutdown", "demote", "reload", "control",
                                      "metrics", "wire"])
def test_daemon_pair(tmp_path: Path, scenario: str) -> None:
    async def main() -> None:
        link = FakeLink()
        log: list[tuple[str, str]] = []
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150, log)
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100, log)
        # A VIP left behind by a crashed earlier run is removed at startup (reconcile).
        lb1.addresses.addresses["lo"].add(ip_interface(VIP))
        await lb1.start()
        assert not lb1.holds()
        await lb2.start()
        # The state changes at once; the VIPs follow on the driver's action worker.
        await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP
                    and lb1.holds())
        assert not lb2.holds()
        try:
            async with asyncio.timeout(30):  # a hang fails here, with the daemons still stopped
                await SCENARIOS[scenario](lb1, lb2, link, log)
        finally:
            for n in (lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())


async def _elect(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    # lb2 is BACKUP from its start; wait until it has heard lb1 as master at least once.
    await until(lambda: lb2.daemon.drivers["web"].counters["adverts_received"] > 0)
    status = (await ctl(lb2, "status"))["result"]["instances"][0]
    assert status["state"] == "BACKUP" and status["master"] == "192.0.2.11"
    assert status["counters"]["adverts_received"] > 0 and status["dropped"] == {}


async def _shutdown(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    """RFC 5798 §6.4.3: a stopping master sends exactly one priority-0 advert, then its VIPs go."""
    before = len(link.sent)
    await lb1.daemon.stop()
    zero = [p for src, dst, p in link.sent[before:]
            if src == lb1.address and decode(p, src, dst).priority == 0]
    assert len(zero) == 1
    assert not lb1.holds()
    await until(lambda: lb2.holds())


async def _demote(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    """Make-before-break: lb2 adds the VIP before lb1 removes it; lb1 stays BACKUP."""
    log.clear()
    reply = await ctl(lb1, "demote", instance="web")
    assert reply["ok"], reply
    await until(lambda: ("lb1", "remove") in log)  # queued on lb1's action worker
    assert log.index(("lb2", "add")) < log.index(("lb1", "remove"))
    assert lb1.state() is State.BACKUP and lb2.holds() and not lb1.holds()
    await asyncio.sleep(0.5)  # ten intervals: no preempting back
    assert lb1.state() is State.BACKUP
    assert json.loads((lb1.daemon.config.state_dir / "admin.json").read_text()) == {
        "instances": {"web": "demoted"}}
    await ctl(lb1, "resume", instance="web")
    await until(lambda: lb1.holds() and not lb2.holds())


async def _wire(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    """Adverts are encoded once and sent without the action worker when nothing waits in
    it; still, a new master's first advert leaves only once it holds the VIP (make-before-
    break), and a reload that changes the priority changes the bytes on the wire."""
    transmit = link.transmit

    def logged(sender: Any, payload: bytes, dst: Any, src: Any = None) -> None:
        source = src or sender.primary_address
        log.append((str(source), f"advert {decode(payload, source, dst).priority}"))
        transmit(sender, payload, dst, src)

    link.transmit = logged  # type: ignore[method-assign]
    log.clear()
    assert (await ctl(lb1, "demote", instance="web"))["ok"]
    await until(lambda: ("lb1", "remove") in log)
    assert log.index(("lb2", "add")) < log.index(("192.0.2.12", "advert 100"))
    write_config(lb2.path.parent, "lb2", 120)
    assert (await ctl(lb2, "reload"))["ok"]
    await until(lambda: ("192.0.2.12", "advert 120") in log)
    assert lb2.state() is State.MASTER


async def _reload(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    """A reload that adds a VIP keeps the master master and never removes the old VIP."""
    transitions = lb1.daemon.drivers["web"].counters["transitions"]
    log.clear()
    write_config(lb1.path.parent, "lb1", 150, vips=[VIP, "192.0.2.101/24"])
    result = (await ctl(lb1, "reload"))["result"]
    assert result["updated"] == ["web"]
    assert ip_interface("192.0.2.101/24") in lb1.addresses.addresses["lo"] and lb1.holds()
    assert ("lb1", "remove") not in log
    assert lb1.daemon.drivers["web"].counters["transitions"] == transitions
    # A broken file is refused with its error; the running configuration stays.
    lb1.path.write_text(lb1.path.read_text().replace("vrid: 51", "vrid: 300"))
    reply = await ctl(lb1, "reload")
    assert not reply["ok"] and "vrid: 300 is outside 1..255" in reply["error"]
    assert lb1.state() is State.MASTER and lb1.holds()


async def _control(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    """Bad clients get an error or a closed connection; the daemon carries on."""
    path = str(lb1.daemon.config.control_socket)
    for raw in (b"not json\n", b'{"v": 1, "cmd": "nope"}\n', b"[1]\n", b"x" * 70000 + b"\n"):
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(raw)
        reply = await reader.readline()
        writer.close()
        assert reply == b"" or not json.loads(reply)["ok"]
    _idle_reader, idle = await asyncio.open_unix_connection(path)  # says nothing at all
    assert (await ctl(lb1, "status", instance="nope"))["error"].startswith("unknown instance")
    assert {c["name"] for c in (await ctl(lb1, "help"))["result"]["commands"]} >= {
        "status", "demote", "promote", "resume", "maintenance", "reload", "events"}
    events = (await ctl(lb1, "events"))["result"]["events"]
    assert any(e["type"] == "transition" and e["new"] == "MASTER" for e in events)
    idle.close()
    assert lb1.state() is State.MASTER


async def _metrics(lb1: Node, lb2: Node, link: FakeLink, log: list) -> None:
    """The Prometheus endpoint reports state, priority and advert counters per instance."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await lb1.daemon.stop()
    write_config(lb1.path.parent, "lb1", 150, top={"metrics": {"listen": f"127.0.0.1:{port}"}})
    await lb1.start()
    await until(lambda: lb1.state() is State.MASTER)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    assert body.startswith("HTTP/1.1 200 OK")
    assert 'vrrpd_instance_state{state="MASTER",vrrp_instance="web"} 1.0' in body
    assert 'vrrpd_instance_effective_priority{vrrp_instance="web"} 150.0' in body
    assert "vrrpd_adverts_sent_total" in body


def test_instance_waits_in_fault_until_its_interface_is_usable(tmp_path: Path) -> None:
    """Started without a source address, the instance is in FAULT with the reason in its
    status, joins when the interface becomes usable, and goes back to FAULT (releasing the VIP)
    when it stops being usable: no restart."""
    no_address = "lo has no IPv4 address to send VRRP adverts from"

    async def main() -> None:
        lb1 = Node(FakeLink(), tmp_path, "lb1", "192.0.2.11", 150)
        interfaces = lb1.links = FakeInterfaceWatcher({("lo", 4): no_address})
        daemon = await lb1.start()
        try:
            doc = (await ctl(lb1, "status"))["result"]["instances"][0]
            assert (doc["state"], doc["faults"], doc["interface_problem"]) == (
                "FAULT", ["link:lo"], no_address)
            assert f"web: waiting for lo: {no_address}" in render_status(
                (await ctl(lb1, "status"))["result"])
            assert daemon.status()["endpoints"][0]["primary_address"] is None
            interfaces.set("lo", 4, None)
            await until(lambda: lb1.state() is State.MASTER and lb1.holds())
            doc = (await ctl(lb1, "status"))["result"]["instances"][0]
            assert (doc["faults"], doc["interface_problem"]) == ([], None)
            assert doc["master"] == "192.0.2.11"  # the source address, now known
            interfaces.set("lo", 4, "lo has no carrier (cable, switch port or peer link down)")
            await until(lambda: lb1.state() is State.FAULT and not lb1.holds())
        finally:
            await daemon.stop()

    asyncio.run(main())


SCENARIOS = {"elect": _elect, "shutdown": _shutdown, "demote": _demote, "reload": _reload,
             "control": _control, "metrics": _metrics, "wire": _wire}


def test_systemd_notify_ready_status_and_watchdog(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """sd_notify(3): READY=1 with a STATUS line once started, then WATCHDOG=1 pings."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")

    async def main() -> list[str]:
        node = Node(FakeLink(), tmp_path, "lb1", "192.0.2.11", 150, [])
        daemon = await node.start()
        await until(lambda: node.state() is State.MASTER)
        await asyncio.sleep(0.25)
        await daemon.stop()
        messages = []
        notify.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(notify.recv(4096).decode())
        return messages

    messages = asyncio.run(main())
    assert any(m.startswith("READY=1\nSTATUS=") for m in messages), messages
    assert "WATCHDOG=1" in messages
    assert "STATUS=MASTER for web" in messages
    assert any(m.startswith("STOPPING=1") for m in messages)


def test_json_log_lines_carry_the_instance_context() -> None:
    from vrrpd.daemon.logs import InstanceLog, JsonFormatter

    records: list[logging.LogRecord] = []
    logger = logging.getLogger("vrrpd.test-json")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    InstanceLog(logger, instance="web", interface="eth0", vrid=51, version=3).warning("boom")
    doc = json.loads(JsonFormatter().format(records[0]))
    assert doc["msg"] == "[eth0 vrid=51 v3 web] boom"
    assert (doc["instance"], doc["interface"], doc["vrid"], doc["level"]) == (
        "web", "eth0", 51, "warning")


@pytest.mark.parametrize("strict", [False, True], ids=["peers", "strict_peers"])
def test_rogue_router_reported_or_refused(tmp_path: Path, strict: bool) -> None:
    """Issue 12: lb1 and lb2 list each other in ``peers``; a rogue router (a daemon on the same
    link with priority 254, not listed) starts.  Without ``strict_peers`` lb1 obeys it (RFC 5798
    §6.4.3) and it shows: a "foreign master" transition reason passed to the notify hook,
    ``foreign_adverts`` and ``foreign_masters`` counters, ``foreign_master`` in status and the
    Prometheus metrics.  With ``strict_peers`` its adverts are dropped on receipt under
    ``unknown_peer`` and nothing moves."""
    async def main() -> None:
        link = FakeLink()
        log: list[tuple[str, str]] = []
        hook = tmp_path / "notify.sh"
        reasons = tmp_path / "reasons"
        hook.write_text(f'#!/bin/sh\necho "$3 $VRRPD_REASON" >> {reasons}\n')
        hook.chmod(0o755)
        nodes = []
        for name, address, prio, peer in (("lb1", "192.0.2.11", 150, "192.0.2.12"),
                                          ("lb2", "192.0.2.12", 100, "192.0.2.11")):
            node = Node(link, tmp_path, name, address, prio, log)
            # 0.2 s adverts: a loaded CI machine must not make the pair flap on its own
            write_config(tmp_path, name, prio, peers=[peer], strict_peers=strict,
                         notify=str(hook), advert_interval=0.2)
            nodes.append(node)
        lb1, lb2 = nodes
        rogue = Node(link, tmp_path, "rogue", "192.0.2.66", 254, log)
        try:
            await lb1.start()
            await lb2.start()
            await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP)
            before = [n.daemon.drivers["web"].counters["transitions"] for n in nodes]
            await rogue.start()
            if strict:
                await asyncio.sleep(0.5)  # ten of the rogue's intervals
                for n in (lb1, lb2):
                    drops = n.daemon.drivers["web"].drops
                    assert drops["unknown_peer"] >= 5, drops
                    assert n.daemon.drivers["web"].counters["foreign_adverts"] == 0
                assert lb1.state() is State.MASTER and lb2.state() is State.BACKUP
                assert [n.daemon.drivers["web"].counters["transitions"] for n in nodes] == before
                return
            await until(lambda: lb1.state() is State.BACKUP)
            status = (await ctl(lb1, "status"))["result"]["instances"][0]
            assert status["master"] == "192.0.2.66" and status["foreign_master"]
            assert status["counters"]["foreign_adverts"] >= 1
            assert status["counters"]["foreign_masters"] == 1
            assert status["transitions"][-1]["reason"].startswith(
                "192.0.2.66 (foreign master, not in peers) is master with higher priority")
            body = "\n".join(line for line in _scrape(lb1.daemon).splitlines()
                             if line.startswith("vrrpd_foreign"))
            assert 'vrrpd_foreign_master{vrrp_instance="web"} 1.0' in body
            assert 'vrrpd_foreign_adverts_total{vrrp_instance="web"}' in body
            await until(lambda: reasons.exists()
                        and "BACKUP 192.0.2.66 (foreign master" in reasons.read_text())
        finally:
            for n in (rogue, lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())


def _scrape(daemon: Daemon) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from vrrpd.daemon.metrics import StatusCollector

    registry = CollectorRegistry()
    registry.register(StatusCollector(daemon.status))
    return generate_latest(registry).decode()
