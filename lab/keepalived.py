"""Run a real keepalived (2.2.x) as the VRRP peer of vrrpd in a lab node.

``Keepalived(node, tmp, vrid=51, priority=100, interval=1.0, vips=[...], version=3)`` writes a
``keepalived.conf`` for one ``vrrp_instance`` and runs the VRRP subsystem only, in the
foreground, logging to a file the test can grep::

    keepalived --vrrp --dont-fork --log-console --log-detail --no-syslog
               --use-file CONF --pid PID --vrrp_pid VRRP_PID

inside the node's namespace.  ``stop()`` sends SIGTERM: keepalived's master then sends a
priority-0 advert and releases its VIPs (RFC 5798 §6.4.3), like vrrpd does.

keepalived's state is read from its log ("Entering MASTER STATE" / "Entering BACKUP STATE");
which node holds the VIPs is read from the kernel with :class:`daemons.AddressProbe`.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from lab.daemons import terminate, wait_for
from lab.netns import Node

KEEPALIVED = "/usr/sbin/keepalived"  # Debian 12's keepalived 2.2.7: the lab and benchmarks run it


def realtime_line(priority: int) -> str:
    """The ``global_defs`` line that runs keepalived's VRRP process SCHED_RR at ``priority``
    (``vrrp_rt_priority``, as vrrpd's ``realtime_priority:``); nothing for 0."""
    return f"\n    vrrp_rt_priority {priority}" if priority else ""

# What keepalived 2.2 logs when it refuses or distrusts an advert (vrrp.c, vrrp_check_packet):
# bad checksum, TTL, version, interval, address list, auth, length.  Compared case-blind.
COMPLAINTS = re.compile(
    r"invalid (vrrp|ttl|checksum|packet|version)|checksum|ttl\b|wrong (version|type|auth|ttl)"
    r"|version (mismatch|error)|interval mismatch|advertisement interval|not present in"
    r"|address (list|count|mismatch)|received an? (invalid|lower)? ?(packet|advert) "
    r"with (invalid|wrong)|too short|packet length|auth",
    re.IGNORECASE)


class Keepalived:
    """One keepalived process running one VRRP instance on ``node``'s ``eth0``
    (``realtime_priority``: its VRRP process runs SCHED_RR, ``vrrp_rt_priority``)."""

    def __init__(self, node: Node, tmp: Path, *, vrid: int, priority: int, interval: float,
                 vips: list[str], version: int = 3, preempt: bool = True,
                 name: str = "VI_1", use_vmac: bool = False, realtime_priority: int = 0
                 ) -> None:
        self.node = node
        self.name = name
        self.dir = tmp / f"{node.name}-keepalived"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.log_path = self.dir / "keepalived.log"
        self.pid = self.dir / "keepalived.pid"
        self.vrrp_pid = self.dir / "vrrp.pid"
        self.proc: subprocess.Popen[bytes] | None = None
        # With use_vmac keepalived puts the VIPs on its own macvlan (vrrp.<vrid>).
        realtime = realtime_line(realtime_priority)
        vip_lines = "\n".join(f"        {v}" + ("" if use_vmac else f" dev {node.ifname}")
                               for v in vips)
        self.conf.write_text(f"""\
global_defs {{
    router_id {node.name}
    vrrp_version {version}
    vrrp_garp_master_delay 5
    script_user root
    enable_script_security{realtime}
}}
vrrp_instance {name} {{
    state BACKUP
    interface {node.ifname}
    virtual_router_id {vrid}
    priority {priority}
    advert_int {interval:g}
    version {version}
    {"" if preempt else "nopreempt"}
    {"use_vmac" if use_vmac else ""}
    virtual_ipaddress {{
{vip_lines}
    }}
}}
""")

    def start(self) -> Keepalived:
        with self.log_path.open("ab") as log:
            self.proc = self.node.ns.popen(
                [KEEPALIVED, "--vrrp", "--dont-fork", "--log-console", "--log-detail",
                 "--no-syslog", "--dont-respawn", "--use-file", str(self.conf),
                 "--pid", str(self.pid), "--vrrp_pid", str(self.vrrp_pid)],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._running, 10, f"keepalived on {self.node.name} to start", poll=0.02)
        return self

    def _running(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"keepalived on {self.node.name} exited "
                                 f"{self.proc.returncode}:\n{self.log()}")
        return f"({self.name}) Entering" in self.log()

    def state(self) -> str:
        """The last state keepalived logged for the instance (MASTER, BACKUP, FAULT...)."""
        found = re.findall(rf"\({re.escape(self.name)}\) Entering (\w+) STATE", self.log())
        return found[-1] if found else "INIT"

    def wait_state(self, state: str, timeout: float = 10) -> float:
        return wait_for(lambda: self.state() == state, timeout,
                        f"keepalived on {self.node.name} to be {state}", poll=0.01)

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)  # `ip netns exec` execs keepalived: this is its parent

    def stop(self, timeout: float = 10) -> int:
        return terminate(self.proc, signal.SIGTERM, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def complaints(self, start: int = 0, end: int | None = None) -> list[str]:
        """Log lines (from character ``start`` to ``end``) objecting to a received advert."""
        return [line for line in self.log()[start:end].splitlines()
                if COMPLAINTS.search(line)]
