"""Failovers on the booted pair, each fault made as an operator or an accident would make it,
each outage as the client saw it (printed, and summarised at the end of the run).

Every test starts from the provisioned pair: lb1 MASTER with the VIP, lb2 BACKUP (conftest's
``settle``).  Adverts every 0.1 s: Master_Down_Interval ~0.34 s (etc/vrrpd/lb1.yaml).
"""

from __future__ import annotations

import time

import pytest
from pair import Client, Machine, report, wait_for

# Each test: settling the pair (up to ~2 min after a power cycle) plus its own bounded waits.
pytestmark = pytest.mark.timeout(300)

# Upper bounds for what the client may see, well above the namespace lab's figures (README
# "Benchmarks") to allow for a busy CI machine, well below what a radiologist would notice
# as more than a hiccup.
TAKEOVER_MS = 3000


def takes_over(lb: Machine) -> bool:
    return lb.state() == "MASTER" and lb.holds_vip()


def test_haproxy_killed_on_the_master(lb1: Machine, lb2: Machine, client: Client) -> None:
    """`systemctl kill -s KILL haproxy`: lb1's haproxy tracker (weight 0) sees the process die
    by pidfd, lb1 resigns with a priority-0 advert and lb2 takes over after Skew_Time."""
    fault = time.monotonic()
    lb1.sh("systemctl kill -s KILL haproxy")
    wait_for(lambda: takes_over(lb2), 10, "lb2 takes over")
    web, dicom = client.outage(fault, "lb2")
    report("(a) systemctl kill -s KILL haproxy on lb1", web, dicom)
    assert web.outage_ms < TAKEOVER_MS
    reasons = [t["reason"] for t in lb1.instance()["transitions"]]
    assert any("haproxy" in r for r in reasons), reasons
    # Debian's haproxy.service restarts HAProxy; lb1 comes back as BACKUP (preempt_delay).
    wait_for(lambda: lb1.state() == "BACKUP", 30, "lb1 BACKUP again once HAProxy is back")


def test_demote_and_resume(lb1: Machine, lb2: Machine, client: Client) -> None:
    """`vrrpctl demote`: a planned hand-over, make-before-break (lb1 serves until lb2's first
    advert as master), so the client sees no failed request.  `vrrpctl resume`: lb1 is back
    at priority 150 and preempts lb2 (a preemption, not a hand-over: a short outage)."""
    fault = time.monotonic()
    lb1.sh("vrrpctl demote pacs")
    wait_for(lambda: takes_over(lb2), 10, "lb2 takes over")
    web, dicom = client.outage(fault, "lb2")
    report("(b) vrrpctl demote on lb1", web, dicom)
    assert web.failed == 0 and dicom.failed == 0, (web, dicom)
    assert lb1.instance()["admin"] != "normal"

    resumed = time.monotonic()
    lb1.sh("vrrpctl resume pacs")
    seen_backup = [resumed]   # the last time lb1 was seen not yet master: the preemption's start

    def preempted() -> bool:
        if takes_over(lb1):
            return True
        seen_backup.append(time.monotonic())
        return False
    wait_for(preempted, 90, "lb1 preempts back (preempt_delay: 60)")
    web, dicom = client.outage(seen_backup[-1], "lb1")
    report(f"    vrrpctl resume on lb1, preempts {seen_backup[-1] - resumed:.0f} s later", web,
           dicom)
    assert web.outage_ms < TAKEOVER_MS, web


def test_vrrpd_stop_and_start(lb1: Machine, lb2: Machine, client: Client) -> None:
    """`systemctl stop vrrpd`: SIGTERM, one priority-0 advert, the VIP released; lb2 takes over
    after Skew_Time.  `systemctl start vrrpd`: lb1 joins as BACKUP (preempt_delay)."""
    fault = time.monotonic()
    lb1.sh("systemctl stop vrrpd")
    wait_for(lambda: takes_over(lb2), 10, "lb2 takes over")
    assert not lb1.holds_vip(), "a stopped vrrpd left the VIP on lb1"
    web, dicom = client.outage(fault, "lb2")
    report("(c) systemctl stop vrrpd on lb1", web, dicom)
    assert web.outage_ms < TAKEOVER_MS

    lb1.sh("systemctl start vrrpd")
    wait_for(lambda: lb1.state() == "BACKUP", 20, "lb1 BACKUP after start")
    assert takes_over(lb2)


def test_master_powered_off_and_back(lb1: Machine, lb2: Machine, client: Client) -> None:
    """The master loses power (container killed, its links gone): no resignation, so lb2
    waits Master_Down_Interval.  Powered on, lb1 boots, systemd starts vrrpd and it joins as
    BACKUP."""
    fault = time.monotonic()
    lb1.power_off()
    wait_for(lambda: takes_over(lb2), 10, "lb2 takes over")
    web, dicom = client.outage(fault, "lb2")
    report("(d) lb1 powered off (lxc-stop -k)", web, dicom)
    assert web.outage_ms < TAKEOVER_MS

    lb1.power_on()
    wait_for(lambda: lb1.state() == "BACKUP", 60, "lb1 BACKUP after boot")
    assert lb1.unit("ActiveState") == "active"
    assert takes_over(lb2)


def test_hung_daemon_is_restarted_by_the_watchdog(lb1: Machine, lb2: Machine,
                                                  client: Client) -> None:
    """SIGSTOP freezes lb1's vrrpd while it holds the VIP: its adverts stop, lb2 takes over
    after Master_Down_Interval.  The unit's watchdog (WatchdogSec) fires, systemd aborts and
    restarts the daemon, which removes the VIP the frozen run left behind and joins as
    BACKUP."""
    pid = lb1.unit("MainPID")
    restarts = int(lb1.unit("NRestarts"))
    fault = time.monotonic()
    lb1.sh("systemctl kill -s STOP --kill-whom=main vrrpd")
    wait_for(lambda: takes_over(lb2), 10, "lb2 takes over from the frozen master")
    web, dicom = client.outage(fault, "lb2")
    report("(e) vrrpd frozen on lb1 (SIGSTOP)", web, dicom)
    assert web.outage_ms < TAKEOVER_MS

    # WatchdogSec=10, then SIGABRT and TimeoutAbortSec=5 before SIGKILL, RestartSec=1.
    wait_for(lambda: int(lb1.unit("NRestarts")) > restarts
             and lb1.unit("ActiveState") == "active", 60, "systemd restarts the hung vrrpd")
    assert lb1.unit("MainPID") != pid
    journal = lb1.sh("journalctl -u vrrpd --no-pager -n 200").stdout
    assert "Watchdog timeout" in journal, journal[-2000:]
    wait_for(lambda: lb1.state() == "BACKUP" and not lb1.holds_vip(), 30,
             "the restarted lb1 BACKUP without the stale VIP")


@pytest.mark.parametrize("edit", ["good", "broken"])
def test_reload(lb1: Machine, edit: str) -> None:
    """`systemctl reload vrrpd` (vrrpctl reload through the control socket): a good file is
    applied without a restart or a state change; a broken one is refused with file, line and
    reason, and the running configuration stays."""
    path = "/etc/vrrpd/vrrpd.yaml"
    original = lb1.read(path)
    pid, state = lb1.unit("MainPID"), lb1.state()
    try:
        if edit == "good":
            lb1.write(path, original.replace("priority: 150", "priority: 140", 1))
            lb1.sh("systemctl reload vrrpd")
            wait_for(lambda: lb1.instance()["priority"] == 140, 10, "priority 140 applied")
        else:
            lb1.write(path, original.replace("vrid: 51", "vrid: 300", 1))
            done = lb1.sh("systemctl reload vrrpd", check=False)
            assert done.returncode != 0
            journal = lb1.sh("journalctl -u vrrpd --no-pager -n 30").stdout
            assert "vrid" in journal and "300" in journal, journal
            assert lb1.instance()["vrid"] == 51
            assert lb1.instance()["priority"] == 150
        assert lb1.unit("MainPID") == pid, "reload restarted the daemon"
        assert lb1.state() == state
    finally:
        lb1.write(path, original)
        lb1.sh("systemctl reload vrrpd")
