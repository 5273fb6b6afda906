"""Issue 19 part 6 on the booted pair: vrrpd starts in any network state and joins when the
interface becomes usable, with no restart and no operator."""

from __future__ import annotations

import time

import pytest
from pair import Machine, wait_for

pytestmark = [pytest.mark.usefixtures("baseline"), pytest.mark.timeout(300)]

# "Plugged in a minute later": 20 s make the same point (the daemon waits in FAULT, does not
# exit, and systemd does not restart it) in a third of the time.
CABLE_OUT_S = 20
VRRPD_YAML = "/etc/vrrpd/vrrpd.yaml"


def waiting(lb: Machine, name: str, problem: str) -> bool:
    inst = lb.instance(name)
    return bool(inst and inst["faults"] == ["link:eth1"]
                and problem in (inst.get("interface_problem") or ""))


def test_node_started_with_its_cable_out_joins_when_plugged_in(lb1: Machine,
                                                               lb2: Machine) -> None:
    """lb2 boots with eth1's cable out: the unit starts, the instance waits in FAULT with the
    reason in `vrrpctl status`; once plugged in, lb2 joins as BACKUP with the same process."""
    lb2.power_off()
    lb2.power_on(wait=False)
    lb2.cable(plugged=False)   # before systemd in lb2 gets to vrrpd
    wait_for(lb2.booted, 90, "lb2 booted")
    wait_for(lambda: waiting(lb2, "pacs", "eth1 has no carrier"), 30,
             "lb2 waiting in FAULT for eth1's carrier")
    pid, restarts = lb2.unit("MainPID"), lb2.unit("NRestarts")
    time.sleep(CABLE_OUT_S)
    assert waiting(lb2, "pacs", "eth1 has no carrier")
    assert (lb2.unit("ActiveState"), lb2.unit("MainPID")) == ("active", pid)
    print(lb2.sh("vrrpctl status", check=False).stdout)

    plugged = time.monotonic()
    lb2.cable(plugged=True)
    wait_for(lambda: lb2.state() == "BACKUP", 15, "lb2 BACKUP once plugged in")
    print(f"lb2 joined as BACKUP {(time.monotonic() - plugged) * 1000:.0f} ms after the "
          f"cable went in, after {CABLE_OUT_S} s out, same vrrpd process")
    assert (lb2.unit("MainPID"), lb2.unit("NRestarts")) == (pid, restarts)
    assert lb1.state() == "MASTER" and lb1.holds_vip()


def add_ipv6_instance(text: str, priority: int) -> str:
    """lbN.yaml plus a VRRPv3 IPv6 instance (VRID 52) on eth1."""
    instance = ("  - name: pacs6\n    interface: eth1\n    vrid: 52\n    version: 3\n"
                f"    priority: {priority}\n    advert_interval: 0.1\n"
                "    vips: [fe80::52/64, 2001:db8::100/64]\n")
    return text.replace("instances:\n", "instances:\n" + instance, 1)


def test_ipv6_instance_started_as_its_link_comes_up(lb1: Machine, lb2: Machine) -> None:
    """lb2's vrrpd starts the moment eth1 comes up, while its IPv6 link-local address
    is still tentative (duplicate address detection; 10 probes here, a window of ~10 s that a
    slow start on a busy machine cannot miss):
    the IPv6 instance waits in FAULT and joins as BACKUP once DAD completes, no restart."""
    originals = {lb: lb.read(VRRPD_YAML) for lb in (lb1, lb2)}
    try:
        for lb, priority in ((lb1, 150), (lb2, 100)):
            lb.write(VRRPD_YAML, add_ipv6_instance(originals[lb], priority))
            lb.sh("systemctl reload vrrpd")
        wait_for(lambda: lb1.state("pacs6") == "MASTER" and lb2.state("pacs6") == "BACKUP",
                 15, "the IPv6 instance: lb1 MASTER, lb2 BACKUP")

        # The link comes up (ip link set eth1 up, as at boot): the kernel makes a new
        # link-local address and runs DAD on it.  A carrier flap alone keeps the address.
        lb2.sh("systemctl stop vrrpd; sysctl -qw net.ipv6.conf.eth1.dad_transmits=10; "
               "ip link set eth1 down; sleep 1; ip link set eth1 up; systemctl start vrrpd")
        pid = lb2.unit("MainPID")
        wait_for(lambda: waiting(lb2, "pacs6", "tentative"), 5,
                 "lb2's IPv6 instance waiting for DAD")
        print(lb2.sh("vrrpctl status pacs6", check=False).stdout)
        started = time.monotonic()
        wait_for(lambda: lb2.state("pacs6") == "BACKUP", 15, "lb2's IPv6 instance BACKUP")
        print(f"lb2's IPv6 instance joined as BACKUP {time.monotonic() - started:.1f} s after "
              "its start, once DAD completed, same vrrpd process")
        assert lb2.unit("MainPID") == pid
        wait_for(lambda: lb2.state("pacs") == "BACKUP", 10, "lb2's IPv4 instance BACKUP")
    finally:
        lb2.sh("sysctl -qw net.ipv6.conf.eth1.dad_transmits=1; ip link set eth1 up")
        for lb, text in originals.items():
            lb.write(VRRPD_YAML, text)
            lb.sh("systemctl is-active -q vrrpd && systemctl reload vrrpd || "
                  "systemctl start vrrpd")
