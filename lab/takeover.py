"""Takeover set-ups shared by the lab tests and ``benchmarks/takeover.py``.

Each pair puts two VRRP routers of one virtual router on a namespace switch (lb1 and lb2 of
:class:`lab.netns.Topology`): :class:`Pair` two vrrpd (tests/lab/test_failover.py),
:class:`KeepalivedPeers` vrrpd and keepalived 2.2 (tests/lab/test_interop_keepalived.py),
:class:`FrrPeers` vrrpd and FRR's vrrpd (tests/lab/test_interop_frr.py).  The faults are the
two of RFC 5798 §6.4.2: the master stops (SIGTERM, it sends priority 0, so the backup waits
Skew_Time) and the master's switch port goes down (no more adverts: Master_Down_Interval).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab.daemons import REALTIME, AddressProbe, Vrrpd, wait_for
from lab.frr import FrrVrrp
from lab.interop import HIGH, LOW, VRID, Flavour
from lab.keepalived import Keepalived
from lab.netns import Topology
from lab.sniff import Frame, Sniffer
from vrrpd.proto.timers import master_down_interval, skew_time

VIP4 = "192.0.2.100/24"
INTEROP_FAULTS = ("sigterm", "port-down")


@contextmanager
def two_nodes() -> Iterator[Topology]:
    """Two load balancers on one switch, IPv4 and IPv6 ready, deleted afterwards.

    ``lab.nodes["lb1"]``: 192.0.2.11/24, 2001:db8::11/64 on eth0;
    ``lab.nodes["lb2"]``: 192.0.2.12/24, 2001:db8::12/64 on eth0.
    ``lab.set_link("lb1", False)`` pulls lb1's cable (its switch port goes down).
    """
    with Topology() as lab:
        lab.add_node("lb1", "192.0.2.11/24", "2001:db8::11/64")
        lab.add_node("lb2", "192.0.2.12/24", "2001:db8::12/64")
        yield lab


def instance(name: str, vrid: int, priority: int, interval: float, vips: list[str],
             **extra: Any) -> dict[str, Any]:
    return {"name": name, "interface": "eth0", "vrid": vrid, "priority": priority,
            "advert_interval": interval, "vips": vips, **extra}


def fault_bound(fault: str, version: int, interval: float, slack: float) -> float:
    """The RFC 5798 §6.4.2 timer that bounds a takeover by the backup (priority 100), plus
    ``slack``: Skew_Time after a priority-0 advert, Master_Down_Interval after silence."""
    timer = skew_time if fault.lower() == "sigterm" else master_down_interval
    return timer(version, LOW, round(interval * 100)) + slack


def took_over(frame: Frame, vip: str) -> bool:
    """Whether the sniffed backup sent ``frame`` as the new master: an advert (a backup
    sends none) or an announcement of ``vip`` (gratuitous ARP / unsolicited NA), the two
    things RFC 5798 §6.4.2 has a new master send, in whichever order the implementation
    sends them (FRR 8.4 sent no gratuitous ARP that reached the wire in the lab)."""
    return frame.sent and (frame.kind == "vrrp" or frame.target == vip.split("/")[0])


def wire_takeover(frames: list[Frame], vip: str, fault_at: float) -> float:
    """A takeover as the backup's own interface saw it (:mod:`lab.sniff`'s kernel
    timestamps): from the last advert it heard from the old master (its priority 0 after a
    SIGTERM; its last one before a cut) to the first frame it sent as master
    (:func:`took_over`).  That is the RFC 5798 §6.4.2 timer (Skew_Time or
    Master_Down_Interval), and nothing of a loaded test host: neither how late the fault was
    delivered or the old master shut down, nor how late the test polled.  ``fault_at``
    (wall clock) skips what a backup that already thought itself master sent before."""
    became = next(f.at for f in frames if f.at >= fault_at and took_over(f, vip))
    heard = [f.at for f in frames if f.kind == "vrrp" and not f.sent and f.at < became]
    return became - heard[-1]


def timed_takeover(lab: Topology, backup: str, vip: str, inject: Callable[[], None],
                   taken_over: Callable[[], bool]) -> tuple[float, float]:
    """Once the backup has heard the master, ``inject`` the fault and wait until
    ``taken_over``: (seconds from the fault as this host saw it, :func:`wire_takeover`).
    The lab tests bound the second."""
    with Sniffer(lab.nodes[backup], outgoing=True) as sniff:
        wait_for(lambda: any(f.kind == "vrrp" and not f.sent for f in sniff.frames()), 5,
                 f"{backup} to hear the master", poll=0.005)
        start, fault_at = time.monotonic(), time.time()
        inject()
        wait_for(taken_over, 10, f"{backup} to take over")
        took = time.monotonic() - start
        wait_for(lambda: any(took_over(f, vip) for f in sniff.frames(since=fault_at)), 2,
                 f"{backup}'s first frame as master", poll=0.01)
        frames = sniff.frames()
    return took, wire_takeover(frames, vip, fault_at)


class Pair:
    """lb1 (priority 150) and lb2 (priority 100) running one or more instances."""

    def __init__(self, lab: Topology, tmp: Path, make: Any) -> None:
        self.lab = lab
        self.lb1 = Vrrpd(lab.nodes["lb1"], tmp, make(HIGH))
        self.lb2 = Vrrpd(lab.nodes["lb2"], tmp, make(LOW))
        self.probe = {n: AddressProbe(lab.nodes[n]) for n in ("lb1", "lb2")}

    def holders(self, vip: str) -> list[str]:
        return [n for n, p in self.probe.items() if p.has(vip)]

    def elect(self, vip: str, name: str = "web") -> None:
        """Start both; lb1 (higher priority) must end up the only holder of ``vip``."""
        self.lb1.start()
        self.lb1.wait_state(name, "MASTER")
        self.lb2.start()
        self.lb2.wait_state(name, "BACKUP")
        wait_for(lambda: self.holders(vip) == ["lb1"], 5, f"{vip} on lb1 only")

    def inject(self, fault: str) -> None:
        """``port down``: lb1's switch port; ``SIGTERM``: lb1's vrrpd (priority 0)."""
        if fault == "port down":
            self.lab.set_link("lb1", False)
        else:
            self.lb1.send_signal(signal.SIGTERM)

    def restore(self, fault: str) -> None:
        """Undo :meth:`inject` after lb2 took over; lb1 must have let go of the VIP."""
        if fault == "port down":
            # lb1 saw its carrier go and released the VIP: exactly one holder.
            wait_for(lambda: self.holders(VIP4) == ["lb2"], 2, "lb1 to release the VIP")
            self.lab.set_link("lb1", True)
        else:
            assert self.lb1.proc is not None and self.lb1.proc.wait(10) == 0
            assert self.holders(VIP4) == ["lb2"], "lb1 must release its VIP on SIGTERM"
            self.lb1.start()

    def close(self) -> None:
        for d in (self.lb1, self.lb2):
            d.stop()
        for p in self.probe.values():
            p.close()


class InteropPeers:
    """vrrpd on lb1 and another implementation on lb2 (the subclass starts it);
    ``vrrpd_master`` says who gets priority 150 (:data:`lab.interop.HIGH`)."""

    def __init__(self, lab: Topology, tmp: Path, flavour: Flavour, vrrpd_master: bool,
                 vmac: bool) -> None:
        self.lab = lab
        self.flavour = flavour
        self.vrrpd_master = vrrpd_master
        vrrpd_prio, self.peer_priority = (HIGH, LOW) if vrrpd_master else (LOW, HIGH)
        self.vrrpd = Vrrpd(lab.nodes["lb1"], tmp, [{
            "name": "web", "interface": "eth0", "vrid": VRID, "priority": vrrpd_prio,
            "version": flavour.version, "advert_interval": flavour.interval,
            "vips": list(flavour.vips), "virtual_mac": vmac}], realtime_priority=REALTIME)
        self.probe = {n: AddressProbe(lab.nodes[n]) for n in ("lb1", "lb2")}
        self.master_node, self.backup_node = ("lb1", "lb2") if vrrpd_master else ("lb2", "lb1")


class KeepalivedPeers(InteropPeers):
    """vrrpd on lb1 and keepalived on lb2; ``vrrpd_master`` says who gets priority 150."""

    def __init__(self, lab: Topology, tmp: Path, flavour: Flavour, vrrpd_master: bool,
                 vmac: bool = False) -> None:
        super().__init__(lab, tmp, flavour, vrrpd_master, vmac)
        self.keepalived = Keepalived(lab.nodes["lb2"], tmp, vrid=VRID,
                                     priority=self.peer_priority, interval=flavour.interval,
                                     vips=list(flavour.vips), version=flavour.version,
                                     use_vmac=vmac, realtime_priority=REALTIME)

    def holders(self) -> list[str]:
        return [n for n, p in self.probe.items() if p.has(self.flavour.probe_vip)]

    def start_master(self) -> None:
        if self.vrrpd_master:
            self.vrrpd.start()
            self.vrrpd.wait_state("web", "MASTER")
        else:
            self.keepalived.start().wait_state("MASTER")

    def start_backup(self) -> None:
        if self.vrrpd_master:
            self.keepalived.start()
        else:
            self.vrrpd.start()

    def elect(self) -> None:
        """Master side first, then the backup; wait for one master and one holder.

        A keepalived backup that cannot read vrrpd's adverts becomes master after its
        Master_Down_Interval, so that long must pass before the election counts as settled.
        """
        self.start_master()
        self.start_backup()
        if self.vrrpd_master:
            f = self.flavour
            time.sleep(master_down_interval(f.version, LOW, f.interval_cs) + 2 * f.interval)
        self.wait_settled(10)

    def wait_settled(self, timeout: float) -> None:
        """The master side is the only master and VIP holder; the backup has heard it for
        three intervals (so it knows its interval, v3)."""
        wait_for(lambda: self.keepalived.state() == ("BACKUP" if self.vrrpd_master
                                                     else "MASTER")
                 and self.vrrpd.state("web") == ("MASTER" if self.vrrpd_master else "BACKUP")
                 and self.holders() == [self.master_node], timeout,
                 f"{self.master_node} to be the only master and VIP holder", poll=0.01)
        time.sleep(3 * self.flavour.interval)
        assert self.holders() == [self.master_node]

    def stop_master(self) -> None:
        (self.vrrpd.send_signal if self.vrrpd_master else self.keepalived.send_signal)(
            signal.SIGTERM)

    def inject(self, fault: str) -> None:
        """``sigterm``: the master stops; ``port-down``: the master's switch port goes down."""
        if fault == "sigterm":
            self.stop_master()
        else:
            self.lab.set_link(self.master_node, False)

    def taken_over(self) -> bool:
        return self.probe[self.backup_node].has(self.flavour.probe_vip)

    def restore(self, fault: str) -> None:
        """The old master returns (with the higher priority it will preempt)."""
        if fault == "sigterm":
            old = self.vrrpd if self.vrrpd_master else self.keepalived
            assert old.proc is not None and old.proc.wait(10) == 0
            old.start()
        else:
            self.lab.set_link(self.master_node, True)

    def close(self) -> None:
        self.keepalived.stop()
        self.vrrpd.stop()
        for p in self.probe.values():
            p.close()


class FrrPeers(InteropPeers):
    """vrrpd (virtual_mac: FRR runs on macvlan links only) on lb1 and FRR on lb2."""

    def __init__(self, lab: Topology, tmp: Path, flavour: Flavour, vrrpd_master: bool) -> None:
        super().__init__(lab, tmp, flavour, vrrpd_master, vmac=True)
        self.frr = FrrVrrp(lab.nodes["lb2"], vrid=VRID, priority=self.peer_priority,
                           interval=flavour.interval, vips=list(flavour.vips),
                           version=flavour.version)

    def serving(self) -> list[str]:
        """Who answers for the VIPs: vrrpd holds them on its macvlan only as master; FRR keeps
        them on its macvlan and sets it protodown while Backup."""
        vip = self.flavour.probe_vip
        held = ["lb1"] if self.probe["lb1"].has(vip) else []
        return held + (["lb2"] if self.frr.state() == "Master" else [])

    def elect(self) -> None:
        if self.vrrpd_master:
            self.vrrpd.start().wait_state("web", "MASTER")
            self.frr.start()
        else:
            self.frr.start().wait_state("Master")
            self.vrrpd.start()
        self.wait_settled(15)

    def wait_settled(self, timeout: float) -> None:
        """The master side is the only one serving, both agree, for three intervals."""
        wait_for(lambda: self.serving() == [self.master_node]
                 and self.vrrpd.state("web") == ("MASTER" if self.vrrpd_master else "BACKUP")
                 and self.frr.state() == ("Backup" if self.vrrpd_master else "Master"),
                 timeout, f"{self.master_node} to be the only master", poll=0.01)
        time.sleep(3 * self.flavour.interval)
        assert self.serving() == [self.master_node]

    def inject(self, fault: str) -> None:
        """``sigterm``: the master's VRRP daemon stops; ``port-down``: its switch port."""
        if fault == "port-down":
            self.lab.set_link(self.master_node, False)
        elif self.vrrpd_master:
            self.vrrpd.send_signal()
        else:
            self.frr.stop_vrrpd()

    def taken_over(self) -> bool:
        return self.backup_node in self.serving()

    def restore(self, fault: str) -> None:
        """The old master returns (with the higher priority it will preempt)."""
        if fault == "port-down":
            self.lab.set_link(self.master_node, True)
        elif self.vrrpd_master:
            assert self.vrrpd.proc is not None and self.vrrpd.proc.wait(10) == 0
            self.vrrpd.start()
        else:
            self.frr.start()

    def close(self) -> None:
        self.frr.stop()
        self.vrrpd.stop()
        for p in self.probe.values():
            p.close()
