"""Config sync between two real vrrpd processes in namespaces (real TLS, real ``haproxy -c``).

lb1 (priority 150) is MASTER of ``web`` and so the sync source; lb2 receives.  Each node keeps
its files in its own directory (the namespaces share one file system); files travel by name.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.daemons import Vrrpd, replace_file, wait_for
from lab.netns import Topology
from vrrpd.configsync.tls import keygen
from vrrpd.control.client import ControlError

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

HAPROXY = """global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend portal
    bind 192.0.2.100:80
    default_backend web
backend web
    cookie SRV insert indirect nocache
    option httpchk HEAD /
    server web1 192.0.2.50:8080 check cookie w1 maxconn {maxconn}
"""
PORT = 8443


class ConfigSyncPair:
    """lb1 and lb2 with ``config_sync:`` pinning each other."""

    def __init__(self, lab: Topology, tmp: Path) -> None:
        self.dirs = {n: tmp / n / "haproxy" for n in ("lb1", "lb2")}
        certs = {n: tmp / n / "sync.pem" for n in self.dirs}
        for d in self.dirs.values():
            d.mkdir(parents=True)
        fps = {n: keygen(c, n) for n, c in certs.items()}
        self.dirs["lb1"].joinpath("haproxy.cfg").write_text(HAPROXY.format(maxconn=10))
        self.dirs["lb2"].joinpath("haproxy.cfg").write_text(HAPROXY.format(maxconn=1))
        addr = {"lb1": "192.0.2.11", "lb2": "192.0.2.12"}
        self.d: dict[str, Vrrpd] = {}
        for name, prio, other in (("lb1", 150, "lb2"), ("lb2", 100, "lb1")):
            sync = {"listen": f"{addr[name]}:{PORT}", "peers": [f"{addr[other]}:{PORT}"],
                    "cert": str(certs[name]), "peer_fingerprints": [fps[other]],
                    "files": [str(self.dirs[name] / "haproxy.cfg")],
                    "validate": "haproxy -c -q -f {path}",
                    "reload": f"echo reloaded >> {self.dirs[name]}/reloads",
                    "instance": "web"}
            inst = {"name": "web", "interface": "eth0", "vrid": 51, "priority": prio,
                    "advert_interval": 0.1, "vips": ["192.0.2.100/24"]}
            self.d[name] = Vrrpd(lab.nodes[name], tmp, [inst], config_sync=sync)

    def cfg(self, node: str) -> Path:
        return self.dirs[node] / "haproxy.cfg"

    def last_push(self, node: str) -> dict[str, Any]:
        last: dict[str, Any] = self.d[node].ctl("config-sync-status")["last_push"] or {}
        return last


@pytest.fixture
def sync_pair(two_nodes: Topology, tmp_path: Path) -> Iterator[ConfigSyncPair]:
    pair = ConfigSyncPair(two_nodes, tmp_path)
    yield pair
    for d in pair.d.values():
        d.stop()


def test_master_pushes_validated_config_and_edits_follow_within_a_second(
        two_nodes: Topology, sync_pair: ConfigSyncPair) -> None:
    lb2 = two_nodes.nodes["lb2"].ns
    lb2.sysctl("net.ipv4.ip_nonlocal_bind", 0)
    sync_pair.d["lb1"].start()
    sync_pair.d["lb1"].wait_state("web", "MASTER")
    sync_pair.d["lb2"].start()
    sync_pair.d["lb2"].wait_state("web", "BACKUP")
    # the backup does not hold the VIP: the bind check refuses until non-local binds are on
    with pytest.raises(ControlError, match=re.escape(
            "bind check failed: line 9: 192.0.2.100 is not a local address and "
            "net.ipv4.ip_nonlocal_bind = 0")):
        sync_pair.d["lb1"].ctl("config-sync-push")
    assert "maxconn 1\n" in sync_pair.cfg("lb2").read_text()
    lb2.sysctl("net.ipv4.ip_nonlocal_bind", 1)
    result = sync_pair.d["lb1"].ctl("config-sync-push")
    (peer,) = result["peers"].values()
    # lb1 also pushes by itself (on becoming master, and when it sees the files change); on a
    # slow run its push can get there first, and this one finds lb2 in sync
    assert peer["ok"] and peer["message"].startswith(("applied generation", "already in sync"))
    assert sync_pair.cfg("lb2").read_text() == HAPROXY.format(maxconn=10)

    # an edit on the master is live on the backup within a second
    replace_file(sync_pair.cfg("lb1"), HAPROXY.format(maxconn=20))
    took = wait_for(lambda: "maxconn 20\n" in sync_pair.cfg("lb2").read_text(), 1.0,
                    "the edit on lb2", poll=0.01)
    print(f"edit on lb1 live on lb2 after {took:.3f}s")
    status = sync_pair.d["lb1"].ctl("config-sync-status")
    (p,) = status["peers"].values()
    assert p["sync"] == "in-sync" and status["local"]["source"] is True

    # a broken edit is refused by haproxy -c on lb2; lb2 keeps running the last good one
    broken = HAPROXY.format(maxconn=30).replace("check cookie", "check nope")
    replace_file(sync_pair.cfg("lb1"), broken)
    wait_for(lambda: sync_pair.last_push("lb1").get("ok") is False, 2, "a refused push",
             poll=0.05)
    assert "validation failed" in sync_pair.last_push("lb1")["error"]
    assert "maxconn 20\n" in sync_pair.cfg("lb2").read_text()
    with pytest.raises(ControlError, match="validation failed"):
        sync_pair.d["lb1"].ctl("config-sync-push")

    # a backup edited by hand is reported diverged and only overwritten with --force
    replace_file(sync_pair.cfg("lb1"), HAPROXY.format(maxconn=40))
    # the push is over when lb1 has lb2's answer (lb2 applied it and recorded what it applied;
    # while it applies, its own files are in flux and never reported diverged)
    wait_for(lambda: sync_pair.last_push("lb1").get("ok") is True, 5, "lb2 to apply the edit",
             poll=0.05)
    assert "maxconn 40\n" in sync_pair.cfg("lb2").read_text()
    replace_file(sync_pair.cfg("lb2"), HAPROXY.format(maxconn=99))
    status = sync_pair.d["lb2"].ctl("config-sync-status")
    assert status["local"]["diverged"] is True
    replace_file(sync_pair.cfg("lb1"), HAPROXY.format(maxconn=41))
    wait_for(lambda: "(diverged)" in str(sync_pair.last_push("lb1").get("error")), 5,
             "lb1's push to be refused: lb2 diverged", poll=0.05)
    assert "maxconn 99\n" in sync_pair.cfg("lb2").read_text()
    with pytest.raises(ControlError, match="diverged"):
        sync_pair.d["lb1"].ctl("config-sync-push")
    sync_pair.d["lb1"].ctl("config-sync-push", force=True)
    assert "maxconn 41\n" in sync_pair.cfg("lb2").read_text()
