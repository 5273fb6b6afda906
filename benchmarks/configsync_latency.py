"""Config sync latency: an edit of haproxy.cfg on the master, live on the backup's HAProxy.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/configsync_latency.py [--runs 10]

Builds :class:`lab.configsync_pair.ConfigSyncLab`: lb1 (MASTER, the sync source) and lb2 in network
namespaces, real HAProxy 2.6 master-worker on both (``-W -D -p PIDFILE -S master.sock``), two
real vrrpd daemons with ``config_sync:`` pinning each other's ``vrrpd config-sync keygen``
certificate, reload ``kill -USR2`` confirmed through the master CLI (``show proc``).  Then:

* ``runs`` times, each at a random time (0.5 s plus a delay uniform over the config sync
  service's 0.25 s file poll, recorded per run, so the write does not land at one fixed point
  of the poll): write a configuration with a new ``X-Config-Gen`` on lb1 and time, from the
  write, (a) the new file installed on lb2 and (b) lb2's HAProxy answering a fresh request on
  its loopback with the new generation (polled every 2 ms).  Median, min and max; target:
  median of (b) <= 2 s.
* a broken edit (``http-request retrun``): refused by lb2's ``haproxy -c``, whose message is
  shown on lb1 (``vrrpctl config-sync status`` / ``sync push``), while lb2 keeps serving.

Prints the figures and writes them to ``benchmarks/results/configsync-latency-<UTC time>.json``
(:mod:`benchmarks.record`).
Exit status 1 when the target or the broken-edit check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402
from lab.configsync_pair import ConfigSyncLab, haproxy_config, wait_for  # noqa: E402
from lab.phase import random_phase  # noqa: E402
from vrrpd.cli.configsync_cli import render_config_sync  # noqa: E402
from vrrpd.configsync.service import POLL  # noqa: E402
from vrrpd.control.client import ControlError  # noqa: E402

SETTLE = 0.5  # seconds after the previous edit went live, before the random delay
TARGET = 2.0  # seconds, median write -> live on the backup


def one_edit(lab: ConfigSyncLab, gen: int) -> dict[str, float]:
    """Write generation ``gen`` on lb1; seconds to lb2's file and to lb2's HAProxy serving it."""
    want = haproxy_config(gen)
    backup = lab.haproxy["lb2"]
    start = lab.edit(gen)
    installed = live = None
    while live is None:
        now = time.monotonic() - start
        if now > 10:
            raise TimeoutError(f"generation {gen} not live on lb2 after 10 s\n{lab.logs()}")
        if installed is None and lab.cfg("lb2").read_text() == want:
            installed = now
        if backup.generation() == str(gen):
            live = time.monotonic() - start
        time.sleep(0.002)
    return {"installed": installed if installed is not None else live, "live": live}


def broken_edit(lab: ConfigSyncLab, serving: str) -> dict[str, Any]:
    """A configuration ``haproxy -c`` refuses: the message on lb1, lb2 still serving."""
    lab.cfg("lb1").write_text(haproxy_config(999).replace("http-request return",
                                                          "http-request retrun"))
    took = wait_for(lambda: "validation failed" in str(lab.last_push("lb1").get("error")), 10,
                 "lb2 to refuse the broken edit", poll=0.01)
    status = render_config_sync("config-sync-status", lab.vrrpd["lb1"].ctl("config-sync-status"))
    try:
        lab.vrrpd["lb1"].ctl("config-sync-push")
        push = "sync push: unexpectedly accepted"
    except ControlError as exc:
        push = f"sync push: {exc}"
    still = lab.haproxy["lb2"].generation()
    return {"refused_after_s": took, "status": status, "push": push,
            "backup_serving": still,
            "ok": still == serving and "retrun" in status and "retrun" in push}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seed", type=int, help="seed of the edit times (default: random)")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("run as root (network namespaces)", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(args.seed)
    record = Record("configsync-latency", vars(args))
    with tempfile.TemporaryDirectory(prefix="vrrpd-sync-bench-") as tmp, \
            ConfigSyncLab(Path(tmp)) as lab:
        first = lab.vrrpd["lb1"].ctl("config-sync-push")  # lb2 is a fresh install: never synced
        print("first sync onto a fresh backup:",
              *(f"{p}: {r.get('message')} ({r.get('reload')})"
                for p, r in first["peers"].items()))
        runs = []
        for gen in range(1, args.runs + 1):
            time.sleep(SETTLE)
            delay = random_phase(POLL, rng)
            runs.append({"delay_s": round(SETTLE + delay, 4), **one_edit(lab, gen)})
            print(f"run {gen}: edit at +{delay * 1000:3.0f} ms, file installed on lb2 "
                  f"{runs[-1]['installed'] * 1000:.0f} ms, "
                  f"live on lb2's HAProxy {runs[-1]['live'] * 1000:.0f} ms")
        broken = broken_edit(lab, str(args.runs))
    live = [r["live"] for r in runs]
    installed = [r["installed"] for r in runs]
    summary = {"median_live_s": statistics.median(live), "min_live_s": min(live),
               "max_live_s": max(live), "median_installed_s": statistics.median(installed),
               "min_installed_s": min(installed), "max_installed_s": max(installed),
               "target_s": TARGET, "broken_edit_refused_after_s": broken["refused_after_s"]}
    print(f"\nedit on lb1 -> live on lb2 (HAProxy answers with the new config), "
          f"{len(runs)} runs: median {summary['median_live_s'] * 1000:.0f} ms, "
          f"min {summary['min_live_s'] * 1000:.0f} ms, "
          f"max {summary['max_live_s'] * 1000:.0f} ms (file installed: median "
          f"{summary['median_installed_s'] * 1000:.0f} ms); target <= {TARGET:g} s: "
          f"{'met' if summary['median_live_s'] <= TARGET else 'MISSED'}")
    print(f"\nbroken edit refused by lb2 after {broken['refused_after_s'] * 1000:.0f} ms; lb2 "
          f"still serves generation {broken['backup_serving']}: "
          f"{'ok' if broken['ok'] else 'FAILED'}")
    print("vrrpctl config-sync status (on lb1):\n  " + broken["status"].replace("\n", "\n  "))
    print("vrrpctl " + broken["push"].replace("\n", "\n  "))
    record.write(runs=runs, summary=summary, broken_edit=broken)
    return 0 if summary["median_live_s"] <= TARGET and broken["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
