"""Where a 255-VRID pair spends its CPU and memory: the profile behind benchmarks/scale.py.

Run as root: ``.venv/bin/python benchmarks/footprint.py [--seconds 20] [--py-spy PATH]``

Brings up :func:`benchmarks.scale.pair` (255 VRRPv3 instances at 0.1 s, lb1 master of all,
lb2 backup), then for ``--seconds`` measures each daemon's CPU (seconds per second), peak RSS
(``VmHWM``) and transitions, and, with ``--py-spy`` (py-spy 0.4, pip; a development tool, not a
dependency of vrrpd), samples both daemons at 200 Hz and reports the functions that take the
most samples, by their own time and including what they call (samples waiting in the event
loop's ``select`` are counted apart: py-spy takes them as active).  It also measures what the
daemon's imports cost (:data:`IMPORT_STEPS`: VmRSS and time after each, in a fresh
interpreter) and each daemon's RSS now beside its peak.  To compare with an older commit,
run this script from a checkout of it.  Writes
``benchmarks/results/footprint-<UTC time>.json`` (:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record, byte_compile  # noqa: E402
from benchmarks.scale import ProcessTree, pair  # noqa: E402

TOP = 25  # functions reported per node and view
IDLE = "EpollSelector.select (selectors.py"  # the loop waiting for its next event

# What a daemon start imports, in order, each measured after the previous ones (the last
# line: what the daemon builds before its first event); and the big parts alone.
IMPORT_STEPS = [
    ("python", ""),
    ("vrrpd (asyncio without ssl, vrrpd/imports.py)", "import vrrpd"),
    ("configuration (PyYAML, vrrpd.config)", "import vrrpd.cli.vrrpd_main"),
    ("pyroute2 rtnetlink (vrrpd.kernel.link)", "import vrrpd.kernel.link"),
    ("the rest of the daemon (vrrpd.daemon.runtime)", "import vrrpd.daemon.runtime"),
    ("its kernel adapters", "import vrrpd.daemon.ports; vrrpd.daemon.ports.real_kernel()"),
]
ALONE = ["ssl", "asyncio", "yaml", "psutil"]  # asyncio alone imports ssl (5 MiB of it)
MEASURE = """
import json, re, sys, time
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
out = []
for name, code in STEPS:
    t = time.perf_counter()
    exec(code)
    out.append([name, round(rss(), 1), round((time.perf_counter() - t) * 1000, 1)])
print(json.dumps(out))
"""


def summarize(raw: str) -> dict[str, Any]:
    """Self and inclusive shares of the functions in py-spy's collapsed stacks, over the
    samples not waiting in the event loop's ``select`` (their share is ``waiting``)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue  # not a sample line (py-spy's own notes)
        frames, n = stack.split(";"), int(count)
        if frames[-1].startswith(IDLE):
            waiting += n
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return {"samples": total, "waiting": round(waiting / max(1, total + waiting), 4),
            "self": [[f, round(c / total, 4)] for f, c in own.most_common(TOP)],
            "inclusive": [[f, round(c / total, 4)] for f, c in inclusive.most_common(TOP)]}


def import_costs() -> dict[str, Any]:
    """VmRSS (MiB) and milliseconds after each of :data:`IMPORT_STEPS` in one fresh
    interpreter, and each of :data:`ALONE` alone after a bare start."""
    def child(steps: list[tuple[str, str]]) -> list[list[Any]]:
        out = subprocess.run([sys.executable, "-c", f"STEPS = {steps!r}\n{MEASURE}"],
                             capture_output=True, text=True, check=True, cwd=REPO)
        result: list[list[Any]] = json.loads(out.stdout)
        return result

    daemon = child(IMPORT_STEPS)
    alone = {m: round(child([("python", ""), (m, f"import {m}")])[1][1] - daemon[0][1], 1)
             for m in ALONE}
    return {"daemon_steps_mib_ms": daemon, "alone_mib_over_python": alone}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--instances", type=int, default=255)
    p.add_argument("--py-spy", help="path of py-spy: also sample where the time goes")
    p.add_argument("--label", default="", help="what is measured (a commit, a change)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("footprint.py: run as root (network namespaces)", file=sys.stderr)
        return 1
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    record = Record("footprint", parameters={**vars(args), "vrrpd_commit": commit,
                                            "byte_code": byte_compile()})
    result: dict[str, Any] = {"label": args.label, "vrrpd_commit": commit,
                              "imports": import_costs()}
    with tempfile.TemporaryDirectory(prefix="vrrpd-footprint-") as tmp:
        with pair("vrrpd", args.instances, 0.1, Path(tmp)) as (_lab, daemons, _sources):
            trees = {name: ProcessTree(d.pid()) for name, d in daemons.items()}
            cpu0 = {name: t.cpu_seconds() for name, t in trees.items()}
            trans0 = {name: d.transitions() for name, d in daemons.items()}
            start = time.monotonic()
            spies = {}
            if args.py_spy:
                for name, d in daemons.items():
                    spies[name] = subprocess.Popen(
                        [args.py_spy, "record", "-p", str(d.pid()), "-d", str(int(args.seconds)),
                         "-r", "200", "-f", "raw", "--nonblocking", "-o",
                         str(Path(tmp) / f"{name}.txt")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for spy in spies.values():
                    spy.wait()
            time.sleep(max(0.0, args.seconds - (time.monotonic() - start)))
            elapsed = time.monotonic() - start
            result["cpu_per_s"] = {n: round((t.cpu_seconds() - cpu0[n]) / elapsed, 4)
                                   for n, t in trees.items()}
            result["peak_rss_mib"] = {n: round(t.peak_rss() / 2**20, 1)
                                      for n, t in trees.items()}
            result["rss_now_mib"] = {n: round(t.rss() / 2**20, 1) for n, t in trees.items()}
            result["transitions_in_window"] = {n: d.transitions() - trans0[n]
                                               for n, d in daemons.items()}
            result["loadavg_1min"] = round(os.getloadavg()[0], 2)
        for name in spies:
            result.setdefault("profile", {})[name] = summarize(
                (Path(tmp) / f"{name}.txt").read_text())
    print(f"{args.label or commit[:10]}: CPU lb1 (master) {result['cpu_per_s']['lb1']:.1%}, "
          f"lb2 (backup) {result['cpu_per_s']['lb2']:.1%}; peak RSS {result['peak_rss_mib']}; "
          f"transitions {result['transitions_in_window']}; load {result['loadavg_1min']}")
    for name, mib, ms in result["imports"]["daemon_steps_mib_ms"]:
        print(f"  {name:48} {mib:5.1f} MiB  {ms:6.1f} ms")
    print(f"  alone, over a bare python: {result['imports']['alone_mib_over_python']} MiB; "
          f"RSS now {result['rss_now_mib']}")
    for name, prof in result.get("profile", {}).items():
        print(f"  {name}: {prof['samples']} samples ({prof['waiting']:.0%} more waiting in "
              "select); most time including callees:")
        for frame, share in prof["inclusive"][8:18]:
            print(f"    {share:6.1%} {frame}")
    record.write(runs=[result], summary={k: v for k, v in result.items() if k != "profile"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
