"""Least privilege (issue 12 part 5): vrrpd works with exactly the credentials of its unit.

The daemon is started with ``setpriv`` from what ``etc/systemd/vrrpd.service`` says (its user
becomes an unused uid, since the package's ``vrrpd`` account does not exist here; the
capability, bounding and no-new-privileges settings are read from the unit), next to a normal
peer.  Each capability the unit grants is used and checked here:

* CAP_NET_ADMIN: the VIP appears on the interface (netlink); a ``virtual_mac`` instance makes
  its macvlan link, brings it up and puts its VIP there; an ``accept_mode: false`` instance
  installs its nftables chain;
* CAP_NET_RAW: the peer hears its adverts (raw protocol 112) and its gratuitous ARPs (AF_PACKET);
* CAP_SETUID/CAP_SETGID: a script tracker runs as ``nobody``;
* CAP_KILL: an overrunning script tracker (as ``nobody``) is killed, none pile up;
* CAP_CHOWN: the control socket belongs to ``control_socket_group``, a group the daemon is not
  in; a member of it can use it, another user cannot.

And what the unit does not grant is not needed: a ``process`` tracker watches a root process by
pidfd without CAP_SYS_PTRACE and sees it die at once; notify hooks run without capabilities.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.daemons import REPO, AddressProbe, Vrrpd, wait_for
from lab.netns import Topology
from lab.sniff import Sniffer
from vrrpd.daemon.privileges import CAPABILITIES

UNIT = REPO / "etc" / "systemd" / "vrrpd.service"
VIP = "192.0.2.100/24"
VMAC_VIP = "192.0.2.101/24"
FILTERED_VIP = "192.0.2.102/24"
VIRTUAL_MAC = "00:00:5e:00:01:34"  # RFC 5798 section 7.3, VRID 52
OVERRUN = "sleep 31.4159"  # a script tracker that never finishes in time


def unit_settings() -> dict[str, list[str]]:
    """``Key=value words`` of the unit's [Service] section (comments skipped)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "[")):
            settings[key.strip()] = value.split()
    return settings


def mask(caps: list[str]) -> int:
    return sum(1 << CAPABILITIES.index(c.lower().removeprefix("cap_")) for c in caps)


def unused_id() -> int:
    """A uid that is also a gid, with no account or group: the stand-in for user vrrpd."""
    while True:
        n = random.randrange(61000, 64000)
        try:
            pwd.getpwuid(n)
        except KeyError:
            try:
                grp.getgrgid(n)
            except KeyError:
                return n


def setpriv(uid: int, gid: int, unit: dict[str, list[str]] | None = None) -> list[str]:
    """``setpriv`` giving a process what the unit gives vrrpd (or, without unit, nothing)."""
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    if unit is None:
        return argv
    caps = ",".join("+" + c.lower().removeprefix("cap_") for c in unit["AmbientCapabilities"])
    bounding = ",".join("+" + c.lower().removeprefix("cap_")
                        for c in unit["CapabilityBoundingSet"])
    argv += [f"--inh-caps=-all,{caps}", f"--ambient-caps={caps}",
             f"--bounding-set=-all,{bounding}"]
    if unit.get("NoNewPrivileges") == ["yes"]:
        argv.append("--no-new-privs")
    return argv


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def overrunning_scripts() -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "cmdline").read_bytes() == OVERRUN.replace(" ", "\0").encode() + b"\0":
                count += 1  # the sleep itself, not the shell around it
        except OSError:
            continue
    return count


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory the unprivileged daemon can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="vrsys-priv-"))
    path.chmod(0o755)
    # The daemon runs from this checkout and its .venv: a clone under `mktemp -d` (mode 0700)
    # is closed to other users, so open the path to it for the test and close it after.
    closed = [d for d in (REPO, *REPO.parents) if not d.stat().st_mode & 0o001]
    modes = {d: d.stat().st_mode for d in closed}
    for d, mode in modes.items():
        d.chmod(mode | 0o001)
    try:
        yield path
    finally:
        for d, mode in modes.items():
            d.chmod(mode)
        shutil.rmtree(path, ignore_errors=True)


def test_the_unit_grants_few_capabilities_and_no_ptrace() -> None:
    unit = unit_settings()
    assert unit["User"] == ["vrrpd"] and unit["NoNewPrivileges"] == ["yes"]
    assert set(unit["AmbientCapabilities"]) == set(unit["CapabilityBoundingSet"])
    assert "CAP_SYS_PTRACE" not in unit["CapabilityBoundingSet"]
    assert not [c for c in unit["CapabilityBoundingSet"] if c.startswith(("CAP_DAC", "CAP_SYS"))]


def test_the_daemon_works_with_exactly_the_units_credentials(two_nodes: Topology,
                                                              home: Path) -> None:
    unit = unit_settings()
    uid, member_uid = unused_id(), unused_id()
    group = grp.getgrgid(65534)  # nogroup: the daemon is not in it
    lb1, lb2 = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    hook = home / "hook.sh"
    hook.write_text("#!/bin/sh\necho \"$3 uid=$(id -u) $(grep CapEff /proc/self/status)\" "
                    f">> {home}/lb1/hook.log\n")
    hook.chmod(0o755)
    root_process = subprocess.Popen(["sleep", "300"])  # HAProxy's stand-in: a root process
    pidfile = home / "root.pid"
    pidfile.write_text(f"{root_process.pid}\n")
    tracks = {
        "root_process": {"type": "process", "pidfile": str(pidfile), "interval": 60},
        "as_nobody": {"type": "script", "interval": 0.2,
                      "command": "test \"$(id -un)\" = nobody && "
                                 "grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status"},
        "overrun": {"type": "script", "command": OVERRUN, "timeout": 0.2, "interval": 0.3,
                    "weight": -10},
    }
    web = {"name": "web", "interface": "eth0", "vrid": 51, "advert_interval": 0.1,
           "vips": [VIP]}
    vmac = {**web, "name": "vmac", "vrid": 52, "vips": [VMAC_VIP], "virtual_mac": True}
    filtered = {**web, "name": "filtered", "vrid": 53, "vips": [FILTERED_VIP],
                "accept_mode": False}
    d1 = Vrrpd(lb1, home, [{**web, "priority": 150, "notify": str(hook),
                            "track": list(tracks)}, {**vmac, "priority": 150},
                           {**filtered, "priority": 150}],
               tracks=tracks, control_socket_group=group.gr_name)
    d2 = Vrrpd(lb2, home, [{**web, "priority": 100}, {**vmac, "priority": 100},
                           {**filtered, "priority": 100}])
    os.chown(d1.dir, uid, uid)
    for path in d1.dir.iterdir():
        os.chown(path, uid, uid)
    probe = AddressProbe(lb1)
    try:
        with Sniffer(lb2) as sniff:
            d2.start()
            d1.start(wrapper=setpriv(uid, uid, unit))
            d1.wait_state("web", "MASTER")
            d2.wait_state("web", "BACKUP")
            wait_for(lambda: probe.has(VIP), 5, "the VIP on lb1 (netlink, CAP_NET_ADMIN)")
            wait_for(lambda: [f for f in sniff.frames("garp") if f.target == VIP.split("/")[0]],
                     5, "lb1's gratuitous ARP (AF_PACKET, CAP_NET_RAW)")
            wait_for(lambda: [f for f in sniff.frames("vrrp")
                              if f.src == "192.0.2.11" and f.priority == 140],
                     5, "lb1's adverts at 150 - 10 (raw socket, CAP_NET_RAW)")
            d1.wait_state("vmac", "MASTER")
            wait_for(lambda: [f for f in sniff.frames("garp") if f.mac == VIRTUAL_MAC
                              and f.target == VMAC_VIP.split("/")[0]],
                     5, "the gratuitous ARP from the virtual MAC")
            d1.wait_state("filtered", "MASTER")
        wait_for(lambda: probe.has(FILTERED_VIP), 5, "the accept_mode: false VIP on lb1")
        rules = lb1.ns.run(["nft", "list", "chain", "inet", "vrrpd_accept", "am_filtered"]).stdout
        assert FILTERED_VIP.split("/")[0] in rules and "drop" in rules, rules
        link = d1.instance("vmac")["virtual_mac"]["link"]
        shown = json.loads(lb1.ns.run(["ip", "-j", "addr", "show", link]).stdout)[0]
        assert shown["address"] == VIRTUAL_MAC and "UP" in shown["flags"]
        assert [a for a in shown["addr_info"] if a["local"] == VMAC_VIP.split("/")[0]]

        status = proc_status(d1.proc.pid)  # type: ignore[union-attr]
        assert status["Uid"].split()[:2] == [str(uid), str(uid)]
        assert int(status["CapEff"], 16) == mask(unit["AmbientCapabilities"])
        assert int(status["CapBnd"], 16) == mask(unit["CapabilityBoundingSet"])
        assert int(status["CapAmb"], 16) == 0, "vrrpd keeps its capabilities to itself"
        assert status["NoNewPrivs"] == "1"

        trackers = {t["name"]: t for t in d1.instance("web")["trackers"]}
        assert trackers["as_nobody"]["ok"], trackers["as_nobody"]
        assert trackers["root_process"]["ok"], trackers["root_process"]
        assert not trackers["overrun"]["ok"]
        time.sleep(1.5)  # five overruns: without CAP_KILL they would pile up
        assert overrunning_scripts() <= 1

        wait_for(lambda: (d1.dir / "hook.log").exists(), 5, "the notify hook")
        assert f"MASTER uid={uid} CapEff:\t0000000000000000" in (d1.dir / "hook.log").read_text()

        sock = d1.socket.stat()
        assert (sock.st_uid, sock.st_gid, sock.st_mode & 0o777) == (uid, 65534, 0o660)
        vrrpctl = [sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket", str(d1.socket),
                   "version"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        member = subprocess.run([*setpriv(member_uid, 65534), *vrrpctl], env=env,
                                capture_output=True, text=True, timeout=30)
        assert member.returncode == 0, member.stderr
        stranger = subprocess.run([*setpriv(member_uid, member_uid), *vrrpctl], env=env,
                                  capture_output=True, text=True, timeout=30)
        assert stranger.returncode != 0 and "permission denied" in stranger.stderr

        # pidfd of a root process, no ptrace: its death is seen at once, not at the 60 s poll.
        root_process.send_signal(signal.SIGKILL)
        took = d1.wait_state("web", "FAULT", timeout=5)
        assert took < 1.0
        d2.wait_state("web", "MASTER")
    finally:
        probe.close()
        for d in (d1, d2):
            d.stop()
        root_process.kill()
        root_process.wait()
