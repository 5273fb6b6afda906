"""The Debian package: its size, and how long it takes to install, start and purge.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/package_install.py [--runs 3] [--rebuild]

Builds ``dist/vrrpd_<version>_amd64.deb`` with ``scripts/build-deb`` when it is stale (or with
``--rebuild``, timing the build), boots one fresh Debian 12 container with systemd
(:mod:`lab.container`, the package system test's harness), and ``--runs`` times in it: ``apt-get
install`` of the .deb (offline), ``systemctl enable --now vrrpd`` with a one-instance config
until ``vrrpctl status`` shows MASTER, and ``apt-get purge``.  Prints the figures and writes
``benchmarks/results/package-install-<time>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.container import booted, package, unavailable, wait_for  # noqa: E402

CONFIG = """\
instances:
  - {name: web, interface: eth0, vrid: 51, priority: 150, advert_interval: 0.5,
     vips: [198.51.100.100/24]}
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rebuild", action="store_true", help="rebuild the .deb and time it")
    args = p.parse_args()
    reason = unavailable()
    if reason:
        print(f"package_install: {reason}", file=sys.stderr)
        return 1
    build_s = None
    if args.rebuild:
        start = time.monotonic()
        subprocess.run([str(REPO / "scripts" / "build-deb")], check=True)
        build_s = time.monotonic() - start
    deb = package()
    installed_kib = int(subprocess.run(["dpkg-deb", "-f", str(deb), "Installed-Size"],
                                       capture_output=True, text=True, check=True).stdout)
    record = Record("package-install", vars(args))
    runs = []
    with booted("198.51.100.11/24", (deb,)) as box:
        for _ in range(args.runs):
            start = time.monotonic()
            box.run(f"apt-get install -y --no-install-recommends /root/{deb.name}", timeout=300)
            install = time.monotonic() - start
            box.write("/etc/vrrpd/vrrpd.yaml", CONFIG)
            start = time.monotonic()
            box.run("systemctl enable --now vrrpd")
            wait_for(lambda: box.instance("web")["state"] == "MASTER", 30, "MASTER")
            master = time.monotonic() - start
            start = time.monotonic()
            box.run("apt-get purge -y vrrpd", timeout=300)
            purge = time.monotonic() - start
            runs.append({"install_s": install, "enable_now_to_master_s": master,
                         "purge_s": purge})
            print(f"install {install:.1f} s, enable --now to MASTER {master:.1f} s, "
                  f"purge {purge:.1f} s")
    summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    deb_kib = round(deb.stat().st_size / 1024)
    print(f"{deb.name}: {deb_kib} KiB, installed {installed_kib} KiB"
          + (f", built in {build_s:.0f} s" if build_s else "") + "; median of "
          f"{len(runs)}: install {summary['install_s']:.1f} s, enable --now to MASTER "
          f"{summary['enable_now_to_master_s']:.1f} s, purge {summary['purge_s']:.1f} s")
    record.write(runs=runs, summary={"median": summary}, deb=deb.name, deb_kib=deb_kib,
                 installed_kib=installed_kib, build_s=build_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
