"""Config sync in the lab: two real vrrpd daemons with ``config_sync:``, real HAProxy on both nodes.

Topology (one :class:`~lab.netns.Topology`, namespaces deleted on exit)::

    lb1 192.0.2.11 --+-- switch (br0)    VIP 192.0.2.100 (VRID 51), lb1 priority 150 = source
    lb2 192.0.2.12 --+                   sync over TLS on :8443, pinned both ways

Each node runs HAProxy in master-worker mode (``haproxy -W -D -p PIDFILE -S MASTER.sock``)
from its own directory (the namespaces share one file system; files travel by name).  The
configuration (:func:`haproxy_config`) answers every request itself with ``X-Config-Gen:
<gen>`` (``http-request return``), on the VIP and on ``127.0.0.1:8081``: a request to the
loopback of a node says which configuration its HAProxy is running *now*
(:meth:`LabHAProxy.generation`).  vrrpd reloads with ``kill -USR2`` (asynchronous, like
``systemctl reload``) and confirms through the master CLI (``config_sync.master_socket``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab.daemons import REPO, Vrrpd, replace_file, wait_for
from lab.haproxy_pair import HAProxy
from lab.netns import LabSetup, Namespace, Node, Topology

NODES = {"lb1": ("192.0.2.11/24", "2001:db8::11/64", 150),
         "lb2": ("192.0.2.12/24", "2001:db8::12/64", 100)}
VIP = "192.0.2.100"
PROBE_PORT = 8081
SYNC_PORT = 8443


def haproxy_config(gen: int | str, extra_bind: str = "", padding: int = 0) -> str:
    """A HAProxy 2.6 configuration whose every answer carries ``X-Config-Gen: <gen>``.

    ``extra_bind`` adds a ``bind`` line (e.g. a port that is in use on the receiver);
    ``padding`` appends that many bytes of comments (a big file for transfer tests).
    """
    text = f"""\
global
    maxconn 500
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind {VIP}:80
    bind 127.0.0.1:{PROBE_PORT}
{f"    bind {extra_bind}" + chr(10) if extra_bind else ""}\
    http-request return status 200 content-type text/plain string "gen {gen}" \
hdr X-Config-Gen "{gen}"
"""
    if padding:
        line = "# " + "x" * 77 + "\n"
        text += line * (padding // len(line) + 1)
    return text


class LabHAProxy(HAProxy):
    """:class:`~lab.haproxy_pair.HAProxy` with :func:`haproxy_config` and a master CLI
    (``-S master.sock``); it is up when its loopback frontend answers."""

    def __init__(self, node: Node, workdir: Path, gen: int | str = 0) -> None:
        self.master_socket = workdir / "master.sock"
        super().__init__(node, workdir, haproxy_config(gen),
                         args=["-S", f"{self.master_socket},mode,600"])

    def start(self) -> None:
        self.pidfile.unlink(missing_ok=True)
        self.node.ns.run(self.command())
        wait_for(lambda: self.generation() is not None, 10, f"haproxy on {self.node.name}",
                 poll=0.01)

    @property
    def reload_command(self) -> str:
        """What ``systemctl reload haproxy`` does to a master-worker HAProxy."""
        return f"kill -USR2 $(cat {self.pidfile})"

    def generation(self) -> str | None:
        """``X-Config-Gen`` of a fresh request to the node's loopback (None: no answer)."""
        try:
            with self.node.ns.entered():
                conn = socket.create_connection(("127.0.0.1", PROBE_PORT), timeout=1.0)
            with conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                answer = b""
                while chunk := conn.recv(4096):
                    answer += chunk
        except OSError:
            return None
        for line in answer.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "x-config-gen":
                return value.strip().strip('"')
        return None


class ConfigSyncLab(LabSetup):
    """lb1 and lb2: real HAProxy, vrrpd with ``config_sync:`` pinning each other.  A context
    manager; every process and namespace is gone after ``with``, also when setup failed."""

    def __init__(self, workdir: Path, advert_interval: float = 0.1,
                 tracks: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.advert_interval = advert_interval
        self.tracks = tracks or {}  # trackers of instance web on both nodes
        self.lab: Topology | None = None
        self.haproxy: dict[str, LabHAProxy] = {}
        self.vrrpd: dict[str, Vrrpd] = {}
        self.certs = {n: workdir / n / "sync.pem" for n in NODES}
        self.fingerprints: dict[str, str] = {}

    def _build(self) -> None:
        self.lab = Topology()
        for name, (v4, v6, _prio) in NODES.items():
            node = self.lab.add_node(name, v4, v6)
            node.ns.sysctl("net.ipv4.ip_nonlocal_bind", 1)  # the backup binds the VIP too
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
            self.fingerprints[name] = self.keygen(name)
            # lb2 starts like a fresh install: its own (different) file, never synced
            gen = 0 if name == "lb1" else "distribution-default"
            self.haproxy[name] = LabHAProxy(node, self.workdir / name / "haproxy", gen)
            self.haproxy[name].start()
        for name in NODES:
            self.vrrpd[name] = Vrrpd(self.lab.nodes[name], self.workdir,
                                     [self.instance(name)], config_sync=self.sync_config(name),
                                     **({"tracks": self.tracks} if self.tracks else {}))
        self.start("lb1", "MASTER")
        self.start("lb2", "BACKUP")

    def keygen(self, name: str) -> str:
        """A new key + certificate for ``name`` (``vrrpd config-sync keygen``); its fingerprint."""
        proc = subprocess.run([sys.executable, "-m", "vrrpd", "config-sync", "keygen",
                               "--overwrite", "--cert", str(self.certs[name]), "--name", name],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        return proc.stdout.strip()

    def instance(self, name: str) -> dict[str, Any]:
        return {"name": "web", "interface": "eth0", "vrid": 51, "priority": NODES[name][2],
                "advert_interval": self.advert_interval, "vips": [f"{VIP}/24"],
                **({"track": list(self.tracks)} if self.tracks else {})}

    def sync_config(self, name: str) -> dict[str, Any]:
        """``config_sync:`` of ``name``: pins the other node, confirms reloads via the master
        CLI."""
        other = "lb2" if name == "lb1" else "lb1"
        hap = self.haproxy[name]
        return {"listen": f"{self.address(name)}:{SYNC_PORT}",
                "peers": [f"{self.address(other)}:{SYNC_PORT}"],
                "cert": str(self.certs[name]),
                "peer_fingerprints": [self.fingerprints[other]],
                "files": [str(hap.cfg)],
                # not -q: HAProxy 2.6 then prints nothing at all, not even why it refused
                "validate": "haproxy -c -f {path}",
                "reload": hap.reload_command,
                "master_socket": str(hap.master_socket),
                "instance": "web"}

    def address(self, name: str) -> str:
        return NODES[name][0].split("/")[0]

    def start(self, name: str, state: str) -> None:
        self.vrrpd[name].start()
        self.vrrpd[name].wait_state("web", state)

    def ns(self, name: str) -> Namespace:
        assert self.lab is not None
        return self.lab.nodes[name].ns

    def cfg(self, name: str) -> Path:
        return self.haproxy[name].cfg

    def last_push(self, name: str) -> dict[str, Any]:
        last: dict[str, Any] = self.vrrpd[name].ctl("config-sync-status")["last_push"] or {}
        return last

    def edit(self, gen: int | str, **kwargs: Any) -> float:
        """Write a new configuration on the source (lb1); the monotonic time of the write."""
        text = haproxy_config(gen, **kwargs)
        start = time.monotonic()
        replace_file(self.cfg("lb1"), text)
        return start

    def logs(self) -> str:
        return "\n".join(f"---- {n} vrrpd ----\n{d.log()[-6000:]}" for n, d in self.vrrpd.items())

    def close(self) -> None:
        for d in self.vrrpd.values():
            d.stop()
        for h in self.haproxy.values():
            h.stop()
        if self.lab is not None:
            self.lab.close()
