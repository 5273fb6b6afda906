"""Run FRR's vrrpd (Debian 12's frr 8.4) as the VRRP peer of vrrpd in a lab node.

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


class FrrVrrp:
    """zebra + vrrpd of FRR on ``node``'s ``eth0`` with one virtual router."""

    def __init__(self, node: Node, *, vrid: int, priority: int, interval: float,
                 vips: list[str], version: int = 3, preempt: bool = True) -> None:
        self.node = node
        self.vrid = vrid
        self.vips = [ip_interface(v) for v in vips]
        self.family = self.vips[0].version
        self.dir = RUN / node.ns.name
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir, "frr", "frr")
        self.log_path = self.dir / "vrrpd.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        keyword = "ip" if self.family == 4 else "ipv6"
        lines = [f" vrrp {vrid} version {version}", f" vrrp {vrid} priority {priority}",
                 f" vrrp {vrid} advertisement-interval {round(interval * 1000)}"]
        if not preempt:
            lines.append(f" no vrrp {vrid} preempt")
        lines += [f" vrrp {vrid} {keyword} {v.ip}" for v in self.vips]
        (self.dir / "zebra.conf").write_text(f"hostname {node.name}\n")
        (self.dir / "vrrpd.conf").write_text(
            f"hostname {node.name}\ndebug vrrp protocol\ndebug vrrp zebra\n"
            f"interface {node.ifname}\n" + "\n".join(lines) + "\n")

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

    def _daemon(self, name: str) -> subprocess.Popen[bytes]:
        with (self.dir / f"{name}.out").open("ab") as out:
            return self.node.ns.popen(
                [str(FRR / name), "-N", self.node.ns.name, "-f", str(self.dir / f"{name}.conf"),
                 "-i", str(self.dir / f"{name}.pid"), "--vty_socket", str(self.dir),
                 "--log", f"file:{self.dir / name}.log", "--log-level", "debug"],
                stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> FrrVrrp:
        if not self.procs:
            self._create_macvlan()
            self.procs.append(self._daemon("zebra"))
            wait_for(lambda: (self.dir / "zserv.api").exists(), 10, "zebra's socket",
                     poll=0.02)
        self.procs.append(self._daemon("vrrpd"))
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
        return terminate(self.procs.pop(), sig) if len(self.procs) > 1 else 0

    def stop(self) -> None:
        while self.procs:
            terminate(self.procs.pop())
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def complaints(self, start: int = 0) -> list[str]:
        """Log lines from character ``start`` on that object to a received advert."""
        return [line for line in self.log()[start:].splitlines()
                if ABOUT_ADVERTS.search(line) and COMPLAINTS.search(line)
                and not ELECTION.search(line)]

    def warnings(self) -> list[str]:
        """FRR's other objections (its own interfaces, zebra), for the test's report."""
        return [line for line in self.log().splitlines()
                if COMPLAINTS.search(line) and not ABOUT_ADVERTS.search(line)]
