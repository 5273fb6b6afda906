"""Run real ``vrrpd`` processes in lab nodes and watch what they do to the kernel.

``Vrrpd(node, tmp_path, instances=[...])`` writes a config, starts ``python -m vrrpd`` inside the
node's namespace and talks to it over its control socket (a file, so reachable from the test).
:class:`AddressProbe` holds a netlink socket opened *inside* a node's namespace, so the test can
poll for a VIP every millisecond without spawning ``ip``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import yaml
from pyroute2 import IPRoute

from lab.netns import Node
from vrrpd.control.client import ControlError, request
from vrrpd.daemon.persist import write_atomic

REPO = Path(__file__).resolve().parents[1]  # the checkout: the lab runs from it, never installed
# SCHED_RR priority for the daemons of lab tests that hold them to 0.1 s VRRP timers (vrrpd
# `realtime_priority:`, keepalived `vrrp_rt_priority`), as the README advises for a host whose
# cores are busy: scripts/stress keeps both cores busy, and there a normally scheduled vrrpd
# was once 100 ms late for a takeover and once missed a 0.4 s hand-over window, so the tests
# measured the machine instead of the protocol.  (FRR 8.4's vrrpd has no such setting.)
REALTIME = 10


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             poll: float = 0.001) -> float:
    """Poll ``predicate`` until true; return the seconds it took, or fail naming ``what``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.3f}s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - start


def replace_file(path: Path, text: str) -> None:
    """Install a new version of a watched file the way config management does (write a
    temporary file, rename it over ``path``), so a poller never reads it half written.
    (``Path.write_text`` truncates first: on a busy machine config sync once pushed the empty
    file it caught in between, and the test read the peer's refusal of that.)"""
    write_atomic(path, text.encode(), mode=0o644)


def terminate(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
              timeout: float = 10) -> int:
    """Send ``sig`` to a daemon that is still running, wait for it (SIGKILL after
    ``timeout`` seconds) and return its exit status; 0 if it never started."""
    if proc is None:
        return 0
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)  # `ip netns exec` execs the daemon: the Popen pid is the daemon
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class AddressProbe:
    """A netlink socket in ``node``'s namespace: which addresses does the node hold?

    Every interface counts, not just ``node.ifname``: with a virtual MAC (vrrpd's
    ``virtual_mac``, keepalived's ``use_vmac``) the VIPs live on a macvlan link.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        with node.ns.entered():
            self.ipr = IPRoute()

    def addresses(self) -> set[str]:
        return {f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}" for m in self.ipr.get_addr()}

    def has(self, vip: str) -> bool:
        return str(ip_interface(vip)) in self.addresses()

    def close(self) -> None:
        self.ipr.close()


class Vrrpd:
    """One vrrpd process in a lab node."""

    def __init__(self, node: Node, tmp: Path, instances: list[dict[str, Any]],
                 **top: Any) -> None:
        self.node = node
        self.dir = tmp / node.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "vrrpd.sock"
        self.config_path = self.dir / "vrrpd.yaml"
        self.log_path = self.dir / "vrrpd.log"
        self.doc: dict[str, Any] = {"node": node.name, "control_socket": str(self.socket),
                                    "state_dir": str(self.dir / "state"),
                                    "instances": instances, **top}
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_config()

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.doc, sort_keys=False))

    def start(self, wait: bool = True, wrapper: Sequence[str] = ()) -> Vrrpd:
        """Start the daemon (``wrapper``: a command that execs it, e.g. ``setpriv ...``)."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.proc = self.node.ns.popen(
                [*wrapper, sys.executable, "-m", "vrrpd", "-c", str(self.config_path),
                 "--log-level", "debug"], stdout=log, stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_for(self._answers, 10, f"vrrpd on {self.node.name} to answer", poll=0.02)
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"vrrpd on {self.node.name} exited {self.proc.returncode}:\n"
                                 f"{self.log()}")
        try:
            self.ctl("version")
        except (ControlError, OSError):
            return False
        return True

    def ctl(self, cmd: str, **args: Any) -> dict[str, Any]:
        result: dict[str, Any] = request(str(self.socket), cmd, args)
        return result

    def instance(self, name: str) -> dict[str, Any]:
        return next(i for i in self.ctl("status")["instances"] if i["name"] == name)

    def state(self, name: str) -> str:
        return str(self.instance(name)["state"])

    def wait_state(self, name: str, state: str, timeout: float = 10) -> float:
        return wait_for(lambda: self.state(name) == state, timeout,
                        f"{self.node.name}/{name} to be {state}", poll=0.01)

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        # `ip netns exec` execs the daemon, so the Popen pid is vrrpd itself.
        os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        return terminate(self.proc, sig, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
