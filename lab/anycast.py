"""The anycast fleet in network namespaces (issue 18, README.md "Scaling out"): the shipped
files, run for real::

                                          switch (br0), 192.0.2.0/24
    client 198.51.100.10 ---- router ------+-- lb1 192.0.2.11  lo 203.0.113.10/32
             eth0       eth1 .1   eth0 .1  +-- lb2 192.0.2.12  lo 203.0.113.10/32
                                           +-- lb3 192.0.2.13  lo 203.0.113.10/32
                                           +-- pacs1 192.0.2.30, pacs2 192.0.2.31

* router: FRR zebra + bfdd + bgpd running **etc/frr/anycast-router.conf** unchanged; zebra
  installs the ECMP route to 203.0.113.10/32 into the kernel; forwarding on,
  ``fib_multipath_hash_policy=1`` (L4 hash).
* lb1..lb3: FRR zebra + bfdd + bgpd running **etc/frr/anycast-lb1.conf** with the node's
  hostname and router-id; HAProxy running **etc/haproxy/haproxy-anycast.cfg** with the
  runtime paths of :func:`lab.pacs.lab_haproxy_config` (``-L lbN``: stick tables replicated
  to all three); vrrpd running **etc/vrrpd/anycast-lb1.yaml** with the lab's paths (its
  ``bgp.socket`` is the node's bgpd).
* pacs1, pacs2: ``scripts/pacs-backend`` (:func:`lab.pacs.start_pacs_backends`).
* client: behind the router, default route via it; :meth:`AnycastLab.client` probes the
  service address (:mod:`lab.client`), each answer naming the node (``X-Remote-Addr``).

``AnycastLab`` is a context manager; every namespace, daemon and FRR path space is gone after
``with``.  Nothing runs in the root namespace.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from typing import Any

import yaml

from lab.client import ClientProber
from lab.daemons import REPO, Vrrpd, wait_for
from lab.frr import FrrNode
from lab.haproxy_pair import HAProxy
from lab.netns import LabSetup, Node, Topology
from lab.pacs import (
    MASTER_SOCKET,
    RUN_ENV,
    lab_haproxy_config,
    servers_down,
    start_pacs_backends,
)

SERVICE = "203.0.113.10"
ROUTER = ("router", "192.0.2.1/24", "2001:db8:18::1/64")
LBS = {"lb1": ("192.0.2.11/24", "2001:db8:18::11/64"),
       "lb2": ("192.0.2.12/24", "2001:db8:18::12/64"),
       "lb3": ("192.0.2.13/24", "2001:db8:18::13/64")}
CLIENT_NET = ("198.51.100.1/24", "198.51.100.10/24")  # router eth1, client eth0
LB_NAMES = {v4.split("/")[0]: name for name, (v4, _v6) in LBS.items()}
FRR_CONF = REPO / "etc" / "frr"
HAPROXY_CONF = REPO / "etc" / "haproxy" / "haproxy-anycast.cfg"
VRRPD_CONF = REPO / "etc" / "vrrpd" / "anycast-lb1.yaml"
# Top-level FRR configuration words -> the daemon that reads them; everything indented below
# one goes with it; the rest (frr defaults, hostname, log) goes to every daemon.
FRR_OWNERS = {"bfd": "bfdd", "router bgp": "bgpd", "route-map": "bgpd", "ip prefix-list": "bgpd",
              "bgp": "bgpd", "ip forwarding": "zebra", "interface": "zebra"}
DAEMONS = ("zebra", "bfdd", "bgpd")


def split_frr_config(text: str) -> dict[str, str]:
    """An integrated ``frr.conf`` -> each daemon's part (the lab runs the daemons with
    ``-f``, as ``frr-reload`` would hand each its own)."""
    parts: dict[str, list[str]] = {d: [] for d in DAEMONS}
    owner: str | None = None
    for line in text.splitlines():
        if line.startswith("!") or not line.strip():
            continue
        if line == "exit":  # closes the top-level block
            if owner is not None:
                parts[owner].append(line)
            owner = None
            continue
        if not line.startswith(" "):
            owner = next((d for word, d in FRR_OWNERS.items() if line.startswith(word)), None)
        for daemon in DAEMONS if owner is None else (owner,):
            parts[daemon].append(line)
    return {d: "\n".join(lines) + "\n" for d, lines in parts.items()}


def node_frr_config(name: str) -> str:
    """etc/frr/anycast-lb1.conf for node ``name``: its hostname and router-id."""
    address = LBS[name][0].split("/")[0]
    text = (FRR_CONF / "anycast-lb1.conf").read_text()
    return text.replace("hostname lb1", f"hostname {name}").replace(
        "bgp router-id 192.0.2.11", f"bgp router-id {address}")


class AnycastLab(LabSetup):
    """The fleet (module docs).  ``workdir`` holds one directory per node."""

    def __init__(self, workdir: Path, prefix: str | None = None) -> None:
        self.workdir = workdir
        self.prefix = prefix
        self.lab: Topology | None = None
        self.frr: dict[str, FrrNode] = {}
        self.haproxy: dict[str, HAProxy] = {}
        self.vrrpd: dict[str, Vrrpd] = {}
        self.backends: list[subprocess.Popen[bytes]] = []

    # ---- building ------------------------------------------------------------------------

    def _build(self) -> None:
        self.lab = lab = Topology(self.prefix)
        router = lab.add_node(*ROUTER)
        for name, (v4, v6) in LBS.items():
            node = lab.add_node(name, v4, v6)
            node.ns.run(["ip", "addr", "add", f"{SERVICE}/32", "dev", "lo"])
            node.ns.run(["ip", "route", "add", "default", "via", ROUTER[1].split("/")[0]])
        self.backends = start_pacs_backends(
            lab, lambda name: self.workdir / name / "pacs-backend.log")
        self._add_client(router)
        for key in ("net.ipv4.ip_forward", "net.ipv4.fib_multipath_hash_policy"):
            router.ns.sysctl(key, 1)
        self.frr["router"] = FrrNode(router, split_frr_config(
            (FRR_CONF / "anycast-router.conf").read_text())).start(*DAEMONS)
        for name in LBS:
            self.frr[name] = FrrNode(self.node(name), split_frr_config(
                node_frr_config(name))).start(*DAEMONS)
            self.haproxy[name] = self._haproxy(name)
            self.haproxy[name].start()
        for name in LBS:
            wait_for(lambda name=name: not servers_down(self.haproxy[name]), 15,
                     f"HAProxy on {name} to see every PACS server UP", poll=0.05)
            self.vrrpd[name] = Vrrpd(self.node(name), self.workdir, [],
                                     **self.vrrpd_config(name))
            self.vrrpd[name].start()
        self.wait_ecmp(set(LBS), 30)

    def _add_client(self, router: Node) -> None:
        assert self.lab is not None
        ns = self.lab._namespace("client")
        router.ns.run(["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth0",
                       "netns", ns.name])
        router.ns.run(["ip", "addr", "add", CLIENT_NET[0], "dev", "eth1"])
        router.ns.run(["ip", "link", "set", "eth1", "up"])
        ns.run(["ip", "addr", "add", CLIENT_NET[1], "dev", "eth0"])
        ns.run(["ip", "link", "set", "eth0", "up"])
        ns.run(["ip", "route", "add", "default", "via", CLIENT_NET[0].split("/")[0]])
        self.lab.nodes["client"] = Node("client", ns, "eth0", "", IPv4Interface(CLIENT_NET[1]),
                                        IPv6Interface("2001:db8:19::10/64"))

    def _haproxy(self, name: str) -> HAProxy:
        run = self.workdir / name / "haproxy"
        return HAProxy(self.node(name), run, lab_haproxy_config(HAPROXY_CONF.read_text()),
                       args=["-L", name, "-S", str(run / MASTER_SOCKET)], env={RUN_ENV: str(run)})

    def vrrpd_config(self, name: str) -> dict[str, Any]:
        """etc/vrrpd/anycast-lb1.yaml with the lab's paths (HAProxy's, bgpd's socket)."""
        doc: dict[str, Any] = yaml.safe_load(VRRPD_CONF.read_text())
        for key in ("node", "control_socket", "state_dir"):  # the Vrrpd runner sets these
            doc.pop(key)
        hap = self.haproxy[name]
        doc["tracks"]["haproxy"].update(pidfile=str(hap.pidfile), socket=str(hap.socket))
        doc["bgp"]["socket"] = str(self.frr[name].socket("bgpd"))
        for group in doc["anycast"]:
            group["haproxy_socket"] = str(hap.socket)
        return doc

    # ---- using ---------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        assert self.lab is not None
        return self.lab.nodes[name]

    def ecmp(self) -> set[str]:
        """The nodes in the router's kernel route to the service address now."""
        routes = json.loads(self.node("router").ns.run(
            ["ip", "-j", "route", "show", f"{SERVICE}/32"]).stdout or "[]")
        hops = [h.get("gateway") for r in routes for h in r.get("nexthops", [r])]
        return {LB_NAMES[h] for h in hops if h in LB_NAMES}

    def wait_ecmp(self, nodes: set[str], timeout: float = 10) -> float:
        """Wait until the router's ECMP set is ``nodes``; the seconds it took."""
        try:
            return wait_for(lambda: self.ecmp() == nodes, timeout,
                            f"the router's ECMP set to be {sorted(nodes)}", poll=0.005)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it is {sorted(self.ecmp())}\n{self.logs()}") from None

    def status(self, name: str) -> dict[str, Any]:
        """The node's anycast group ``pacs`` as ``vrrpctl status`` shows it."""
        doc: dict[str, Any] = self.vrrpd[name].ctl("status")["anycast"][0]
        return doc

    def kill_haproxy(self, name: str) -> None:
        self.haproxy[name].kill(signal.SIGKILL)

    def restart_haproxy(self, name: str) -> None:
        self.haproxy[name].start()
        wait_for(lambda: not servers_down(self.haproxy[name]), 15,
                 f"HAProxy on {name} to see every PACS server UP", poll=0.05)

    def cut(self, name: str, off: bool = True) -> None:
        """Pull ``name``'s cable (its switch port down) or plug it back; plugged back, wait
        until its HAProxy sees the PACS servers UP again (its health checks failed while the
        cable was out, and a request stuck to a DOWN server is refused)."""
        assert self.lab is not None
        self.lab.set_link(name, not off)
        if not off:
            wait_for(lambda: not servers_down(self.haproxy[name]), 30,
                     f"HAProxy on {name} to see every PACS server UP again", poll=0.05)

    @contextlib.contextmanager
    def client(self, **kwargs: Any) -> Iterator[ClientProber]:
        """A :class:`lab.client.ClientProber` in the client node, probing the service."""
        kwargs.setdefault("lbs", LB_NAMES)
        prober = ClientProber(self.node("client"), f"http://{SERVICE}/", **kwargs)
        prober.start()
        try:
            yield prober
        finally:
            prober.stop()

    def logs(self) -> str:
        """vrrpd's and the router's bgpd logs, for a failing test's report."""
        parts = [f"---- {n} vrrpd ----\n{d.log()[-4000:]}" for n, d in self.vrrpd.items()]
        if "router" in self.frr:
            parts.append(f"---- router bgpd ----\n{self.frr['router'].log('bgpd')[-3000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for vrrpd in self.vrrpd.values():
            vrrpd.stop()
        for hap in self.haproxy.values():
            hap.stop()
        for frr in self.frr.values():
            frr.stop()
        if self.lab is not None:
            self.lab.close()
        for proc in self.backends:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
