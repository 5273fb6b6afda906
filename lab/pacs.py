"""The PACS reference deployment in network namespaces: the shipped files, run for real.

Topology (one :class:`~lab.netns.Topology`; the LBs' interface is ``eth1`` as in
``etc/vrrpd/lbN.yaml``)::

    lb1    192.0.2.11 --+                      VIP 192.0.2.100 (VRID 51) on the master
    lb2    192.0.2.12 --+-- switch (br0)
    pacs1  192.0.2.30 --+   scripts/pacs-backend: HTTP 80, DICOM 104 105 204 8104
    pacs2  192.0.2.31 --+
    client 192.0.2.50 --+

* HAProxy 2.6 on lb1 and lb2 runs **etc/haproxy/haproxy.cfg** with exactly two lines changed
  (:func:`lab_haproxy_config`): its pidfile and stats socket, which on a real LB live in
  ``/run`` and here must not collide between two nodes on one file system, become
  ``"${VRLAB_RUN}/..."``, which HAProxy expands from its environment.  So the file stays
  byte-identical on both nodes, as config sync requires, and each HAProxy gets its own
  paths.  ``-L lb1`` / ``-L lb2`` pick the local line of ``peers pacs`` (stick tables
  replicate over TCP 10000), ``net.ipv4.ip_nonlocal_bind = 1`` lets the backup bind the VIP.
* vrrpd runs ``etc/vrrpd/lb1.yaml`` / ``lb2.yaml`` (:meth:`PacsLab.vrrpd_config`): all the
  trackers, priorities, ``preempt_delay`` and the ``config_sync:`` section as shipped; only file
  paths move under the lab's directory, the sync keys come from ``vrrpd config-sync keygen`` with
  each node pinning the other's fingerprint, and ``reload`` signals the lab's HAProxy master
  (SIGUSR2: master-worker reload) instead of ``systemctl reload haproxy``.
* pacs1 and pacs2 run ``scripts/pacs-backend``; HTTP answers name the backend
  (``X-Backend``) and the LB it came through (``X-Remote-Addr``), C-FIND answers carry the
  backend's name as InstitutionName (:mod:`lab.dicom`).

``scripts/lab`` (:mod:`lab.demo`) and ``tests/lab/test_pacs_e2e.py`` build it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lab.daemons import REPO
from lab.haproxy_pair import LBS, HAProxy, HAProxyPair, wait_for
from lab.netns import Topology

REFERENCE_HAPROXY = REPO / "etc" / "haproxy" / "haproxy.cfg"
REFERENCE_VRRPD = REPO / "etc" / "vrrpd"
PACS_BACKEND = REPO / "scripts" / "pacs-backend"
PACS = {"pacs1": ("192.0.2.30/24", "2001:db8::30/64"),
        "pacs2": ("192.0.2.31/24", "2001:db8::31/64")}
LB_ADDRESSES = {v4.split("/")[0]: name for name, (v4, _v6, _prio) in LBS.items()}
RUN_ENV = "VRLAB_RUN"  # the directory HAProxy's runtime files go to, per node
MASTER_SOCKET = "master.sock"  # the master CLI (-S), as /etc/default/haproxy sets it on an LB
# Reference line -> lab line: the only changes made to etc/haproxy/haproxy.cfg.
RUNTIME_LINES = {
    "    pidfile /run/haproxy.pid": f'    pidfile "${{{RUN_ENV}}}/haproxy.pid"',
    "    stats socket /run/haproxy/admin.sock ":
        f'    stats socket "${{{RUN_ENV}}}/admin.sock" ',
}


def lab_haproxy_config(reference: str) -> str:
    """``reference`` with its runtime paths taken from ``$VRLAB_RUN``; fail if the reference
    no longer has exactly one line to change each (the lab must then be adapted)."""
    lines = reference.splitlines(keepends=True)
    for old, new in RUNTIME_LINES.items():
        hits = [i for i, line in enumerate(lines) if line.startswith(old)]
        if len(hits) != 1:
            raise ValueError(f"{REFERENCE_HAPROXY}: expected one line starting {old.strip()!r}, "
                             f"found {len(hits)}")
        lines[hits[0]] = new + lines[hits[0]][len(old):]
    return "".join(lines)


def sync_keygen(cert: Path, node: str) -> str:
    """``vrrpd config-sync keygen --cert CERT --name NODE``; the ``sha256:...`` fingerprint it
    printed."""
    cert.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-m", "vrrpd", "config-sync", "keygen",
                          "--cert", str(cert), "--name", node],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


def start_pacs_backends(lab: Topology, log: Callable[[str], Path],
                        servers: dict[str, tuple[str, str]] = PACS, *, bridge: str = "br0",
                        gateway: str | None = None, args: tuple[str, ...] = ()
                        ) -> list[subprocess.Popen[bytes]]:
    """The PACS servers (``scripts/pacs-backend``) on ``lab``'s ``bridge``, output to
    ``log(name)``, listening before HAProxy starts: a server that fails HAProxy's first
    checks stays DOWN for rise x inter (4 s), and every client that arrives meanwhile is
    stuck (``stick on src``) to the other one."""
    logs, procs = {}, []
    for name, (v4, v6) in servers.items():
        node = lab.add_node(name, v4, v6, bridge=bridge)
        if gateway is not None:
            node.ns.run(["ip", "route", "add", "default", "via", gateway])
        logs[name] = path = log(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with path.open("ab") as out:
            procs.append(node.ns.popen(
                [sys.executable, "-u", str(PACS_BACKEND), "--name", name, *args],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    for name, path in logs.items():  # it prints its ports once every server listens
        ready = f"pacs-backend {name}:"
        wait_for(lambda path=path, ready=ready: path.exists() and ready in path.read_text(),
                 15, f"scripts/pacs-backend on {name}", poll=0.02)
    return procs


def servers_down(haproxy: HAProxy) -> list[str]:
    """``backend/server`` names ``haproxy`` does not see UP."""
    rows = [r.split(",") for r in haproxy.stats("show stat").splitlines()[1:]]
    return [f"{r[0]}/{r[1]}" for r in rows
            if len(r) > 17 and r[1] not in ("FRONTEND", "BACKEND") and r[17] != "UP"]


class PacsLab(HAProxyPair):
    """The reference deployment (module docs); a context manager like its base class.

    ``workdir`` holds one directory per node (``/run/vrrpd-lab`` for ``scripts/lab``).
    """

    ifname = "eth1"
    instance = "pacs"
    client_lbs = LB_ADDRESSES
    # what lab.tproxy.TransparentLab changes: where the PACS servers are, their extra
    # arguments and default gateway, HAProxy's environment and the vrrpd files
    pacs_servers = PACS
    pacs_bridge = "br0"
    pacs_gateway: str | None = None
    pacs_args: tuple[str, ...] = ()
    haproxy_env: dict[str, str] = {}
    vrrpd_file = "{node}.yaml"
    interfaces: tuple[str, ...] = ("eth1",)  # the LB interfaces the lab cables

    def __init__(self, workdir: Path, prefix: str | None = None, realtime_priority: int = 0
                 ) -> None:
        super().__init__(workdir, prefix=prefix, realtime_priority=realtime_priority)
        self.fingerprints: dict[str, str] = {}

    def _add_backends(self) -> None:
        assert self.lab is not None
        self.backends += start_pacs_backends(
            self.lab, self.pacs_log, self.pacs_servers, bridge=self.pacs_bridge,
            gateway=self.pacs_gateway, args=self.pacs_args)

    def pacs_log(self, name: str) -> Path:
        """PACS server ``name``'s output (scripts/pacs-backend)."""
        return self.workdir / name / "pacs-backend.log"

    def servers_down(self, node: str) -> list[str]:
        """``backend/server`` names HAProxy on ``node`` does not see UP."""
        return servers_down(self.haproxy[node])

    def haproxy_config(self) -> str:
        """The HAProxy configuration of both nodes: the reference's, runtime paths changed."""
        return lab_haproxy_config(REFERENCE_HAPROXY.read_text())

    def _haproxy(self, node: str) -> HAProxy:
        run = self.workdir / node / "haproxy"
        return HAProxy(self.node(node), run, self.haproxy_config(),
                       args=["-L", node, "-S", str(run / MASTER_SOCKET)],
                       env={RUN_ENV: str(run), **self.haproxy_env})

    def _start_vrrpd(self) -> None:
        for name in LBS:
            wait_for(lambda name=name: not self.servers_down(name), 10,
                     f"HAProxy on {name} to see every PACS server UP", poll=0.05)
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
            self.fingerprints[name] = sync_keygen(self.workdir / name / "sync.pem", name)
        super()._start_vrrpd()

    def vrrpd_config(self, node: str) -> dict[str, Any]:
        """``etc/vrrpd/<node>.yaml`` with the lab's paths, keys and HAProxy reload."""
        doc: dict[str, Any] = yaml.safe_load(
            (REFERENCE_VRRPD / self.vrrpd_file.format(node=node)).read_text())
        for key in ("node", "control_socket", "state_dir"):  # the Vrrpd runner sets these
            doc.pop(key)
        hap, here = self.haproxy[node], self.workdir / node
        tracks = doc["tracks"]
        tracks["haproxy"].update(pidfile=str(hap.pidfile), socket=str(hap.socket))
        tracks["maintenance"]["path"] = str(here / "maintenance")
        (other,) = (n for n in LBS if n != node)
        doc["config_sync"].update(cert=str(here / "sync.pem"), files=[str(hap.cfg)],
                           peer_fingerprints=[self.fingerprints[other]],
                           reload=f"kill -USR2 $(cat {hap.pidfile})",
                           master_socket=str(hap.dir / MASTER_SOCKET))
        doc["realtime_priority"] = self.realtime_priority
        for inst in doc["instances"]:
            if inst["interface"] not in self.interfaces:
                raise ValueError(f"{node}.yaml: instance {inst['name']} is on "
                                 f"{inst['interface']}, the lab cables "
                                 f"{', '.join(self.interfaces)}")
        return doc

    def restart_haproxy(self, node: str) -> None:
        """Start ``node``'s HAProxy again; return once it sees every PACS server UP and its
        vrrpd is BACKUP again (out of FAULT)."""
        self.haproxy[node].start()
        wait_for(lambda: not self.servers_down(node), 10,
                 f"HAProxy on {node} to see every PACS server UP", poll=0.05)
        self.vrrpd[node].wait_state(self.instance, "BACKUP")

    def master(self) -> str | None:
        """The LB holding the VIP now (None while nobody or both do)."""
        holders = self.holders()
        return holders[0] if len(holders) == 1 else None

    def other(self, node: str) -> str:
        """The other LB."""
        return next(n for n in LBS if n != node)
