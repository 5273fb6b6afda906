"""The operator interface against a running pair (issue "Operator interface"), real HAProxy.

CLI checks run ``python -m vrrpd.cli.vrrpctl --socket ...`` as an operator would; the raw
socket checks talk to the control socket directly.  Who holds the VIP is read from the kernel.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import REPO, wait_for
from lab.haproxy_pair import HAProxyPair

INTERVAL = 0.1


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[HAProxyPair]:
    """lb1 (150) MASTER and lb2 (100) BACKUP, VRRPv3 at 0.1 s, HAProxy tracked on both."""
    p = HAProxyPair(tmp_path, interval=INTERVAL)
    with p:
        yield p
        print(p.logs())


def vrrpctl(sock: Path | str, *args: str,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket", str(sock),
                           *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def ok(sock: Path, *args: str) -> str:
    done = vrrpctl(sock, *args)
    assert done.returncode == 0, f"vrrpctl {' '.join(args)}: {done.stderr}"
    return done.stdout


def never_without_holder(pair: HAProxyPair, proc: subprocess.Popen[str],
                         after: float = 0.5) -> int:
    """Sample both nodes' VIP (about every ms) while ``proc`` runs and ``after`` seconds more;
    fail on any sample where nobody holds it.  Returns the number of samples."""
    samples = 0
    end: float | None = None
    while end is None or time.monotonic() < end:
        if end is None and proc.poll() is not None:
            end = time.monotonic() + after
        assert pair.holders(), f"nobody held the VIP at sample {samples}"
        samples += 1
        time.sleep(0.001)
    return samples


def test_status_text_and_json(pair: HAProxyPair) -> None:
    sock = pair.socket("lb1")
    text = ok(sock, "status")
    assert "web" in text and "MASTER" in text and "192.0.2.100/24 *" in text
    assert "tracker haproxy OK" in text
    doc = json.loads(ok(sock, "--json", "status", "web"))
    (web,) = doc["instances"]
    assert (web["state"], web["priority"], web["effective_priority"]) == ("MASTER", 150, 150)
    assert web["vips_held"] and web["advert_interval"] == INTERVAL
    assert [(t["name"], t["ok"]) for t in web["trackers"]] == [("haproxy", True)]
    peer = json.loads(ok(pair.socket("lb2"), "--json", "status"))["instances"][0]
    assert peer["state"] == "BACKUP" and peer["master"] == "192.0.2.11"


def test_demote_is_make_before_break_persists_and_resume(pair: HAProxyPair) -> None:
    sock = pair.socket("lb1")
    proc = subprocess.Popen([sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket", str(sock),
                             "demote", "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    samples = never_without_holder(pair, proc)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert samples > 50  # ~1 ms apart when idle, fewer on a busy machine
    assert pair.holders() == ["lb2"]
    time.sleep(10 * INTERVAL)  # lb1 (150) hears lb2 (100) but must not preempt back
    lb1 = pair.vrrpd["lb1"]
    assert lb1.state("web") == "BACKUP" and lb1.instance("web")["admin"] == "demoted"
    assert pair.holders() == ["lb2"]

    assert lb1.stop() == 0  # a BACKUP stops quietly
    lb1.start()
    time.sleep(10 * INTERVAL)
    assert lb1.instance("web")["admin"] == "demoted", "demote was not persisted"
    assert lb1.state("web") == "BACKUP" and pair.holders() == ["lb2"]

    ok(sock, "resume", "web")
    wait_for(lambda: pair.holders() == ["lb1"], 3, "lb1 to preempt back after resume")


def test_promote_then_maintenance(pair: HAProxyPair) -> None:
    lb1, lb2 = pair.socket("lb1"), pair.socket("lb2")
    ok(lb2, "promote", "web")
    wait_for(lambda: pair.holders() == ["lb2"], 3, "promoted lb2 to take the VIP")
    assert pair.vrrpd["lb2"].state("web") == "MASTER"
    ok(lb2, "resume", "web")
    wait_for(lambda: pair.holders() == ["lb1"], 3, "lb1 to preempt back after lb2's resume")

    result = json.loads(ok(lb1, "--json", "maintenance", "on"))
    assert result["maintenance"] is True and result["handed_over"] == ["web"]
    assert pair.holders() == ["lb2"]
    pair.vrrpd["lb2"].stop(signal.SIGKILL)  # the only other node dies
    end = time.monotonic() + 20 * INTERVAL
    while time.monotonic() < end:
        assert not pair.probe["lb1"].has("192.0.2.100/24"), "lb1 in maintenance took the VIP"
        time.sleep(0.005)
    assert pair.vrrpd["lb1"].state("web") == "BACKUP"
    ok(lb1, "maintenance", "off")
    wait_for(lambda: pair.probe["lb1"].has("192.0.2.100/24"), 3,
             "lb1 to become master after maintenance off")


def test_demote_without_a_peer_is_refused_unless_forced(pair: HAProxyPair) -> None:
    pair.vrrpd["lb2"].stop()
    time.sleep(5 * INTERVAL)
    sock = pair.socket("lb1")
    done = vrrpctl(sock, "demote", "web")
    assert done.returncode != 0
    assert "nobody took over web" in done.stderr and "--force" in done.stderr
    assert pair.vrrpd["lb1"].instance("web")["admin"] == "normal"
    assert pair.holders() == ["lb1"], "a refused demote must leave the master serving"
    ok(sock, "demote", "web", "--force")
    assert pair.vrrpd["lb1"].instance("web")["admin"] == "demoted"
    ok(sock, "resume", "web")
    wait_for(lambda: pair.holders() == ["lb1"], 3, "lb1 to serve again")


def test_clear_errors_for_unknown_instance_and_no_daemon(pair: HAProxyPair,
                                                         tmp_path: Path) -> None:
    done = vrrpctl(pair.socket("lb1"), "demote", "nosuch")
    assert done.returncode != 0
    assert "unknown instance 'nosuch'; configured: web" in done.stderr
    assert pair.holders() == ["lb1"]

    done = vrrpctl(tmp_path / "absent.sock", "status")
    assert done.returncode == 3 and "is vrrpd running?" in done.stderr  # UNKNOWN
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # the file stays, nobody listens: what a crashed daemon leaves
    done = vrrpctl(stale, "status")
    assert done.returncode == 3 and "not running (stale socket)" in done.stderr


def test_events_json_lines_and_follow(pair: HAProxyPair) -> None:
    sock = pair.socket("lb1")
    lines = [json.loads(line) for line in ok(sock, "events", "--json").splitlines()]
    assert any(e["type"] == "transition" and e["instance"] == "web" and e["new"] == "MASTER"
               for e in lines)
    assert any(e["type"] == "tracker" and e["tracker"] == "haproxy" for e in lines)

    follow = subprocess.Popen([sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket",
                               str(sock), "events", "--follow", "--json"],
                              stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    seen: queue.Queue[dict] = queue.Queue()
    assert follow.stdout is not None
    stdout = follow.stdout
    threading.Thread(target=lambda: [seen.put(json.loads(ln)) for ln in stdout],
                     daemon=True).start()
    try:
        time.sleep(0.5)  # the history is printed first
        pair.haproxy["lb1"].kill()
        deadline = time.monotonic() + 5
        while True:
            event = seen.get(timeout=max(0.01, deadline - time.monotonic()))
            if event["type"] == "transition" and event["new"] == "FAULT":
                break
    finally:
        follow.terminate()
        follow.wait(5)


def _raw(sock: Path, payload: bytes, timeout: float = 10) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        try:
            s.sendall(payload)
            return s.makefile("rb").readline()
        except (BrokenPipeError, ConnectionResetError):
            return b""  # closed on us: acceptable for abuse


def test_raw_socket_abuse_leaves_the_daemon_unaffected(pair: HAProxyPair) -> None:
    sock = pair.socket("lb1")
    idle = socket.socket(socket.AF_UNIX)
    idle.settimeout(10)
    idle.connect(str(sock))  # says nothing
    try:
        reply = json.loads(_raw(sock, b"{not json\n"))
        assert reply["ok"] is False and "malformed request" in reply["error"]
        reply = json.loads(_raw(sock, b"[1, 2]\n"))
        assert reply["ok"] is False
        reply = json.loads(_raw(sock, b'{"v": 1, "cmd": "reboot"}\n'))
        assert reply["ok"] is False and "unknown command 'reboot'" in reply["error"]
        big = _raw(sock, b'{"v": 1, "cmd": "status", "pad": "' + b"x" * 200_000 + b'"}\n')
        assert big == b"" or json.loads(big)["ok"] is False
        # While the idle client hangs, the daemon answers others and keeps serving.
        assert pair.vrrpd["lb1"].state("web") == "MASTER"
        start = time.monotonic()
        answer = idle.makefile("rb").readline()
        assert time.monotonic() - start < 7
        assert answer == b"" or json.loads(answer)["ok"] is False
    finally:
        idle.close()
    assert pair.vrrpd["lb1"].state("web") == "MASTER" and pair.holders() == ["lb1"]
    assert pair.vrrpd["lb1"].proc is not None and pair.vrrpd["lb1"].proc.poll() is None
