"""The Debian package in a fresh Debian 12 container booted with systemd (issue 19, "Done when").

One privileged LXC container per module, ``vrsys-<hex>``, from ``scripts/build-box
--rootfs-only`` (plain Debian 12: systemd, python3, iproute2; no network), with eth0
198.51.100.11/24 cabled by a veth to the host end ``vrsys<hex>``, where the test listens to its
adverts.  The steps run in order on it, everything through apt, systemctl, journalctl and
vrrpctl inside the container, never through package code:

install (offline: the Depends come from the base) -> nothing enabled or started -> a config and
``systemctl enable --now`` -> ``vrrpctl status`` (also as a member of control_socket_group) ->
notify hook under /run -> ``systemctl reload`` (hitless; a broken file refused) -> journald
severities -> stop (one priority-0 advert) -> crash restart -> watchdog restart -> purge
(no file, user or process left).

Skipped, with the reason, unless VRRPD_SYSTEM_TESTS=1 (``scripts/test`` sets it; the fast ring
does not) or when this machine cannot run systemd containers.  The container and
its directory are removed whatever happens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.container import REPO, Container, booted, package, unavailable, wait_for
from vrrpd.daemon.privileges import CAPABILITIES

ADDRESS, VIP, EXTRA_VIP = "198.51.100.11/24", "198.51.100.100/24", "198.51.100.101/24"
VMAC_VIP = "198.51.100.102/24"
VRID = 51
WATCHDOG_LIMIT = 30.0  # WatchdogSec=10 + TimeoutAbortSec=5 + RestartSec=1, and slack
HAPROXY_DEBS = ("haproxy", "liblua5.3-0", "libopentracing-c-wrapper0", "libopentracing1")
FIGURES: dict[str, float] = {}  # what the run measured, printed at the end

# Booting containers takes a minute and the machine: only when asked (scripts/test, CI).
ASKED = os.environ.get("VRRPD_SYSTEM_TESTS") == "1"

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not ASKED, reason="system tests boot containers: VRRPD_SYSTEM_TESTS=1 "
                                         "(scripts/test sets it)"),
    pytest.mark.skipif(unavailable() is not None, reason=f"system tests {unavailable()}"),
    # The first test also builds the .deb (when stale) and the base rootfs (when not cached).
    pytest.mark.timeout(900),
]

CONFIG = f"""\
node: c1
control_socket_group: adm
tracks:
  # A root process watched by pidfile: pidfd_open needs no ptrace right (the unit grants none).
  init: {{type: process, pidfile: /run/vrrpd-test/init.pid}}
  # Debian's HAProxy (root master, stats socket root:haproxy 0660 in /run/haproxy).
  haproxy: {{type: haproxy, pidfile: /run/haproxy.pid, socket: /run/haproxy/admin.sock}}
  # Run as nobody: the unit's CAP_SETUID/CAP_SETGID.
  nobody: {{type: script, command: 'test "$(id -un)" = nobody', interval: 0.5}}
instances:
  - name: web
    interface: eth0
    vrid: {VRID}
    priority: 150
    advert_interval: 0.5
    vips: [{VIP}]
    track: [init, nobody, haproxy]
    notify: /etc/vrrpd/hooks/test-hook.sh
  - name: vmac                 # a macvlan link and its ARP sysctls, under the unit's sandbox
    interface: eth0
    vrid: 52
    priority: 150
    advert_interval: 0.5
    vips: [{VMAC_VIP}]
    virtual_mac: true
"""

# What the sandbox lets a hook do: write under /run/vrrpd (and no capabilities).
HOOK = """\
#!/bin/sh
echo "$3 $(id -un) $(grep CapEff /proc/self/status | tr -d '\\t')" >> /run/vrrpd/hook.log
"""


class AdvertCapture(threading.Thread):
    """The container's VRRP adverts as (time, VRID, priority), read on the host's veth end."""

    def __init__(self, ifname: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.2)
        self.adverts: list[tuple[float, int, int]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                frame = self.sock.recv(2048)
            except TimeoutError:
                continue
            ip = frame[14:]
            if len(ip) >= 24 and ip[9] == 112:  # IP protocol 112: VRRP
                vrrp = ip[(ip[0] & 0x0F) * 4:]
                self.adverts.append((time.monotonic(), vrrp[1], vrrp[2]))

    def stop(self) -> list[tuple[float, int, int]]:
        self.running = False
        self.join()
        self.sock.close()
        return self.adverts


def haproxy_debs() -> list[Path]:
    """Debian's HAProxy and what the base lacks for it, fetched here (the container is offline)."""
    cache = REPO / "build" / "haproxy-debs"
    cache.mkdir(parents=True, exist_ok=True)
    if not list(cache.glob("haproxy_*.deb")):
        subprocess.run(["apt-get", "download", *HAPROXY_DEBS], cwd=cache, check=True,
                       capture_output=True, timeout=300)
    return sorted(cache.glob("*.deb"))


@pytest.fixture(scope="module")
def box() -> Iterator[Container]:
    start = time.monotonic()
    deb = package()
    FIGURES["package size (KiB)"] = deb.stat().st_size / 1024
    with booted(ADDRESS, (deb, *haproxy_debs())) as c:
        FIGURES["deb + container ready (s)"] = time.monotonic() - start
        yield c
    print("\n" + ", ".join(f"{k} {v:.1f}" for k, v in FIGURES.items()))


def web(box: Container) -> dict[str, Any]:
    return box.instance("web")


def test_install_puts_everything_in_place_and_starts_nothing(box: Container) -> None:
    start = time.monotonic()
    box.run("apt-get install -y --no-install-recommends /root/vrrpd_*_amd64.deb", timeout=300)
    FIGURES["apt install (s)"] = time.monotonic() - start
    commands = box.out("command -v vrrpd; command -v vrrpctl").split()
    assert commands == ["/usr/bin/vrrpd", "/usr/bin/vrrpctl"]
    files = set(box.out("dpkg -L vrrpd").splitlines())
    for path in ("/lib/systemd/system/vrrpd.service", "/usr/share/man/man8/vrrpd.8.gz",
                 "/usr/share/man/man8/vrrpctl.8.gz", "/usr/share/man/man5/vrrpd.yaml.5.gz",
                 "/usr/share/bash-completion/completions/vrrpctl", "/var/lib/vrrpd",
                 "/usr/share/doc/vrrpd/examples/vrrpd.service.d/config-sync.conf"):
        assert path in files, path
    assert not [f for f in files if "/lab/" in f or "/tests/" in f]
    conffiles = box.out("dpkg-query -W -f='${Conffiles}' vrrpd")
    for path in ("/etc/vrrpd/vrrpd.yaml.example", "/etc/vrrpd/hooks/notify.sh"):
        assert path in conffiles
    assert box.out("id -un vrrpd") == "vrrpd"
    # The system Python is untouched: its dependencies live in the private venv only.
    assert box.run("python3 -c 'import pyroute2'", check=False).returncode != 0
    assert box.run("/opt/venvs/vrrpd/bin/python -c 'import pyroute2'").returncode == 0
    # Not configured: not enabled, not running, and a start is skipped by its condition.
    assert box.run("systemctl is-enabled vrrpd", check=False).stdout.strip() == "disabled"
    box.run("systemctl start vrrpd")
    assert box.run("systemctl is-active vrrpd", check=False).stdout.strip() == "inactive"
    assert "ConditionPathExists" in box.out("systemctl status vrrpd --no-pager; true")
    # HAProxy installed after vrrpd: the package's trigger puts vrrpd in the haproxy group, so
    # the haproxy tracker can ask the stats socket.
    assert "haproxy" not in box.out("id -nG vrrpd").split()
    box.run("dpkg -i /root/lib*.deb /root/haproxy_*.deb", timeout=120)
    assert "haproxy" in box.out("id -nG vrrpd").split()


def test_enable_now_runs_it_and_vrrpctl_reaches_it(box: Container) -> None:
    box.write("/etc/vrrpd/vrrpd.yaml", CONFIG)
    box.write("/etc/vrrpd/hooks/test-hook.sh", HOOK, 0o755)
    box.run("mkdir -p /run/vrrpd-test && echo 1 > /run/vrrpd-test/init.pid")
    box.run("useradd -G adm oper && useradd stranger")
    start = time.monotonic()
    box.run("systemctl enable --now vrrpd")
    wait_for(lambda: web(box)["state"] == "MASTER", 10, "MASTER")
    FIGURES["enable --now to MASTER (s)"] = time.monotonic() - start
    assert box.out("systemctl is-active vrrpd") == "active"
    assert VIP in box.addresses()
    trackers = {t["name"]: t["ok"] for t in web(box)["trackers"]}
    assert trackers == {"init": True, "nobody": True, "haproxy": True}
    # HAProxy's master (root) dies: seen by pidfd at once; systemd restarts HAProxy.
    # (Debian's unit restarts HAProxy in well under a second, so look at the transitions.)
    before = web(box)["counters"]["transitions"]
    box.run("systemctl kill -s KILL haproxy")
    wait_for(lambda: web(box)["counters"]["transitions"] >= before + 2
             and web(box)["state"] == "MASTER", 15, "FAULT, then MASTER once HAProxy is back")
    assert [t for t in web(box)["transitions"]
            if t["new"] == "FAULT" and "haproxy" in t["reason"]]
    wait_for(lambda: box.instance("vmac")["state"] == "MASTER", 10, "vmac MASTER")
    link = box.instance("vmac")["virtual_mac"]["link"]
    assert box.addresses(link) == {VMAC_VIP}
    assert box.out(f"cat /sys/class/net/{link}/address") == "00:00:5e:00:01:34"
    user = box.out("ps -o user= -p $(systemctl show -p MainPID --value vrrpd)")
    assert user == "vrrpd"
    # control_socket_group: a member of adm may use vrrpctl, another user may not.
    assert "web" in box.out("su -s /bin/sh oper -c 'vrrpctl status'")
    refused = box.run("su -s /bin/sh stranger -c 'vrrpctl status'", check=False)
    assert refused.returncode != 0 and "permission denied" in refused.stderr
    # The notify hook wrote under /run/vrrpd, as vrrpd, with no capabilities.
    wait_for(lambda: "MASTER" in box.out("cat /run/vrrpd/hook.log"), 5, "the hook")
    assert "MASTER vrrpd CapEff:0000000000000000" in box.out("cat /run/vrrpd/hook.log")


def test_systemctl_reload_is_hitless_and_refuses_a_broken_file(box: Container) -> None:
    before = web(box)
    box.write("/etc/vrrpd/vrrpd.yaml", CONFIG.replace("priority: 150", "priority: 160")
              .replace(f"vips: [{VIP}]", f"vips: [{VIP}, {EXTRA_VIP}]"))
    box.run("systemctl reload vrrpd")
    after = web(box)
    assert after["state"] == "MASTER" and after["effective_priority"] == 160
    assert after["counters"]["transitions"] == before["counters"]["transitions"]
    assert {VIP, EXTRA_VIP} <= box.addresses()
    box.write("/etc/vrrpd/vrrpd.yaml", CONFIG.replace(f"vrid: {VRID}", "vrid: 300"))
    refused = box.run("systemctl reload vrrpd", check=False)
    assert refused.returncode != 0
    assert box.out("systemctl is-active vrrpd") == "active"
    assert web(box)["effective_priority"] == 160
    box.write("/etc/vrrpd/vrrpd.yaml", CONFIG)
    box.run("systemctl reload vrrpd")


def test_journal_carries_each_lines_severity(box: Container) -> None:
    journal = box.out("journalctl -u vrrpd -o json --no-pager SYSLOG_IDENTIFIER=vrrpd")
    entries = [json.loads(line) for line in journal.splitlines()]
    priorities = {int(e["PRIORITY"]) for e in entries}
    assert 6 in priorities and priorities & {3, 4}, priorities  # info, and the refused reload
    warnings = box.out("journalctl -u vrrpd -p warning -o json --no-pager SYSLOG_IDENTIFIER=vrrpd")
    assert warnings and all(int(json.loads(line)["PRIORITY"]) <= 4
                            for line in warnings.splitlines())
    assert "vrid: 300" in box.out("journalctl -u vrrpd -p warning --no-pager")


def test_stop_sends_one_priority_zero_advert(box: Container) -> None:
    capture = AdvertCapture(box.host_if)
    capture.start()
    time.sleep(1.2)  # a couple of adverts at 0.5 s
    box.run("systemctl stop vrrpd")
    time.sleep(1.2)  # nothing more may follow
    adverts = capture.stop()
    assert [p for _, vrid, p in adverts if vrid == VRID and p == 150]
    assert [p for _, vrid, p in adverts if vrid == VRID and p == 0] == [0]
    assert adverts[-1][2] == 0
    assert VIP not in box.addresses()
    assert box.run("pgrep -x vrrpd", check=False).returncode == 1
    box.run("systemctl start vrrpd")
    wait_for(lambda: web(box)["state"] == "MASTER", 10, "MASTER again")


def test_a_crash_is_restarted(box: Container) -> None:
    pid = box.main_pid()
    restarts = int(box.out("systemctl show -p NRestarts --value vrrpd"))
    box.run("systemctl kill -s KILL vrrpd")
    wait_for(lambda: box.main_pid() not in (0, pid) and web(box)["state"] == "MASTER", 15,
             "the restarted daemon as MASTER")
    assert int(box.out("systemctl show -p NRestarts --value vrrpd")) == restarts + 1


def test_a_hung_daemon_is_restarted_by_the_watchdog(box: Container) -> None:
    pid = box.main_pid()
    box.run(f"kill -STOP {pid}")
    took = wait_for(lambda: box.main_pid() not in (0, pid) and web(box)["state"] == "MASTER",
                    WATCHDOG_LIMIT, "the watchdog to restart the stopped daemon")
    FIGURES["watchdog restart (s)"] = took
    assert "Watchdog timeout" in box.out("journalctl -u vrrpd --no-pager")


def realtime_restart(box: Container) -> tuple[str, str]:
    """Restart with ``realtime_priority: 10``; what the daemon logged about it, and how its
    main thread is scheduled (``chrt -p``)."""
    since = box.out("date '+%Y-%m-%d %H:%M:%S'")
    box.run("systemctl restart vrrpd")
    wait_for(lambda: web(box)["state"] == "MASTER", 15, "MASTER after the restart")
    journal = box.out(f"journalctl -u vrrpd --no-pager --since '{since}' "
                      "SYSLOG_IDENTIFIER=vrrpd")
    said = next(line for line in journal.splitlines()
                if "realtime_priority" in line or "event loop scheduled" in line)
    return said, box.out(f"chrt -p {box.main_pid()}")


def test_realtime_priority_needs_its_drop_in_and_never_stops_the_daemon(box: Container) -> None:
    """The unit forbids real-time scheduling: the daemon says so (naming the drop-in) and runs
    normally scheduled.  With the shipped drop-in it runs SCHED_RR, or, where the service's
    cgroup has no real-time budget (CONFIG_RT_GROUP_SCHED with cgroup v1, as in this LXC
    container on some hosts), it says the kernel refused and runs on."""
    box.write("/etc/vrrpd/vrrpd.yaml", "realtime_priority: 10\n" + CONFIG)
    said, policy = realtime_restart(box)
    assert "the kernel refused real-time scheduling" in said, said
    assert "vrrpd.service.d/realtime.conf" in said
    assert "SCHED_OTHER" in policy, policy
    box.run("install -D -m 0644 /usr/share/doc/vrrpd/examples/vrrpd.service.d/realtime.conf "
            "/etc/systemd/system/vrrpd.service.d/realtime.conf && systemctl daemon-reload")
    said, policy = realtime_restart(box)
    print(f"with the drop-in: {said.split(': ', 1)[-1]}; {policy}")
    if "event loop scheduled SCHED_RR priority 10" in said:
        assert "SCHED_RR" in policy and "priority: 10" in policy, policy
    else:  # refused by the cgroup's budget, not by the sandbox: CAP_SYS_NICE is held
        assert "the kernel refused real-time scheduling" in said, said
        assert "SCHED_OTHER" in policy, policy
        effective = int(box.out(f"awk '/^CapEff/{{print $2}}' /proc/{box.main_pid()}/status"),
                        16)
        assert effective >> CAPABILITIES.index("sys_nice") & 1, hex(effective)
    box.run("rm /etc/systemd/system/vrrpd.service.d/realtime.conf && systemctl daemon-reload")
    box.write("/etc/vrrpd/vrrpd.yaml", CONFIG)
    box.run("systemctl restart vrrpd")
    wait_for(lambda: web(box)["state"] == "MASTER", 15, "MASTER as configured before")


def test_purge_leaves_nothing(box: Container) -> None:
    # Every file and link the package installed (directories like /usr/bin stay, of course).
    files = box.out("dpkg -L vrrpd | while read -r f; do [ -d \"$f\" ] || echo \"$f\"; done")
    assert len(files.splitlines()) > 100
    box.run("apt-get purge -y vrrpd", timeout=120)
    left = box.run(f"ls -d {' '.join(files.split())} 2>/dev/null", check=False).stdout.split()
    assert left == []
    # What vrrpd made at run time goes too: its configuration, state, socket, account.  A file
    # the administrator added (here the test's hook) stays, as Debian's purge does elsewhere.
    assert box.out("find /etc/vrrpd ! -type d") == "/etc/vrrpd/hooks/test-hook.sh"
    for path in ("/var/lib/vrrpd", "/run/vrrpd", "/opt/venvs/vrrpd",
                 "/etc/systemd/system/multi-user.target.wants/vrrpd.service"):
        assert box.run(f"test -e {path}", check=False).returncode == 1, path
    assert box.run("getent passwd vrrpd", check=False).returncode == 2
    assert box.run("getent group vrrpd", check=False).returncode == 2
    assert box.run("pgrep -x vrrpd", check=False).returncode == 1
    assert box.out("systemctl is-active vrrpd; true") in ("inactive", "unknown")
    assert box.run("dpkg -s vrrpd", check=False).returncode != 0
