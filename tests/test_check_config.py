"""``vrrpd --check-config`` refuses what would make the daemon's start fail on this host.

The daemon's start loads the file exactly like the check (``load_config(path, host=True)``), so
each mistake here is also what a start would refuse; ``test_start_refuses_the_same`` shows it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vrrpd.config.loader import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]

BASE = """\
node: lb1
control_socket: {tmp}/vrrpd.sock
control_socket_group: root
state_dir: {tmp}/state
instances:
  - name: web
    interface: lo
    vrid: 51
    vips: [192.0.2.100/24]
    notify: {tmp}/notify.sh
    track: [check]
tracks:
  check: {{type: script, command: /bin/true, user: nobody}}
sync_groups:
  pacs: {{instances: [web, web2], notify: {tmp}/notify.sh}}
config_sync:
  listen: 127.0.0.1:7000
  peers: [192.0.2.12:7000]
  cert: {tmp}/node.pem
  peer_fingerprints: ["sha256:{pin}"]
  files: [/etc/haproxy/haproxy.cfg]
  validate: "haproxy -c -f {{path}}"
  reload: "systemctl reload haproxy"
  instance: web
"""
SECOND = """\
  - {name: web2, interface: lo, vrid: 52, vips: [192.0.2.101/24]}
tracks:"""


def vrrpd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vrrpd", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


@pytest.fixture
def base(tmp_path: Path) -> str:
    """A valid file on this host: key made by `vrrpd config-sync keygen`, an executable hook."""
    made = vrrpd("config-sync", "keygen", "--cert", str(tmp_path / "node.pem"), "--name", "lb1")
    assert made.returncode == 0, made.stderr
    hook = tmp_path / "notify.sh"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    return BASE.format(tmp=tmp_path, pin="ab" * 32).replace("tracks:", SECOND, 1)


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "vrrpd.yaml"
    path.write_text(text)
    return vrrpd("--check-config", "-c", str(path))


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_valid_file_on_this_host_passes(tmp_path: Path, base: str) -> None:
    done = check(tmp_path, base)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == f"{tmp_path}/vrrpd.yaml: OK (2 instance(s))\n"


# (text to replace, replacement, text on the line the error names, key path, words of the
# reason)
HOST_MISTAKES = [
    ("/node.pem", "/missing.pem", "cert:", "config_sync.cert",
     "missing.pem does not exist; create it with `vrrpd config-sync keygen --cert"),
    ("/node.pem", "/notify.sh", "cert:", "config_sync.cert",
     "must hold a PEM private key and certificate"),
    ("/node.pem", "", "cert:", "config_sync.cert", "Is a directory"),
    ("control_socket_group: root", "control_socket_group: vrnosuchgroup", "control_socket_group",
     "control_socket_group", "no group 'vrnosuchgroup' on this host (`getent group"),
    ("user: nobody", "user: vrnosuchuser", "check:", "tracks.check.user",
     "no user 'vrnosuchuser' on this host"),
    ("notify.sh\n    track", "nohook.sh\n    track", "nohook.sh", "instances[0].notify",
     "nohook.sh: No such file or directory"),
    ("notify: %s/notify.sh}", "notify: %s}", "pacs:", "sync_groups.pacs.notify",
     "is not a regular file"),
    ("listen: 127.0.0.1:7000", "listen: lb1:7000", "listen:", "config_sync.listen",
     "'lb1' is not an IP address"),
]


@pytest.mark.parametrize("old,new,at,key,reason", HOST_MISTAKES,
                         ids=[f"{m[3]}-{i}" for i, m in enumerate(HOST_MISTAKES)])
def test_host_mistake_is_refused_with_file_line_key(tmp_path: Path, base: str, old: str,
                                                    new: str, at: str, key: str,
                                                    reason: str) -> None:
    old, new = old.replace("%s", str(tmp_path)), new.replace("%s", str(tmp_path))
    assert old in base
    text = base.replace(old, new, 1)
    done = check(tmp_path, text)
    assert done.returncode == 1, done.stdout
    prefix = f"vrrpd: configuration refused: {tmp_path}/vrrpd.yaml:{line_of(text, at)}: {key}: "
    assert done.stderr.startswith(prefix), done.stderr
    assert reason in done.stderr


def test_hook_that_is_not_executable_is_refused(tmp_path: Path, base: str) -> None:
    (tmp_path / "notify.sh").chmod(0o644)
    done = check(tmp_path, base)
    assert done.returncode == 1
    assert (f"{tmp_path}/vrrpd.yaml:{line_of(base, 'notify:')}: instances[0].notify: "
            f"{tmp_path}/notify.sh is not executable (`chmod +x") in done.stderr


def test_no_host_checks_skips_them_but_not_the_file_checks(tmp_path: Path, base: str) -> None:
    elsewhere = base.replace(str(tmp_path), "/etc/vrrpd").replace("root", "vrnosuchgroup")
    path = tmp_path / "peer.yaml"
    path.write_text(elsewhere)
    assert vrrpd("--check-config", "-c", str(path)).returncode == 1
    done = vrrpd("--check-config", "--no-host-checks", "-c", str(path))
    assert (done.returncode, done.stderr) == (0, "")
    path.write_text(elsewhere.replace("ab" * 32, "0" * 64))
    refused = vrrpd("--check-config", "--no-host-checks", "-c", str(path))
    assert refused.returncode == 1 and "all-zeros placeholder" in refused.stderr


def test_no_host_checks_is_refused_for_the_daemon(tmp_path: Path, base: str) -> None:
    path = tmp_path / "vrrpd.yaml"
    path.write_text(base)
    done = vrrpd("--no-host-checks", "-c", str(path))
    assert done.returncode == 2 and "only goes with --check-config" in done.stderr


def test_start_refuses_the_same(tmp_path: Path, base: str) -> None:
    """The daemon's start (and reload) load with the host checks: same error, no start."""
    path = tmp_path / "vrrpd.yaml"
    path.write_text(base.replace("user: nobody", "user: vrnosuchuser"))
    with pytest.raises(ConfigError, match=r"tracks\.check\.user: no user 'vrnosuchuser'"):
        load_config(path)
    done = vrrpd("-c", str(path))
    assert done.returncode == 1
    assert "configuration refused" in done.stderr and "vrnosuchuser" in done.stderr
    assert not (tmp_path / "vrrpd.sock").exists()


def test_interface_problems_are_warnings(tmp_path: Path, base: str) -> None:
    """A missing interface starts the instance in FAULT (it joins when the interface
    appears), so the check warns and exits 0."""
    text = base.replace("interface: lo", "interface: vrnosuch0", 1)
    done = check(tmp_path, text)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"{tmp_path}/vrrpd.yaml: warning: instances[0].interface: interface vrnosuch0 does "
        "not exist: instance web would wait in FAULT until it is usable")


@pytest.mark.parametrize("accept_mode", [False, True])
def test_accept_mode_false_vip_bound_by_haproxy_is_warned(tmp_path: Path, base: str,
                                                          accept_mode: bool) -> None:
    """A HAProxy ``bind`` on a VIP whose instance has ``accept_mode: false`` would get no
    connection (RFC 5798 §6.4.3): --check-config warns, naming the file and line, and still
    accepts the file; with ``accept_mode: true`` nothing is said."""
    haproxy = tmp_path / "haproxy.cfg"
    haproxy.write_text("frontend web\n    bind 192.0.2.100:80\n    bind 127.0.0.1:8405\n")
    setting = f"    accept_mode: {str(accept_mode).lower()}\n"
    text = base.replace("/etc/haproxy/haproxy.cfg", str(haproxy)).replace(
        "    track: [check]\n", "    track: [check]\n" + setting)
    done = check(tmp_path, text)
    assert done.returncode == 0, done.stderr
    warned = f"{haproxy}:2 binds 192.0.2.100, a VIP of web, which has accept_mode: false"
    assert (warned in done.stdout) is not accept_mode, done.stdout
