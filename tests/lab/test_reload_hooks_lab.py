"""Hitless reload and notify hooks against real daemons (issue: operator interface).

The VIP is sampled over netlink about every millisecond while the daemon reloads: a reload
that removed and re-added it, even for a moment, would be seen.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import REPO, AddressProbe, Vrrpd, wait_for
from lab.netns import Node, Topology
from vrrpd.configsync.tls import keygen
from vrrpd.control.client import ControlError

VIP = "192.0.2.100/24"
EXTRA = "192.0.2.101/24"


def web(priority: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": "web", "interface": "eth0", "vrid": 51, "priority": priority,
             "advert_interval": 0.1, "vips": [VIP], **extra}]


class Sampler(threading.Thread):
    """Counts the samples in which ``node`` did not hold ``vip``.

    pyroute2 sockets belong to the thread that opened them, so the probe is opened here.
    """

    def __init__(self, node: Node, vip: str) -> None:
        super().__init__(daemon=True)
        self.node, self.vip = node, vip
        self.samples = self.missing = 0
        self.running = True
        self.ready = threading.Event()

    def run(self) -> None:
        probe = AddressProbe(self.node)
        self.ready.set()
        while self.running:
            self.samples += 1
            self.missing += not probe.has(self.vip)
            time.sleep(0.001)
        probe.close()

    def stop(self) -> tuple[int, int]:
        self.running = False
        self.join()
        return self.samples, self.missing


def test_reload_is_hitless_and_a_bad_file_changes_nothing(two_nodes: Topology,
                                                          tmp_path: Path) -> None:
    lb1 = Vrrpd(two_nodes.nodes["lb1"], tmp_path, web(150)).start()
    lb2 = Vrrpd(two_nodes.nodes["lb2"], tmp_path, web(100)).start()
    probe = AddressProbe(two_nodes.nodes["lb1"])
    try:
        lb1.wait_state("web", "MASTER")
        lb2.wait_state("web", "BACKUP")
        transitions = lb1.instance("web")["counters"]["transitions"]
        sampler = Sampler(two_nodes.nodes["lb1"], VIP)
        sampler.start()
        sampler.ready.wait(5)
        time.sleep(0.1)
        lb1.doc["instances"][0]["vips"] = [VIP, EXTRA]
        lb1.doc["instances"][0]["priority"] = 160
        lb1.write_config()
        result = lb1.ctl("reload")
        assert result["updated"] == ["web"] and result["restarted"] == []
        wait_for(lambda: probe.has(EXTRA), 2, "the added VIP")
        # SIGHUP reloads too: drop the extra VIP again.
        lb1.doc["instances"][0]["vips"] = [VIP]
        lb1.write_config()
        lb1.send_signal(signal.SIGHUP)
        wait_for(lambda: not probe.has(EXTRA), 2, "the removed VIP to go")
        time.sleep(0.1)
        samples, missing = sampler.stop()
        # ~1 ms apart when idle; a busy machine samples less often, but always many times
        assert samples > 20 and missing == 0, f"VIP missing in {missing}/{samples} samples"
        status = lb1.instance("web")
        assert status["state"] == "MASTER" and status["effective_priority"] == 160
        assert status["counters"]["transitions"] == transitions
        # A broken file is refused with file, line, key and reason; nothing changes.
        lb1.config_path.write_text(lb1.config_path.read_text().replace("vrid: 51", "vrid: 300"))
        with pytest.raises(ControlError, match=r"vrrpd.yaml:\d+: instances\[0\].vrid: 300"):
            lb1.ctl("reload")
        assert lb1.state("web") == "MASTER" and probe.has(VIP)
    finally:
        probe.close()
        lb1.stop()
        lb2.stop()


def test_notify_hooks_run_in_order_and_never_delay_a_takeover(two_nodes: Topology,
                                                              tmp_path: Path) -> None:
    """keepalived arguments TYPE NAME STATE PRIORITY plus VRRPD_* variables, in order; a hook
    that hangs for seconds does not slow lb2's takeover (Skew_Time + 100 ms)."""
    record = tmp_path / "lb1-hook.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$* $VRRPD_PREV_STATE [$VRRPD_VIPS]" >> {record}\n'
                    "exit 3\n")
    slow = tmp_path / "slow.sh"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    hook.chmod(0o755)
    slow.chmod(0o755)
    lb1 = Vrrpd(two_nodes.nodes["lb1"], tmp_path, web(150, notify=str(hook))).start()
    lb2 = Vrrpd(two_nodes.nodes["lb2"], tmp_path, web(100, notify=str(slow))).start()
    probe = AddressProbe(two_nodes.nodes["lb2"])
    try:
        lb1.wait_state("web", "MASTER")
        lb2.wait_state("web", "BACKUP")
        time.sleep(0.3)
        start = time.monotonic()
        lb1.send_signal(signal.SIGTERM)  # timed to the takeover, not to lb1's exit
        wait_for(lambda: probe.has(VIP), 2, "lb2 to take over")
        assert time.monotonic() - start < 0.161 + 0.1
        assert lb1.proc is not None and lb1.proc.wait(10) == 0
        lines = record.read_text().splitlines()
        assert lines == ["INSTANCE web BACKUP 150 INIT [192.0.2.100]",
                         "INSTANCE web MASTER 150 BACKUP [192.0.2.100]",
                         "INSTANCE web STOP 150 MASTER [192.0.2.100]"]
        assert "exit status 3" in lb1.log()
    finally:
        probe.close()
        lb2.stop()


def _vrrpctl(daemon: Vrrpd, *args: str) -> str:
    """``vrrpctl ARGS`` as an operator runs it; its text output."""
    done = subprocess.run([sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket",
                           str(daemon.socket), *args], capture_output=True, text=True,
                          timeout=30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reload_applies_notify_metrics_and_sync_live(two_nodes: Topology,
                                                     tmp_path: Path) -> None:
    """issue 13 part 2: a reload that adds ``notify:``, ``metrics:`` and ``config_sync:`` applies
    them at once (the hook runs on the next transition, the metrics endpoint and the sync
    listener answer) and ``vrrpctl reload`` says so; a setting read only at start
    (``log_format``) is printed under "needs restart"."""
    node = two_nodes.nodes["lb1"]
    record, hook = tmp_path / "hook.log", tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$*" >> {record}\n')
    hook.chmod(0o755)
    cert = tmp_path / "sync.pem"
    keygen(cert, "lb1")
    served = tmp_path / "haproxy.cfg"
    served.write_text("global\n")
    lb1 = Vrrpd(node, tmp_path, web(150)).start()
    lb2 = Vrrpd(two_nodes.nodes["lb2"], tmp_path, web(100)).start()
    try:
        lb1.wait_state("web", "MASTER")
        lb2.wait_state("web", "BACKUP")
        lb1.doc["instances"][0]["notify"] = str(hook)
        lb1.doc["metrics"] = {"listen": "127.0.0.1:9650"}
        lb1.doc["config_sync"] = {"listen": "192.0.2.11:7000", "peers": ["192.0.2.12:7000"],
                                  "cert": str(cert), "peer_fingerprints": ["ab" * 32],
                                  "files": [str(served)], "validate": "true {path}",
                                  "reload": "true", "instance": "web"}
        lb1.write_config()
        out = _vrrpctl(lb1, "reload")
        assert "updated: web" in out and "applied live: notify, config_sync, metrics" in out, out
        metrics = node.ns.run(["curl", "-s", "http://127.0.0.1:9650/metrics"]).stdout
        assert 'vrrpd_instance_state{state="MASTER",vrrp_instance="web"} 1.0' in metrics
        assert lb1.ctl("config-sync-status")["local"]["generation"] == 0
        assert node.ns.run(["ss", "-Htln", "sport = :7000"]).stdout.strip()
        lb1.ctl("demote", instance="web")
        wait_for(lambda: record.exists() and "BACKUP" in record.read_text(), 5,
                 "the new notify hook to run")
        lb1.doc["log_format"] = "json"
        lb1.write_config()
        out = _vrrpctl(lb1, "reload")
        assert "needs restart: log_format" in out, out
    finally:
        lb1.stop()
        lb2.stop()
