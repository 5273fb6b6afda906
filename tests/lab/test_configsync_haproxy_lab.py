"""Config sync onto a real, running HAProxy: live after the reload, confirmed, rolled back.

Two real vrrpd daemons with ``config_sync:`` and real HAProxy 2.6 master-worker on both nodes
(:class:`lab.configsync_pair.ConfigSyncLab`).  What the backup's HAProxy *runs* is read from a fresh
HTTP request to its loopback (``X-Config-Gen``), not from the file.  The in-process transport
cases (``tests/test_configsync_transport.py``) are repeated here only where the daemon-level view
adds something: a key that changed on a real node, a sender that dies mid-transfer.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.configsync_pair import SYNC_PORT, ConfigSyncLab, haproxy_config
from lab.daemons import replace_file, wait_for
from vrrpd.cli.configsync_cli import render_config_sync
from vrrpd.configsync.confirm import MasterCLIConfirm
from vrrpd.control.client import ControlError

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[ConfigSyncLab]:
    with ConfigSyncLab(tmp_path) as pair:
        try:
            yield pair
        except BaseException:
            print(pair.logs())
            raise


def occupy(lab: ConfigSyncLab, node: str, port: int) -> subprocess.Popen[bytes]:
    """A listener on 127.0.0.1:``port`` in ``node``: HAProxy cannot bind it at run time."""
    proc = lab.ns(node).popen([sys.executable, "-c",
                               "import socket, time; s = socket.socket(); "
                               f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(120)"])
    time.sleep(0.3)
    return proc


def test_edit_goes_live_and_a_runtime_reload_failure_is_rolled_back(lab: ConfigSyncLab) -> None:
    lb1, lb2 = lab.vrrpd["lb1"], lab.vrrpd["lb2"]
    # a fresh backup (never synced, the distribution's file) just takes the first push
    result = lb1.ctl("config-sync-push")
    (peer,) = result["peers"].values()
    assert peer["ok"] and peer["reload"].startswith("HAProxy reloaded: reload #1"), peer
    assert lab.haproxy["lb2"].generation() == "0"

    lab.edit(1)
    took = wait_for(lambda: lab.haproxy["lb2"].generation() == "1", 2.0,
                    "lb2's HAProxy to run generation 1", poll=0.005)
    print(f"edit on lb1 served by lb2's HAProxy after {took:.3f}s")

    # passes `haproxy -c` and the bind check, but the port is taken on lb2: the reload fails
    # inside HAProxy, vrrpd sees it in `show proc`, restores the file and reloads again
    squatter = occupy(lab, "lb2", 8082)
    try:
        lab.edit(2, extra_bind="127.0.0.1:8082")
        wait_for(lambda: lab.last_push("lb1").get("ok") is False, 15, "a refused push",
                 poll=0.05)
        error = lab.last_push("lb1")["error"]
        assert "HAProxy refused the reload at run time" in error, error
        assert error.endswith("rolled back, reloaded the previous files"), error
        assert lab.haproxy["lb2"].generation() == "1"
        assert lab.cfg("lb2").read_text() == haproxy_config(1)
        state = asyncio.run(MasterCLIConfirm(lab.haproxy["lb2"].master_socket).show_proc())
        assert state.failed == 0  # the rollback reload succeeded
        assert lab.haproxy["lb2"].master_pid() is not None
    finally:
        squatter.kill()
        squatter.wait()

    # a broken edit: refused by lb2's validator, its message shown on lb1, lb2 keeps serving
    replace_file(lab.cfg("lb1"), haproxy_config(3).replace("http-request return",
                                                           "http-request retrun"))
    wait_for(lambda: "validation failed" in str(lab.last_push("lb1").get("error")), 5,
             "the validator's refusal", poll=0.05)
    text = render_config_sync("config-sync-status", lb1.ctl("config-sync-status"))
    assert re.search(r"(?s)last push: .* pushed to 192\.0\.2\.12:\d+: ERROR: validation failed "
                     r"\(`haproxy -c -f \{path\}` exit 1\): .*retrun", text), text
    with pytest.raises(ControlError, match="retrun"):
        lb1.ctl("config-sync-push")
    assert lab.haproxy["lb2"].generation() == "1"
    assert lb2.ctl("config-sync-status")["local"]["generation"] == peer["generation"] + 1


def test_changed_key_is_refused_and_a_sender_dying_mid_transfer_changes_nothing(
        lab: ConfigSyncLab) -> None:
    lb1, lb2 = lab.vrrpd["lb1"], lab.vrrpd["lb2"]
    lb1.ctl("config-sync-push")
    before = lab.cfg("lb2").read_text()
    generation = lb2.ctl("config-sync-status")["local"]["generation"]

    # lb1 gets a new key (keygen --overwrite) but lb2 still pins the old one
    lb1.stop()
    lab.keygen("lb1")
    lab.start("lb1", "MASTER")
    lab.edit(5)
    with pytest.raises(ControlError, match=r"authentication refused: client certificate "
                                           r"sha256:[0-9a-f]{64} is not in peer_fingerprints"):
        lb1.ctl("config-sync-push")
    status = render_config_sync("config-sync-status", lb1.ctl("config-sync-status"))
    assert f"peer 192.0.2.12:{SYNC_PORT}: unreachable:" in status
    assert "refused connection" in lb2.log() and lab.cfg("lb2").read_text() == before

    # pin the new key: lb2 restarts with it (a `config_sync:` change needs a restart)
    lb2.stop()
    lab.fingerprints["lb1"] = lab.keygen("lb1")
    lb1.stop()
    for name in ("lb1", "lb2"):
        lab.vrrpd[name].doc["config_sync"] = lab.sync_config(name)
        lab.vrrpd[name].write_config()
    lab.start("lb1", "MASTER")
    lab.start("lb2", "BACKUP")
    wait_for(lambda: lab.haproxy["lb2"].generation() == "5", 10, "lb2 to catch up", poll=0.05)
    # HAProxy serves the new file before the apply (reload confirmation) has finished and
    # recorded the generation: wait for that too
    wait_for(lambda: not lb2.ctl("config-sync-status")["local"]["applying"], 15,
             "lb2 to finish applying", poll=0.05)
    before = lab.cfg("lb2").read_text()
    generation = lb2.ctl("config-sync-status")["local"]["generation"]

    # a 2 MB edit through a 4 Mbit/s link and a 64 kB send buffer: SIGKILL lb1's vrrpd while
    # the push is on the wire; lb2 must see a short frame and apply nothing
    ns1 = lab.ns("lb1")
    ns1.run("tc qdisc add dev eth0 root tbf rate 4mbit burst 16kb latency 2s")
    ns1.sysctl("net.ipv4.tcp_wmem", "4096 16384 65536")
    lab.edit(6, padding=2_000_000)

    def pushing() -> bool:
        out = ns1.run(["ss", "-Htn", "state", "established", "dst",
                       f"{lab.address('lb2')}:{SYNC_PORT}"]).stdout.split()
        return len(out) >= 2 and int(out[1]) > 10_000  # Send-Q

    wait_for(pushing, 5, "lb1 to be sending the big bundle", poll=0.01)
    lb1.stop(signal.SIGKILL)
    wait_for(lambda: "disconnected mid-transfer" in lb2.log(), 10,
             "lb2 to notice the short frame", poll=0.05)
    assert lab.cfg("lb2").read_text() == before
    assert lb2.ctl("config-sync-status")["local"]["generation"] == generation
    assert not [p.name for p in lab.cfg("lb2").parent.iterdir()
                if p.name.startswith(".vrrpd-sync-")]
    assert lab.haproxy["lb2"].generation() == "5"
