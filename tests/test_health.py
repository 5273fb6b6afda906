"""Health verdicts (:mod:`vrrpd.control.health`) and ``vrrpctl`` exit codes per state.

The verdict table: each row is a status document changed one way from a healthy master, and
the monitoring-plugin code that must come out.  Then ``vrrpctl status`` / ``check`` against a
stand-in control socket answering with those documents, and with nobody listening (UNKNOWN).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from status_docs import IN_SYNC, NOW, doc, heard, instance, sync

from vrrpd import __version__
from vrrpd.cli.vrrpctl import main
from vrrpd.control.health import assess

VERDICTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("master", doc(config_sync=IN_SYNC), "OK", "lb1: pacs MASTER (priority 150, VIPs held)"),
    ("backup hearing the master",
     doc(instance(state="BACKUP", vips_held=False, priority=100, effective_priority=100,
                  last_master_advert=heard(0.1, "192.0.2.11", 150))),
     "OK", "lb1: pacs BACKUP (priority 100)"),
    ("fault", doc(instance(state="FAULT", faults=["track:haproxy"], vips_held=False,
                           last_master_advert=heard(0.05))),
     "CRITICAL", "pacs FAULT (track:haproxy)"),
    ("fault and nobody master", doc(instance(state="FAULT", faults=["link"], vips_held=False,
                                             last_master_advert=heard(30))),
     "CRITICAL", "pacs no VIP holder heard (FAULT here, no master's advert for 30s)"),
    ("maintenance, peer silent", doc(instance(state="BACKUP", admin="maintenance",
                                              vips_held=False)),
     "CRITICAL", "pacs no VIP holder heard (BACKUP here, no master's advert never)"),
    ("both master", doc(instance(last_master_advert=heard(0.1))),
     "CRITICAL", "pacs both nodes MASTER: 192.0.2.12 advertises priority 100 as master too"),
    ("just took over: the old master's last advert",
     doc(instance(since=NOW - 0.2, time_in_state=0.2, last_master_advert=heard(0.1))),
     "OK", "lb1: pacs MASTER"),
    ("weighted tracker failing",
     doc(instance(trackers=[{"name": "web", "weight": -60, "ok": False,
                             "detail": "HTTP 503"}])),
     "WARNING", "pacs tracker web failing (weight -60): HTTP 503"),
    ("foreign master", doc(instance(state="BACKUP", master="192.0.2.66", foreign_master=True,
                                    vips_held=False, last_master_advert=heard(0.1,
                                                                             "192.0.2.66"))),
     "WARNING", "pacs foreign master 192.0.2.66 (not in peers)"),
    ("demoted", doc(instance(state="BACKUP", admin="demoted", vips_held=False,
                             last_master_advert=heard(0.1))),
     "WARNING", "pacs operator mode demoted"),
    ("sync diverged", doc(config_sync=sync(local={"diverged": True})),
     "WARNING", "config sync: the files here were edited since the last sync (diverged)"),
    ("sync push failed", doc(config_sync=sync(last_push={"ok": False, "peer": "192.0.2.12:7000",
                                                  "error": "haproxy -c failed"})),
     "WARNING", "config sync: last push to 192.0.2.12:7000 failed: haproxy -c failed"),
    ("sync peer silent", doc(config_sync=sync(peers={"192.0.2.12:7000": {
        "sync": "unknown", "error": "connection refused"}})),
     "WARNING", "config sync: peer 192.0.2.12:7000 unknown: connection refused"),
    ("sync peer behind", doc(config_sync=sync(peers={"192.0.2.12:7000": {"sync": "ahead"}})),
     "WARNING", "config sync: peer 192.0.2.12:7000 ahead"),
    ("critical wins over warning", doc(instance(
        state="FAULT", faults=["track:haproxy"], vips_held=False, admin="demoted",
        last_master_advert=heard(0.1))), "CRITICAL", "pacs FAULT (track:haproxy); pacs "
     "operator mode demoted"),
]


@pytest.mark.parametrize(("status", "expected", "text"), [v[1:] for v in VERDICTS],
                         ids=[v[0] for v in VERDICTS])
def test_verdicts(status: dict[str, Any], expected: str, text: str) -> None:
    verdict = assess(status, now=NOW)
    assert verdict["status"] == expected, verdict
    assert text in verdict["summary"], verdict["summary"]
    assert verdict["code"] == {"OK": 0, "WARNING": 1, "CRITICAL": 2}[expected]


def test_perfdata() -> None:
    assert assess(doc(), now=NOW)["perfdata"] == "pacs_priority=150 pacs_master=1"


@pytest.fixture
def control(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], str]]:
    """A stand-in daemon: answers every request with the health-judged ``status`` doc."""
    path = str(tmp_path / "vrrpd.sock")
    answer: dict[str, Any] = {}
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                cmd = json.loads(conn.makefile("rb").readline())["cmd"]
                status = answer["doc"]
                verdict = assess(status, now=NOW)
                result = {**status, "health": verdict} if cmd == "status" else verdict
                conn.sendall(json.dumps({"ok": True, "result": result}).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def respond(status: dict[str, Any]) -> str:
        answer["doc"] = status
        return path

    yield respond
    server.close()


@pytest.mark.parametrize(("status", "expected", "text"), [v[1:] for v in VERDICTS],
                         ids=[v[0] for v in VERDICTS])
def test_exit_codes(control: Callable[[dict[str, Any]], str], status: dict[str, Any],
                    expected: str, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = control(status)
    code = {"OK": 0, "WARNING": 1, "CRITICAL": 2}[expected]
    assert main(["--socket", path, "check"]) == code
    line = capsys.readouterr().out
    assert line.startswith(f"VRRPD {expected} - lb1: ") and text in line
    assert line.count("\n") == 1  # one line for Nagios/Icinga
    assert main(["--socket", path, "status"]) == code
    assert f"health: {expected}" in capsys.readouterr().out


def test_unreachable_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "nobody.sock")
    assert main(["--socket", path, "check"]) == 3
    assert capsys.readouterr().out.startswith(f"VRRPD UNKNOWN - no control socket at {path}")
    assert main(["--socket", path, "status"]) == 3
    assert main(["--socket", path, "demote"]) == 1  # not a monitoring command


def test_version_needs_no_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--socket", "/nonexistent/vrrpd.sock", "--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"vrrpctl {__version__}"
