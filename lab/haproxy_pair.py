"""A load-balancer pair in the lab: real HAProxy on lb1 and lb2, vrrpd (or keepalived) above it.

Topology (one :class:`~lab.netns.Topology`, namespaces deleted on exit)::

    client 192.0.2.50 ----+
    lb1    192.0.2.11 ----+-- switch (br0)     VIP 192.0.2.100 (VRID 51) on the master
    lb2    192.0.2.12 ----+
    backend 192.0.2.30 ---+   HTTP on :8080

* ``backend`` runs a tiny threaded HTTP server (``python -m http.server``) on 192.0.2.30:8080.
* ``lb1``/``lb2`` run HAProxy 2.x (``haproxy_mode``, see :data:`HAPROXY_MODES`: master-worker
  ``-W -D -p PIDFILE`` by default, classic daemon ``-D -p PIDFILE``, or ``-Ws`` in the
  foreground under the lab as its supervisor, without a pidfile) with a stats socket, a
  frontend bound to the VIP (``net.ipv4.ip_nonlocal_bind=1``, so HAProxy listens before the
  node holds the VIP) and ``http-response set-header X-LB <node>``: the client learns which
  LB answered.
* vrrpd runs on both, lb1 priority 150 and lb2 100, one instance ``web`` tracking HAProxy
  (tracker ``haproxy``, weight 0: a dead HAProxy is a FAULT).  ``customize(node, doc)`` edits
  each node's vrrpd config before start (more instances, trackers, sync groups).
* With ``daemon="keepalived"`` keepalived 2.2 runs instead, configured equivalently: the same
  VRID, priorities and advert interval, and a HAProxy check with weight 0 (failing = FAULT),
  see :func:`keepalived_config`.

The vrrpd process runner and the netlink probe come from :mod:`lab.daemons`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.daemons import AddressProbe, Vrrpd, terminate, wait_for
from lab.keepalived import KEEPALIVED, realtime_line
from lab.netns import LabSetup, Node, Topology
from vrrpd.track.haproxy_procs import DEAD_STATES, PF_EXITING

VIP = "192.0.2.100/24"
VIP_ADDR = "192.0.2.100"
VRID = 51
BACKEND = ("backend", "192.0.2.30/24", "2001:db8::30/64")
CLIENT = ("client", "192.0.2.50/24", "2001:db8::50/64")
LBS = {"lb1": ("192.0.2.11/24", "2001:db8::11/64", 150),
       "lb2": ("192.0.2.12/24", "2001:db8::12/64", 100)}
BACKEND_PORT = 8080

KEEPALIVED_CHECK_INTERVAL = 1  # seconds: keepalived 2.2.7's shortest vrrp_script interval
Customize = Callable[[str, dict[str, Any]], None]
# How HAProxy runs: its command-line switches and whether it writes a pidfile.  A normal
# reload is SIGUSR2 to the master in the master-worker modes, `-sf OLDPID` in "daemon".
HAPROXY_MODES = {"master-worker": (["-W", "-D"], True), "daemon": (["-D"], True),
                 "foreground": (["-Ws"], False)}


def haproxy_config(node: str, workdir: Path, bind: str = f"{VIP_ADDR}:80",
                   server: str = f"{BACKEND[1].split('/')[0]}:{BACKEND_PORT}") -> str:
    """HAProxy configuration of ``node``: ``bind`` (the VIP:80) -> ``server`` (the backend),
    stats socket, X-LB header.  The mode comes from the command line (:data:`HAPROXY_MODES`)."""
    return f"""\
global
    stats socket {workdir}/admin.sock mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind {bind}
    default_backend web
    http-response set-header X-LB {node}
backend web
    server app {server} check inter 1s
"""


class HAProxy:
    """HAProxy in one lab node, in one of :data:`HAPROXY_MODES` (default master-worker).

    ``config`` is the configuration text (default: :func:`haproxy_config`); ``args`` are added
    to the command line (``-L lb1``) and ``env`` to the environment, which HAProxy expands in
    quoted ``"${NAME}"`` words of the file: the PACS lab keeps one file, byte-identical on
    both nodes, whose runtime paths differ per node (:mod:`lab.pacs`).
    """

    def __init__(self, node: Node, workdir: Path, config: str | None = None,
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 mode: str = "master-worker") -> None:
        self.node = node
        self.mode = mode
        self.switches, self.uses_pidfile = HAPROXY_MODES[mode]
        self.proc: subprocess.Popen[bytes] | None = None  # foreground: the lab supervises
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg = self.dir / "haproxy.cfg"
        self.pidfile = self.dir / "haproxy.pid"
        self.socket = self.dir / "admin.sock"
        self.args = list(args)
        self.env = dict(env or {})
        self.cfg.write_text(haproxy_config(node.name, self.dir) if config is None else config)

    def command(self) -> list[str]:
        """The command line (``env NAME=VALUE ... haproxy -W -D ...``)."""
        pidfile = ["-p", str(self.pidfile)] if self.uses_pidfile else []
        return ["env", *(f"{k}={v}" for k, v in self.env.items()), "haproxy", *self.switches,
                "-f", str(self.cfg), *pidfile, *self.args]

    def start(self) -> None:
        """Start (``-D``: the master forks and writes its pid; foreground: a child of the lab)
        and wait for the stats socket."""
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        if self.uses_pidfile:
            self.node.ns.run(self.command())
        else:
            terminate(self.proc)
            self.proc = self.node.ns.popen(self.command(), stderr=subprocess.DEVNULL)
        wait_for(lambda: self.master_pid() is not None and self.socket.exists(), 10,
                 f"haproxy on {self.node.name}", poll=0.01)

    def reload(self) -> None:
        """A normal reload: SIGUSR2 to a master, or a new process with ``-sf OLDPID``."""
        pid = self.master_pid()
        assert pid is not None, f"no HAProxy runs on {self.node.name}"
        if self.mode == "daemon":
            self.node.ns.run([*self.command(), "-sf", str(pid)])
        else:
            os.kill(pid, signal.SIGUSR2)

    def master_pid(self) -> int | None:
        """The master's (or, in "daemon" mode, the serving process's) pid while it runs."""
        if not self.uses_pidfile:
            return self.proc.pid if self.proc is not None and self.proc.poll() is None else None
        try:
            pid = int(self.pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the master (SIGKILL: the workers notice the master is gone and exit).  A
        foreground HAProxy stays a zombie until the lab next asks for its pid."""
        pid = self.master_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stats(self, command: str) -> str:
        """One command on the stats socket (``show table web``), its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(self.socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stop(self) -> None:
        """Kill the master and every HAProxy process left in the node."""
        self.kill()
        out = self.node.ns.run(["ip", "netns", "pids", self.node.ns.name], check=False)
        for pid in out.stdout.split():
            with contextlib.suppress(OSError):
                if "haproxy" in Path(f"/proc/{pid}/comm").read_text():
                    os.kill(int(pid), signal.SIGKILL)
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None


def keepalived_check_script(haproxy: HAProxy) -> str:
    """The ``vrrp_script`` body: HAProxy's master from the pidfile is alive -- it exists, is
    not a zombie and is not exiting, vrrpd's own rule (``DEAD_STATES``, ``PF_EXITING`` in
    vrrpd/track/haproxy_procs.py).  ``kill -0`` alone succeeds on a zombie, and a daemonized
    master killed here stays one until PID 1 reaps it, which on these machines takes 1-2 s.
    Shell builtins only (``read``, ``case``, arithmetic): no process is forked per check."""
    dead = "|".join(DEAD_STATES)
    return f"""\
#!/bin/sh
# keepalived's HAProxy check: 0 while the pidfile's master lives (not a zombie, not exiting)
read -r pid rest < {haproxy.pidfile} || exit 1
read -r stat < /proc/$pid/stat || exit 1
set -- ${{stat##*") "}}
case $1 in {dead}) exit 1;; esac
[ $(( $7 & {PF_EXITING} )) -eq 0 ]
"""


def keepalived_config(node: Node, priority: int, interval: float, haproxy: HAProxy,
                      check: str = "script", vips: Sequence[str] = (VIP,),
                      realtime_priority: int = 0) -> str:
    """keepalived.conf equivalent to the vrrpd setup: VRRPv3, same VRID/priority/interval.

    ``check="script"`` (default): a ``vrrp_script`` running :func:`keepalived_check_script`
    at keepalived's best setting: every second (2.2.7 takes whole seconds only, "invalid
    number '0.1'"), fall 1, rise 1.
    ``check="process"``: ``vrrp_track_process`` on HAProxy's command line (quorum 2 = the
    master and a worker), event-driven.  It needs the kernel's process-event connector, which
    only answers in the initial network namespace: in a lab namespace keepalived logs "Failed
    to set/clear process event listen - errno 111" and stays in FAULT
    (benchmarks/track_process.py runs it in the initial namespace).
    Both with weight 0 (failing = FAULT).  ``check="none"``: no HAProxy check.
    ``realtime_priority``: keepalived's VRRP process runs SCHED_RR at that priority
    (``vrrp_rt_priority``), as vrrpd's ``realtime_priority:`` does its event loop.
    """
    if check == "script":
        script = haproxy.dir / "check_haproxy.sh"  # keepalived runs scripts without a shell
        script.write_text(keepalived_check_script(haproxy))
        script.chmod(0o755)
        tracker = f"""vrrp_script chk_haproxy {{
    script "{script}"
    interval {KEEPALIVED_CHECK_INTERVAL}
    timeout 1
    fall 1
    rise 1
    weight 0
}}"""
        use = "track_script {\n        chk_haproxy\n    }"
    elif check == "none":
        tracker = use = ""
    else:
        tracker = f"""vrrp_track_process chk_haproxy {{
    process haproxy -W -D -f {haproxy.cfg}
    param_match initial
    quorum 2
    weight 0
}}"""
        use = "track_process {\n        chk_haproxy\n    }"
    addresses = "\n        ".join(f"{vip} dev {node.ifname}" for vip in vips)
    realtime = realtime_line(realtime_priority)
    return f"""\
global_defs {{
    router_id {node.name}
    vrrp_version 3
    script_user root{realtime}
}}
{tracker}
vrrp_instance VI_1 {{
    state BACKUP
    interface {node.ifname}
    virtual_router_id {VRID}
    priority {priority}
    advert_int {interval:g}
    virtual_ipaddress {{
        {addresses}
    }}
    {use}
}}
"""


class KeepalivedNode:
    """keepalived (VRRP subsystem only, foreground) in one lab node."""

    def __init__(self, node: Node, workdir: Path, config: str) -> None:
        self.node = node
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(config)
        self.log_path = self.dir / "keepalived.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> KeepalivedNode:
        with self.log_path.open("ab") as log:
            self.proc = self.node.ns.popen(
                [KEEPALIVED, "--vrrp", "--dont-fork", "--log-console", "--no-syslog",
                 "--dont-respawn", "--use-file", str(self.conf),
                 "--pid", str(self.dir / "k.pid"), "--vrrp_pid", str(self.dir / "v.pid")],
                stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self, timeout: float = 10) -> int:
        return terminate(self.proc, signal.SIGTERM, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class HAProxyPair(LabSetup):
    """lb1/lb2/backend/client with HAProxy and a VRRP daemon on each LB.  A context manager:
    every process and namespace is gone after ``with``, also when setup failed.

    Subclasses change the parts through the class attributes and the hooks
    :meth:`_add_lbs`, :meth:`_add_backends`, :meth:`_haproxy`, :meth:`vrrpd_config` and
    :meth:`_keepalived_check` (:class:`lab.pacs.PacsLab`: the PACS reference deployment;
    :class:`lab.track_process_pair.TrackProcessPair`: lb1 in the root namespace).
    """

    ifname = "eth0"  # the LBs' interface
    instance = "web"  # the vrrpd instance holding the VIP
    client_lbs: dict[str, str] = {}  # LB address -> name, see lab.client
    vips: list[str] = [VIP]  # the instance's VIPs; the client probes the last one
    url = f"http://{VIP_ADDR}/"  # what the client asks for
    client_node = CLIENT
    backend_node = BACKEND
    backend_bind = BACKEND[1].split("/")[0]  # the address its HTTP server listens on

    def __init__(self, workdir: Path, *, interval: float = 0.1, track_interval: float = 0.1,
                 daemon: str = "vrrpd", customize: Customize | None = None,
                 keepalived_check: str = "script", prefix: str | None = None,
                 haproxy_mode: str = "master-worker", realtime_priority: int = 0) -> None:
        self.workdir = workdir
        self.haproxy_mode = haproxy_mode
        self.prefix = prefix
        self.interval = interval
        self.track_interval = track_interval
        self.daemon = daemon
        self.customize = customize
        self.keepalived_check = keepalived_check
        self.realtime_priority = realtime_priority  # either daemon's, 0: normal scheduling
        self.lab: Topology | None = None
        self.haproxy: dict[str, HAProxy] = {}
        self.vrrpd: dict[str, Vrrpd] = {}
        self.keepalived: dict[str, KeepalivedNode] = {}
        self.probe: dict[str, AddressProbe] = {}
        self.backends: list[subprocess.Popen[bytes]] = []

    # ---- building ------------------------------------------------------------------------

    def _build(self) -> None:
        self.lab = lab = Topology(self.prefix)
        self._add_lbs()
        self._add_backends()
        lab.add_node(*self.client_node)
        for name in LBS:
            self.haproxy[name] = self._haproxy(name)
            self.haproxy[name].start()
            self.probe[name] = AddressProbe(lab.nodes[name])
        if self.daemon == "keepalived":
            self._start_keepalived()
        else:
            self._start_vrrpd()
        wait_for(lambda: self.holders() == ["lb1"], 10, "lb1 to hold the VIP", poll=0.01)

    def _add_lbs(self) -> None:
        """Nodes lb1 and lb2, each in its namespace."""
        assert self.lab is not None
        for name, (v4, v6, _prio) in LBS.items():
            node = self.lab.add_node(name, v4, v6, ifname=self.ifname)
            node.ns.sysctl("net.ipv4.ip_nonlocal_bind", 1)

    def _add_backends(self) -> None:
        """Node ``backend`` with a static HTTP server on :8080."""
        assert self.lab is not None
        self.lab.add_node(*self.backend_node)
        root = self.workdir / "www"
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text("pacs\n")
        self.backends.append(self.lab.nodes["backend"].ns.popen(
            [sys.executable, "-m", "http.server", str(BACKEND_PORT), "--bind",
             self.backend_bind, "--directory", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _haproxy(self, node: str) -> HAProxy:
        """The (not yet started) HAProxy of LB ``node``."""
        return HAProxy(self.node(node), self.workdir / node / "haproxy", mode=self.haproxy_mode)

    def vrrpd_config(self, node: str) -> dict[str, Any]:
        """The vrrpd config document of ``node`` before ``customize``."""
        hap = self.haproxy[node]
        return {
            "instances": [{"name": "web", "interface": self.node(node).ifname, "vrid": VRID,
                           "priority": LBS[node][2], "advert_interval": self.interval,
                           "vips": self.vips, "track": ["haproxy"]}],
            # `backends`: a node whose HAProxy marked every server DOWN while its cable was out
            # stays in FAULT until a check sees one UP again, instead of preempting into 503s.
            # `timeout`/`fall`: 0.5 s per stats-socket answer, and two failed checks before
            # FAULT: on a busy 2-core machine one slow answer is not a dead HAProxy.  A process
            # death is an event (pidfd) and fails the tracker at once whatever `fall` is.
            "tracks": {"haproxy": {"type": "haproxy", "socket": str(hap.socket),
                                   "backends": ["web"], "interval": self.track_interval,
                                   "timeout": 0.5, "fall": 2, "weight": 0,
                                   **({"pidfile": str(hap.pidfile)} if hap.uses_pidfile else {})}},
            **({"realtime_priority": self.realtime_priority} if self.realtime_priority else {}),
        }

    def _start_vrrpd(self) -> None:
        assert self.lab is not None
        for name in LBS:
            doc = self.vrrpd_config(name)
            if self.customize is not None:
                self.customize(name, doc)
            instances = doc.pop("instances")
            self.vrrpd[name] = Vrrpd(self.lab.nodes[name], self.workdir, instances, **doc)
        self.vrrpd["lb1"].start()
        self.vrrpd["lb1"].wait_state(self.instance, "MASTER")
        self.vrrpd["lb2"].start()
        self.vrrpd["lb2"].wait_state(self.instance, "BACKUP")

    def _start_keepalived(self) -> None:
        assert self.lab is not None
        for name in LBS:
            node = self.lab.nodes[name]
            conf = keepalived_config(node, LBS[name][2], self.interval, self.haproxy[name],
                                     self._keepalived_check(name), self.vips,
                                     self.realtime_priority)
            self.keepalived[name] = KeepalivedNode(node, self.workdir / name / "keepalived",
                                                   conf)
        self.keepalived["lb1"].start()
        try:
            wait_for(lambda: self.holders() == ["lb1"], 15, "keepalived lb1 to hold the VIP",
                     poll=0.01)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.keepalived['lb1'].log()}") from None
        self.keepalived["lb2"].start()

    def _keepalived_check(self, node: str) -> str:
        """keepalived's HAProxy check on ``node``, see :func:`keepalived_config`."""
        return self.keepalived_check

    # ---- using ---------------------------------------------------------------------------

    def holders(self, vip: str | None = None) -> list[str]:
        """The LBs whose interface holds ``vip`` (default: the probed VIP) now (netlink)."""
        return [n for n, p in self.probe.items() if p.has(vip or self.vips[-1])]

    def node(self, name: str) -> Node:
        assert self.lab is not None
        return self.lab.nodes[name]

    def socket(self, name: str) -> Path:
        return self.vrrpd[name].socket

    @contextlib.contextmanager
    def client(self, **kwargs: Any) -> Iterator[Any]:
        """A :class:`lab.client.ClientProber` running in the client node."""
        from lab.client import ClientProber
        kwargs.setdefault("lbs", self.client_lbs)
        prober = ClientProber(self.node("client"), self.url, **kwargs)
        prober.start()
        try:
            yield prober
        finally:
            prober.stop()

    def logs(self) -> str:
        """Every daemon's log, for a failing test's report."""
        parts = [f"---- {n} vrrpd ----\n{d.log()[-6000:]}" for n, d in self.vrrpd.items()]
        parts += [f"---- {n} keepalived ----\n{k.log()[-3000:]}"
                  for n, k in self.keepalived.items()]
        return "\n".join(parts)

    def close(self) -> None:
        for d in self.vrrpd.values():
            d.stop()
        for k in self.keepalived.values():
            k.stop()
        for h in self.haproxy.values():
            h.stop()
        for backend in self.backends:
            terminate(backend)
        for p in self.probe.values():
            p.close()
        self.probe.clear()
        if self.lab is not None:
            self.lab.close()


def settle(seconds: float) -> None:
    """Sleep between phases (named, so benchmark scripts read as prose)."""
    time.sleep(seconds)
