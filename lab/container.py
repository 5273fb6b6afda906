"""A fresh Debian 12 container booted with systemd, for the package's system test and benchmark.

:func:`booted` unpacks ``scripts/build-box --rootfs-only`` (plain Debian 12: systemd, python3,
iproute2; no network) into a privileged LXC container ``vrsys-<hex>`` whose eth0 has ``address``
on a veth with the host end ``vrsys<hex>`` (so the host can listen to its frames), boots it,
and destroys it and its veth on the way out, whatever happened.  :func:`package` gives the
.deb of this checkout, rebuilt with ``scripts/build-deb`` when any product file is newer.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LXC_PATH = Path("/var/lib/lxc")
PRODUCT = ("vrrpd", "etc", "hooks", "man", "debian", "setup.cfg", "scripts/build-deb")


def unavailable() -> str | None:
    """Why this machine cannot boot the container, or None."""
    if os.geteuid() != 0:
        return "needs root (privileged LXC containers)"
    for tool in ("lxc-start", "lxc-attach", "lxc-destroy", "debootstrap", "dpkg-buildpackage"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install lxc debootstrap dpkg-dev)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "needs cgroups for systemd in a container"
    return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll ``predicate`` (an exception counts as not yet); return the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except (AssertionError, ValueError, KeyError, StopIteration):
            pass
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


class Container:
    """A booted container; ``run`` executes a shell command in it as root."""

    def __init__(self, name: str, host_if: str) -> None:
        self.name, self.host_if = name, host_if
        self.rootfs = LXC_PATH / name / "rootfs"

    def run(self, cmd: str, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["lxc-attach", "-n", self.name, "--clear-env",
             "--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--set-var", "LANG=C.UTF-8",
             "--", "/bin/sh", "-c", cmd],
            capture_output=True, text=True, timeout=timeout)
        if check and done.returncode:
            raise AssertionError(f"[{self.name}] {cmd} exited {done.returncode}:\n"
                                 f"{done.stdout}{done.stderr}")
        return done

    def out(self, cmd: str) -> str:
        return self.run(cmd).stdout.strip()

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        target = self.rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def status(self) -> dict[str, Any]:
        """``vrrpctl --json status`` inside the container."""
        doc: dict[str, Any] = json.loads(self.out("vrrpctl --json status"))
        return doc

    def instance(self, name: str) -> dict[str, Any]:
        return next(i for i in self.status()["instances"] if i["name"] == name)

    def main_pid(self) -> int:
        return int(self.out("systemctl show -p MainPID --value vrrpd"))

    def addresses(self, ifname: str = "eth0") -> set[str]:
        shown = json.loads(self.out(f"ip -j addr show dev {ifname}"))[0]["addr_info"]
        return {f"{a['local']}/{a['prefixlen']}" for a in shown if a["family"] == "inet"}


def package() -> Path:
    """dist/vrrpd_<version>_amd64.deb, rebuilt unless it is newer than every product file."""
    version = next(line.split('"')[1] for line in (REPO / "vrrpd" / "__init__.py").open()
                   if line.startswith("__version__"))
    deb = REPO / "dist" / f"vrrpd_{version}_amd64.deb"
    newest = max(p.stat().st_mtime for name in PRODUCT for p in
                 ([REPO / name] if (REPO / name).is_file() else (REPO / name).rglob("*")))
    if not deb.exists() or deb.stat().st_mtime < newest:
        subprocess.run([str(REPO / "scripts" / "build-deb")], check=True, timeout=600)
    return deb


@contextlib.contextmanager
def booted(address: str, files: tuple[Path, ...] = ()) -> Iterator[Container]:
    """A booted container with ``files`` copied into its /root; destroyed on the way out."""
    tag = secrets.token_hex(3)
    c = Container(f"vrsys-{tag}", f"vrsys{tag}")
    (LXC_PATH / c.name).mkdir(parents=True)
    try:
        subprocess.run([str(REPO / "scripts" / "build-box"), "--rootfs-only", str(c.rootfs)],
                       check=True, timeout=900, capture_output=True)
        (LXC_PATH / c.name / "config").write_text(f"""\
lxc.uts.name = {c.name}
lxc.rootfs.path = dir:{c.rootfs}
lxc.include = /usr/share/lxc/config/common.conf
lxc.apparmor.profile = unconfined
lxc.init.cmd = /sbin/init
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.net.0.type = veth
lxc.net.0.veth.pair = {c.host_if}
lxc.net.0.name = eth0
lxc.net.0.flags = up
lxc.net.0.ipv4.address = {address}
""")
        for f in files:
            shutil.copy(f, c.rootfs / "root" / f.name)
        subprocess.run(["lxc-start", "-n", c.name], check=True, timeout=60)
        subprocess.run(["ip", "link", "set", c.host_if, "up"], check=True)
        wait_for(lambda: c.run("systemctl is-system-running --wait", check=False, timeout=60)
                 .stdout.strip() in ("running", "degraded"), 90, "systemd in the container")
        yield c
    finally:
        subprocess.run(["lxc-stop", "-n", c.name, "-k"], capture_output=True, timeout=60)
        subprocess.run(["lxc-destroy", "-n", c.name], capture_output=True, timeout=120)
        shutil.rmtree(LXC_PATH / c.name, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", c.host_if], capture_output=True)
