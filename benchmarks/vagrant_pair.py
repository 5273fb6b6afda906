#!/usr/bin/env python3
"""The Vagrant pair's figures: box build time from scratch, `vagrant up` time, system-test time
and the outage the client saw for each failover on the booted pair.

    .venv/bin/python benchmarks/vagrant_pair.py      # as root, ~10 min

1. ``scripts/build-box`` into an empty cache (a temporary ``VRBOX_CACHE``): debootstrap, the
   box packages, pynetdicom, packing; the box Vagrant holds is only replaced if it differs.
2. ``scripts/pair-test`` (its cached box): build the .deb, ``vagrant up`` the five machines,
   pytest tests/system, ``vagrant destroy``; it records the timings and every outage line
   (``PAIR_RESULTS``).

Prints the figures and writes them to benchmarks/results/vagrant-pair-<UTC time>.json
(:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    record = Record("vagrant-pair", {})
    with tempfile.TemporaryDirectory(prefix="vrbox-bench-", dir="/var/tmp") as cache:
        start = time.monotonic()
        subprocess.run([REPO / "scripts/build-box"], check=True, cwd=REPO,
                       env={**os.environ, "VRBOX_CACHE": cache}, stdout=subprocess.DEVNULL)
        box_s = time.monotonic() - start
        box_mib = sum(p.stat().st_size for p in Path(cache).glob("*.box")) / 2**20
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run([REPO / "scripts/pair-test"], cwd=REPO,
                              env={**os.environ, "PAIR_RESULTS": out.name})
        pair = json.loads(Path(out.name).read_text() or "{}")
    print(f"box build from scratch {box_s:.0f} s ({box_mib:.0f} MiB), vagrant up "
          f"{pair.get('vagrant_up_s')} s, system tests {pair.get('system_tests_s')} s "
          f"(pytest exit {pair.get('pytest_exit')})")
    for o in pair.get("outages", []):
        web, dicom = o["web"], o["dicom"]
        print(f"{o['event']:<44} web {web['outage_ms']:5.0f} ms, {web['failed']:3d} failed, "
              f"via {web['new_lb']} | C-ECHO gap {dicom['outage_ms']:4.0f} ms, "
              f"{dicom['failed']} failed")
    record.write(runs=pair.get("outages", []),
                 summary={"box_build_from_scratch_s": round(box_s, 1),
                          "box_mib": round(box_mib, 1),
                          **{k: v for k, v in pair.items() if k != "outages"}})
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
