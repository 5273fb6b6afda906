"""Run FRR (Debian 12's frr 8.4) daemons in lab nodes: its vrrpd as the VRRP peer of vrrpd,
and zebra + bfdd + bgpd for the anycast lab (:mod:`lab.anycast`).

:class:`FrrNode` runs any set of FRR daemons in a node's namespace with their own path space;
:class:`FrrVrrp` is zebra + vrrpd on it.

``FrrVrrp(node, tmp, vrid=51, priority=100, interval=0.1, vips=[...], version=3)`` prepares
what FRR needs and runs ``zebra`` and ``vrrpd`` in the node's namespace, in the foreground,
with their own path space (``-N <namespace>``): zserv socket, config, pid, vty and log files
all in ``/run/frr/<namespace>/`` (FRR runs as user ``frr``, which cannot enter pytest's
private temporary directories), removed by :meth:`FrrVrrp.stop`.

FRR's vrrpd does not create its macvlan links (FRR's doc/user/vrrp.rst, "System
Configuration"): one per address family, on the interface, bridge mode, the virtual router MAC,
the VIPs on it and ``addr_gen_mode`` random (FRR sends IPv6 adverts from the macvlan's own
link-local, which must differ between routers).  FRR keeps it in ``protodown`` while Backup.
The runner creates them like that, named like vrrpd's (``vrrp4-<ifindex>-<vrid>``).

FRR's state comes from its log (``debug vrrp protocol``: ``[VRID 51] [IPv4] Backup ->
Master``); :meth:`complaints` lists what FRR said about adverts it did not like.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from ipaddress import ip_interface
from pathlib import Path

from lab.daemons import terminate, wait_for
from lab.netns import Node

FRR = Path("/usr/lib/frr")
RUN = Path("/run/frr")
TRANSITION = re.compile(r"\[VRID (\d+)\] \[IPv([46])\] (\w+) -> (\w+)")
# What FRR 8.4's vrrpd logs about a received advert it refuses or distrusts (vrrp_packet.c,
# vrrp.c vrrp_recv_advertisement): a line about an advertisement / packet / checksum with
# one of these words.  Compared case-blind.
ABOUT_ADVERTS = re.compile(r"advertisement|packet|checksum|datagram", re.IGNORECASE)
COMPLAINTS = re.compile(r"discard|invalid|mismatch|malformed|bad |error|failed|wrong|"
                        r"does not match|too short|unknown", re.IGNORECASE)
# ... except the election itself: RFC 5798 §6.4.2/§6.4.3 discard a lower-priority advert
# ("Discarding advertisement from 192.0.2.11 (100 < 150 & preempt = true)").
ELECTION = re.compile(r"Discarding advertisement from \S+ \(\d+ <=? \d+ ")


class FrrNode:
    """FRR daemons in ``node``'s namespace, path space ``/run/frr/<namespace>/`` (``-N``).

    ``configs`` maps a daemon (``zebra``, ``bfdd``, ``bgpd``, ``vrrpd``) to its configuration
    text; :meth:`start` runs them in that order (zebra first: the others connect to its
    socket).  :meth:`vty` asks one of them through ``vtysh``.
    """

    def __init__(self, node: Node, configs: dict[str, str]) -> None:
        self.node = node
        self.dir = RUN / node.ns.name
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir, "frr", "frr")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, text in configs.items():
            (self.dir / f"{name}.conf").write_text(text)

    def socket(self, daemon: str) -> Path:
        """The daemon's vty socket (what vrrpd's FRR speaker talks to, for bgpd)."""
        return self.dir / f"{daemon}.vty"

    def start_daemon(self, name: str) -> None:
        with (self.dir / f"{name}.out").open("ab") as out:
            self.procs[name] = self.node.ns.popen(
                [str(FRR / name), "-N", self.node.ns.name, "-f", str(self.dir / f"{name}.conf"),
                 "-i", str(self.dir / f"{name}.pid"), "--vty_socket", str(self.dir),
                 "--log", f"file:{self.dir / name}.log", "--log-level", "debug"],
                stdout=out, stderr=subprocess.STDOUT)
        ready = self.dir / ("zserv.api" if name == "zebra" else f"{name}.vty")
        wait_for(ready.exists, 10, f"FRR {name} on {self.node.name}", poll=0.02)

    def start(self, *names: str) -> FrrNode:
        for name in names:
            self.start_daemon(name)
        return self

    def stop_daemon(self, name: str, sig: int = signal.SIGTERM) -> int:
        proc = self.procs.pop(name, None)
        return terminate(proc, sig) if proc is not None else 0

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop_daemon(name)
        shutil.rmtree(self.dir, ignore_errors=True)

    def vty(self, daemon: str, *commands: str) -> str:
        """``vtysh -d daemon -c ...`` in the node's path space; its output."""
        argv = ["vtysh", "-N", self.node.ns.name, "-d", daemon]
        for command in commands:
            argv += ["-c", command]
        return self.node.ns.run(argv).stdout

    def log(self, daemon: str) -> str:
        path = self.dir / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class FrrVrrp:
    """zebra + vrrpd of FRR on ``node``'s ``eth0`` with one virtual router."""

    def __init__(self, node: Node, *, vrid: int, priority: int, interval: float,
                 vips: list[str], version: int = 3, preempt: bool = True) -> None:
        self.node = node
        self.vrid = vrid
        self.vips = [ip_interface(v) for v in vips]
        self.family = self.vips[0].version
        keyword = "ip" if self.family == 4 else "ipv6"
        lines = [f" vrrp {vrid} version {version}", f" vrrp {vrid} priority {priority}",
                 f" vrrp {vrid} advertisement-interval {round(interval * 1000)}"]
        if not preempt:
            lines.append(f" no vrrp {vrid} preempt")
        lines += [f" vrrp {vrid} {keyword} {v.ip}" for v in self.vips]
        self.frr = FrrNode(node, {
            "zebra": f"hostname {node.name}\n",
            "vrrpd": f"hostname {node.name}\ndebug vrrp protocol\ndebug vrrp zebra\n"
                     f"interface {node.ifname}\n" + "\n".join(lines) + "\n"})

    @property
    def macvlan(self) -> str:
        index = self.node.ns.run(["cat", f"/sys/class/net/{self.node.ifname}/ifindex"])
        return f"vrrp{self.family}-{int(index.stdout)}-{self.vrid}"

    def _create_macvlan(self) -> None:
        ns, name = self.node.ns, self.macvlan
        mac = f"00:00:5e:00:0{1 if self.family == 4 else 2}:{self.vrid:02x}"
        ns.run(["ip", "link", "add", name, "link", self.node.ifname, "type", "macvlan",
                "mode", "bridge"])
        ns.sysctl(f"net.ipv6.conf.{name}.addr_gen_mode", 3)  # random link-local
        ns.run(["ip", "link", "set", "dev", name, "address", mac])
        for vip in self.vips:
            ns.run(["ip", "addr", "add", str(vip), "dev", name, *(["nodad"]
                                                                  if vip.version == 6 else [])])
        ns.run(["ip", "link", "set", "dev", name, "up"])
        if self.family == 6:  # FRR binds its IPv6 socket to the macvlan's link-local
            wait_for(lambda: any(a.get("scope") == "link" and not a.get("tentative")
                                 for a in ns.addresses(name)), 5, f"{name}'s link-local",
                     poll=0.02)

    def start(self) -> FrrVrrp:
        if "zebra" not in self.frr.procs:
            self._create_macvlan()
            self.frr.start_daemon("zebra")
        self.frr.start_daemon("vrrpd")
        wait_for(lambda: self.state() != "INIT", 10, f"FRR vrrpd on {self.node.name}",
                 poll=0.02)
        return self

    def state(self) -> str:
        """The last state FRR logged for the virtual router: Backup, Master, Initialize."""
        found = [m for m in TRANSITION.findall(self.log())
                 if int(m[0]) == self.vrid and int(m[1]) == self.family]
        return found[-1][3] if found else "INIT"

    def wait_state(self, state: str, timeout: float = 10) -> float:
        return wait_for(lambda: self.state() == state, timeout,
                        f"FRR on {self.node.name} to be {state}", poll=0.01)

    def stop_vrrpd(self, sig: int = signal.SIGTERM) -> int:
        """Stop vrrpd only (zebra keeps running, so it can be started again)."""
        return self.frr.stop_daemon("vrrpd", sig)

    def stop(self) -> None:
        self.frr.stop()

    def log(self) -> str:
        return self.frr.log("vrrpd")

    def complaints(self, start: int = 0) -> list[str]:
        """Log lines from character ``start`` on that object to a received advert."""
        return [line for line in self.log()[start:].splitlines()
                if ABOUT_ADVERTS.search(line) and COMPLAINTS.search(line)
                and not ELECTION.search(line)]

    def warnings(self) -> list[str]:
        """FRR's other objections (its own interfaces, zebra), for the test's report."""
        return [line for line in self.log().splitlines()
                if COMPLAINTS.search(line) and not ABOUT_ADVERTS.search(line)]
