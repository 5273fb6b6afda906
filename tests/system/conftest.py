"""Fixtures for the system tests on the booted Vagrant pair (scripts/pair-test boots it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from pair import OUTAGES, Client, Machine, wait_for

NAMES = ("lb1", "lb2", "pacs1", "pacs2", "client")


@pytest.fixture(scope="session")
def machines() -> dict[str, Machine]:
    """The five machines, or a skip saying how to boot them.  Only when asked
    (VRRPD_SYSTEM_TESTS=1, set by scripts/pair-test): a fast-ring run elsewhere must never
    power off a pair someone booted."""
    if os.environ.get("VRRPD_SYSTEM_TESTS") != "1":
        pytest.skip("system tests on the Vagrant pair: VRRPD_SYSTEM_TESTS=1 (scripts/pair-test "
                    "sets it)")
    try:
        found = {n: Machine(n) for n in NAMES}
        down = [n for n, m in found.items() if not m.running()]
    except (FileNotFoundError, subprocess.SubprocessError):
        pytest.skip("LXC is not installed: the Vagrant pair cannot run here")
    if down:
        pytest.skip(f"the Vagrant pair is not up ({', '.join(down)} not running): "
                    "run scripts/pair-test")
    return found


@pytest.fixture(scope="session")
def lb1(machines: dict[str, Machine]) -> Machine:
    return machines["lb1"]


@pytest.fixture(scope="session")
def lb2(machines: dict[str, Machine]) -> Machine:
    return machines["lb2"]


def healthy(lb: Machine) -> bool:
    """BACKUP or MASTER at its configured priority: every tracker passing."""
    inst = lb.instance()
    return bool(inst and inst["state"] in ("BACKUP", "MASTER")
                and inst["effective_priority"] == inst["priority"]
                and all(t["ok"] for t in inst["trackers"]))


def settle(lb1: Machine, lb2: Machine) -> None:
    """The pair as provisioned: both nodes up, lb1 MASTER holding the VIP, lb2 BACKUP.  A test
    that moved the VIP leaves lb1 waiting out preempt_delay (60 s in lb1.yaml); an operator's
    `vrrpctl promote` + `resume` hands it back now, make-before-break."""
    for lb in (lb1, lb2):
        if not lb.running():
            lb.power_on()
        lb.cable(plugged=True)        # a test stopped half-way may have left it out
        lb.sh("ip link set eth1 up")
        for unit in ("haproxy", "vrrpd"):
            lb.sh(f"systemctl is-active -q {unit} || systemctl start {unit}")
    for lb in (lb1, lb2):   # no operator mode left over (a test that failed half-way)
        wait_for(lb.status, 30, f"{lb.name}'s vrrpd answering")
        if (lb.instance() or {}).get("admin", "normal") != "normal":
            lb.sh("vrrpctl resume pacs")
    for lb in (lb1, lb2):
        wait_for(lambda lb=lb: healthy(lb), 60, f"{lb.name} healthy")
    if lb1.state() != "MASTER":
        lb1.sh("vrrpctl promote pacs")
        wait_for(lambda: lb1.state() == "MASTER", 15, "lb1 MASTER after promote")
        lb1.sh("vrrpctl resume pacs")
    wait_for(lambda: lb1.state() == "MASTER" and lb1.holds_vip(), 15, "lb1 MASTER with the VIP")
    wait_for(lambda: lb2.state() == "BACKUP" and not lb2.holds_vip(), 15, "lb2 BACKUP")


@pytest.fixture
def baseline(lb1: Machine, lb2: Machine) -> Iterator[None]:
    settle(lb1, lb2)
    yield


@pytest.fixture
def client(machines: dict[str, Machine], baseline: None) -> Iterator[Client]:
    """The client's probers, running for one test (a fresh sample file each)."""
    prober = Client(machines["client"])
    prober.start()
    yield prober
    prober.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if OUTAGES:
        terminalreporter.section("outages the client saw on the Vagrant pair")
        for line in OUTAGES:
            terminalreporter.write_line(line)
