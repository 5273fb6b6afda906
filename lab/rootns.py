"""A lab node in the initial network namespace, for what works nowhere else.

keepalived's ``vrrp_track_process`` learns of process starts and exits from the kernel's
process-event connector (NETLINK_CONNECTOR, CN_IDX_PROC), which answers only in the initial
network namespace: in any other keepalived logs "Failed to set/clear process event listen -
errno 111" (connection refused) and the instance stays in FAULT.  To measure it, one node of
the lab lives in the root namespace.

The machine is shared, so that node touches only what it creates (RULES.md):

* one veth pair named ``vr<lane>`` + 4 random hex digits, its peer a port of the lab's switch
  (in the switch namespace), so the root end is on the lab's bridge and nothing else;
* IPv6 only, in 2001:db8:<lane>::/64 (:data:`PREFIX`): never an IPv4 address or route in the
  root namespace (192.0.2.0/24 and 203.0.113.0/24 are the host's own networks there);
* DAD off on that interface only (its per-interface sysctl), so addresses work at once;
* removed in :meth:`RootLink.close` -- the address, the VIP a daemon may have left and any
  route go with the link -- and also when the switch namespace is deleted.

:class:`RootNamespace` stands in for :class:`lab.netns.Namespace` where a lab helper runs a
command in a node (``node.ns.run``/``popen``): here it runs the command directly.  It refuses
what would reach beyond the lab: listing or killing "its" processes, deleting it.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Interface

from lab.netns import Namespace, Node, Topology

LANE = "bench"
PREFIX = "2001:db8:bec::/64"  # bench's root-namespace prefix (RULES.md: 2001:db8:<lane>::/64)


class RootNamespace(Namespace):
    """The initial network namespace, seen through the :class:`Namespace` interface."""

    def __init__(self) -> None:
        super().__init__("root namespace")

    def exec_prefix(self) -> list[str]:
        return []  # the lab runs in the root namespace already

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        yield  # the lab runs in the root namespace already

    def pids(self) -> list[int]:
        raise RuntimeError("the root namespace's processes are not the lab's to list")

    def delete(self, grace: float = 0.3) -> None:
        raise RuntimeError("the root namespace is never deleted")

    def sysctl(self, key: str, value: str | int) -> None:
        raise RuntimeError("no host-wide sysctl in the root namespace; see RootLink")


class RootLink:
    """Node ``name`` in the root namespace, cabled to ``topology``'s switch (see module doc).

    ``host`` is the node's address inside :data:`PREFIX` (``"::11"``).  Use as a context
    manager, or call :meth:`close`; the node is ``self.node``.
    """

    def __init__(self, topology: Topology, name: str, host: str, timeout: float = 5.0) -> None:
        self.topology = topology
        self.link = f"vr{LANE}{secrets.token_hex(2)}"
        self.ns = RootNamespace()
        self.address = IPv6Interface(f"{address(host)}/{IPv6Interface(PREFIX).network.prefixlen}")
        topology.switch.run(["ip", "link", "add", name, "type", "veth",
                             "peer", "name", self.link, "netns", "1"])
        try:
            topology.switch.run(["ip", "link", "set", name, "master", "br0", "up"])
            with open(f"/proc/sys/net/ipv6/conf/{self.link}/accept_dad", "w") as f:
                f.write("0")
            self.ns.run(["ip", "addr", "add", str(self.address), "dev", self.link, "nodad"])
            self.ns.run(["ip", "link", "set", self.link, "up"])
            # Node wants an IPv4 interface; this one has none in the root namespace.
            self.node = Node(name, self.ns, self.link, name, IPv4Interface("0.0.0.0/32"),
                             self.address)
            deadline = time.monotonic() + timeout
            while self.node.link_local() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no link-local address on {self.link} in {timeout}s")
                time.sleep(0.02)
        except BaseException:
            self.close()
            raise
        topology.nodes[name] = self.node

    def close(self) -> None:
        """Delete the link (and with it every address and route on it)."""
        subprocess.run(["ip", "link", "del", self.link], capture_output=True, check=False)

    def __enter__(self) -> RootLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def address(host: str) -> str:
    """The address ``host`` (``"::100"``) inside :data:`PREFIX`, without a prefix length."""
    return str(IPv6Interface(PREFIX).network.network_address
               + int(IPv6Interface(f"{host}/128").ip))


NETLINK_CONNECTOR = 11  # linux/netlink.h
CN_IDX_PROC = CN_VAL_PROC = 1  # linux/connector.h: the process-event connector
PROC_CN_MCAST_LISTEN = 1  # linux/cn_proc.h
NLMSG_DONE = 3


def proc_connector() -> str:
    """Whether the process-event connector answers in the calling thread's network namespace:
    "works" (a process started here was reported) or the reason it does not, as keepalived's
    ``vrrp_track_process`` would meet it (errno 111 outside the initial namespace)."""
    op = struct.pack("I", PROC_CN_MCAST_LISTEN)
    cn_msg = struct.pack("IIIIHH", CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR) as s:
            s.bind((0, CN_IDX_PROC))
            s.send(struct.pack("IHHII", 16 + len(cn_msg), NLMSG_DONE, 0, 0, 0) + cn_msg)
            subprocess.run(["true"], check=True)
            s.settimeout(2)
            s.recv(4096)
    except TimeoutError:
        return "no process event within 2 s"
    except OSError as exc:
        return f"{exc.strerror} (errno {exc.errno})"
    return "works"
