"""The lab: network namespaces joined by veth pairs to a bridge (tests, demo, benchmarks).

Topology built by :class:`Topology` (one per test, everything inside namespaces it creates)::

    ns <prefix>-sw   "the switch"   br0 (bridge, STP and multicast snooping off)
                                     |-- port lb1 ---- veth ---- eth0 in ns <prefix>-lb1
                                     |-- port lb2 ---- veth ---- eth0 in ns <prefix>-lb2

``set_link(node, up)`` pulls a node's cable (its port goes down, the node loses carrier);
``set_isolated(node, on)`` cuts it off from the other isolated ports with carrier kept.
A second network is another bridge in the same switch namespace (:meth:`Topology.add_bridge`):
``add_node(..., bridge=...)`` puts a node on it, :meth:`Topology.cable` gives an existing node a
second interface there (port ``<node>-<ifname>``), and ``set_link(node, up, ifname)`` pulls
that cable alone.

Namespace names are unique per topology (``vt`` + 6 random hex digits), so parallel or crashed
runs never collide; interface names only need to be unique inside their namespace, so every
node has an ``eth0`` and every switch port is named after its node.  Nothing is created in the
root namespace and :meth:`Topology.close` deletes the namespaces (and with them every link)
even when setup failed half-way.

Running code inside a namespace -- pick whichever fits:

* ``ns.run("ip addr")`` / ``ns.popen([...])``: a subprocess under ``ip netns exec`` (daemons,
  ``ip``, ``sysctl``, HAProxy, keepalived).
* ``with ns.entered(): ...``: the *calling thread* switches namespace with setns(2) and
  switches back on exit.  Sockets (including pyroute2 netlink sockets) opened inside keep
  working in that namespace after the block, so one test can hold sockets in two nodes and
  drive them from one asyncio loop.  Lookups by name (``if_nametoindex``, netlink dumps) act in
  the namespace current when they run, so do them inside the block.

IPv6 duplicate address detection is switched off in node namespaces before their links exist,
and :meth:`Topology.add_node` waits for the link-local address, so IPv6 works at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface
from typing import Self

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)

Command = str | Sequence[str]


def _argv(cmd: Command) -> list[str]:
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Namespace:
    """A named network namespace (``ip netns``); :meth:`create` it, always :meth:`delete` it."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create(cls, name: str) -> Namespace:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        ns = cls(name)
        ns.run("ip link set lo up")
        return ns

    def pids(self) -> list[int]:
        """The processes running in the namespace."""
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    def delete(self, grace: float = 0.3) -> None:
        """End what still runs inside (SIGTERM, then SIGKILL after ``grace`` s), then delete
        the namespace; its interfaces (and veth peers elsewhere) go with it.

        A process outlives ``ip netns delete`` (it keeps the namespace alive), so a teardown
        that missed a daemon, HAProxy or a probe would otherwise leave it running.
        """
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if pids and sig == signal.SIGTERM:
                time.sleep(grace)
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)

    def exec_prefix(self) -> list[str]:
        """What runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def run(self, cmd: Command, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in the namespace and return its output; raise with stderr on failure."""
        done = subprocess.run([*self.exec_prefix(), *_argv(cmd)], capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode:
            raise RuntimeError(f"[{self.name}] {shlex.join(_argv(cmd))} exited "
                               f"{done.returncode}: {done.stderr.strip()}")
        return done

    def popen(self, cmd: Command, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in the namespace (``subprocess.Popen`` keyword arguments pass on)."""
        return subprocess.Popen([*self.exec_prefix(), *_argv(cmd)],
                                **kwargs)  # type: ignore[call-overload]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Switch the calling thread into this namespace for the block (see module docs)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(os.path.join(NETNS_DIR, self.name), os.O_RDONLY)
        try:
            _setns(target)
            yield
        finally:
            _setns(home)
            os.close(target)
            os.close(home)

    def sysctl(self, key: str, value: str | int) -> None:
        self.run(["sysctl", "-qw", f"{key}={value}"])

    def addresses(self, ifname: str) -> list[dict]:
        """``ip -j addr show dev ifname``'s ``addr_info`` list (flags like ``tentative``)."""
        out = self.run(["ip", "-j", "addr", "show", "dev", ifname]).stdout
        return json.loads(out)[0]["addr_info"]


@dataclass
class Node:
    """A host on the switch: namespace ``ns`` with ``ifname`` cabled to switch port ``port``."""

    name: str
    ns: Namespace
    ifname: str
    port: str
    ipv4: IPv4Interface
    ipv6: IPv6Interface

    def link_local(self) -> str | None:
        """The usable (not tentative) link-local address of ``ifname``, if any."""
        for addr in self.ns.addresses(self.ifname):
            if addr.get("scope") == "link" and addr["family"] == "inet6" \
                    and not addr.get("tentative"):
                return addr["local"]
        return None


class Topology:
    """Namespaces cabled to one bridge.  Use as a context manager; cleanup always runs."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or "vt" + secrets.token_hex(3)
        self.namespaces: list[Namespace] = []
        self.nodes: dict[str, Node] = {}
        try:
            self.switch = self._namespace("sw")
            self.switch.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
            self.switch.run("ip link add br0 type bridge stp_state 0 forward_delay 0 "
                            "mcast_snooping 0")
            self.switch.run("ip link set br0 up")
        except BaseException:
            self.close()
            raise

    def _namespace(self, role: str) -> Namespace:
        ns = Namespace.create(f"{self.prefix}-{role}")
        self.namespaces.append(ns)
        return ns

    def add_bridge(self, bridge: str) -> None:
        """Another switch (network) in the switch namespace, configured like ``br0``."""
        self.switch.run(["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0",
                         "forward_delay", "0", "mcast_snooping", "0"])
        self.switch.run(["ip", "link", "set", bridge, "up"])

    def add_node(self, name: str, ipv4: str, ipv6: str, ifname: str = "eth0",
                 timeout: float = 5.0, bridge: str = "br0") -> Node:
        """Create node ``name`` and cable its ``ifname`` to switch port ``name`` of
        ``bridge``."""
        ns = self._namespace(name)
        ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
        ns.sysctl("net.ipv6.conf.default.accept_dad", 0)
        node = Node(name, ns, ifname, name, IPv4Interface(ipv4), IPv6Interface(ipv6))
        self._cable(node, ifname, name, bridge, ipv4, ipv6)
        deadline = time.monotonic() + timeout
        while node.link_local() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: no link-local address on {ifname} in {timeout}s")
            time.sleep(0.02)
        self.nodes[name] = node
        return node

    def cable(self, node: str, ifname: str, bridge: str, ipv4: str, ipv6: str) -> None:
        """A second interface ``ifname`` of ``node``, cabled to port ``<node>-<ifname>`` of
        ``bridge``."""
        self._cable(self.nodes[node], ifname, f"{node}-{ifname}", bridge, ipv4, ipv6)

    def _cable(self, node: Node, ifname: str, port: str, bridge: str, ipv4: str,
               ipv6: str) -> None:
        self.switch.run(["ip", "link", "add", port, "type", "veth",
                         "peer", "name", ifname, "netns", node.ns.name])
        self.switch.run(["ip", "link", "set", port, "master", bridge, "up"])
        node.ns.run(["ip", "addr", "add", ipv4, "dev", ifname])
        node.ns.run(["ip", "addr", "add", ipv6, "dev", ifname, "nodad"])
        node.ns.run(["ip", "link", "set", ifname, "up"])

    def set_link(self, node: str, up: bool, ifname: str | None = None) -> None:
        """Bring ``node``'s switch port down or up (of its ``ifname`` cable, default its
        first): the node's interface loses/gets carrier."""
        n = self.nodes[node]
        port = n.port if ifname in (None, n.ifname) else f"{node}-{ifname}"
        self.switch.run(["ip", "link", "set", port, "up" if up else "down"])

    def set_isolated(self, node: str, isolated: bool) -> None:
        """Bridge port isolation of ``node``'s switch port (carrier stays up).

        Isolated ports forward nothing to each other, but still to and from ports that are
        not isolated: isolating two nodes partitions them from each other while a third node
        still sees both.
        """
        self.switch.run(["bridge", "link", "set", "dev", self.nodes[node].port, "isolated",
                         "on" if isolated else "off"])

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            ns.delete()
        self.namespaces.clear()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LabSetup:
    """A lab built on entry and torn down on exit, even when building fails half-way.

    Subclasses implement :meth:`_build` and :meth:`close` (which must cope with a partial
    build).
    """

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _build(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
