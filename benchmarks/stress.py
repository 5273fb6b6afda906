"""Run the test suite N times in a row while other processes keep every core busy: does it
flake or hang under load?  (Issue 13 part 8.)  ``scripts/stress`` runs this.

    scripts/stress                                   # 10 runs of the suite without tests/system
    scripts/stress --runs 10 -- tests --ignore=tests/lab    # the fast ring (unit + simulation)
    scripts/stress --runs 3 --cap 1200 -- tests/lab/test_failover.py
    scripts/pair-test up                             # the system tests on one booted pair,
    VRRPD_SYSTEM_TESTS=1 scripts/stress --cap 1200 -- tests/system   # then pair-test down

Each run is ``python -m pytest -q -p no:cacheprovider -rfEs ARGS`` (default ARGS: what
``scripts/test`` runs before the system tests, on 4 workers), in its own process
group, capped at ``--cap`` seconds: a run still going then is a *hang*; its whole process group
is killed (pytest-timeout's per-test limit should have stopped it long before).  A run that
ends with a non-zero status is a *failure*; its failed tests are listed.

The load: ``--burners`` processes (default: one per CPU) spinning in pure Python at the same
niceness as the tests, started before the first run and killed after the last, also when this
script is interrupted or fails.  They are bounded: each stops by itself at the latest
``--cap`` x ``--runs`` + 60 s after it started (so not even a SIGKILLed stress run leaves one
spinning), and there are never more than ``--burners``.  How busy the CPUs were during each run
(from /proc/stat) and the load average are recorded with it.

The result goes to ``benchmarks/results/stress-<UTC>.json`` (:mod:`benchmarks.record`) or to
``--out PATH``: runs, failures, hangs, each run's duration, outcome, counts, failed tests and
CPU busy share, and the summary printed at the end.  It is rewritten after every run, so an
interrupted stress run leaves what it saw (``summary.complete`` says whether every run did).
Exit status: 0 when every planned run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import Record  # noqa: E402

# scripts/test's pytest run before the system tests (tests/test_one_home.py checks they agree)
DEFAULT_ARGS = ["-n", "4", "--dist", "loadfile", "--ignore=tests/system"]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs"]
# A burner: spin until its deadline (argv[1], a time.time() value), then exit on its own.
BURN = "import sys, time\nend = float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"
# pytest's short summary lines: "FAILED tests/x.py::test[a b] - AssertionError: ..."
FAILED = re.compile(r"^((?:FAILED|ERROR) \S+\.py.*?)(?: - .*)?$", re.M)
COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def start_burners(count: int, lifetime: float) -> list[subprocess.Popen[bytes]]:
    deadline = str(time.time() + lifetime)
    return [subprocess.Popen([sys.executable, "-c", BURN, deadline], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            for _ in range(count)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Kill each process's whole group and reap it."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def summary_counts(output: str) -> dict[str, int]:
    """pytest's last line, ``3 failed, 700 passed, 20 skipped in 90.1s``, as a dict."""
    lines = [line for line in output.splitlines() if " in " in line and COUNTS.search(line)]
    if not lines:
        return {}
    return {kind.rstrip("s") if kind.startswith("error") else kind: int(n)
            for n, kind in COUNTS.findall(lines[-1])}


def one_run(number: int, args: list[str], cap: float, log_dir: Path) -> dict[str, Any]:
    log_path = log_dir / f"run-{number}.log"
    busy0, total0 = cpu_times()
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*PYTEST, *args], cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            status: int | None = proc.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            stop([proc])  # the run's leftovers too (daemons, HAProxy started by a test)
    duration = time.monotonic() - started
    busy1, total1 = cpu_times()
    output = log_path.read_text(errors="replace")
    outcome = "hang" if status is None else "passed" if status == 0 else "failed"
    failed = [m.group(1) for m in FAILED.finditer(output)]
    return {"run": number, "outcome": outcome, "exit_status": status,
            "duration_s": round(duration, 1), "counts": summary_counts(output),
            "failed_tests": failed,
            "cpu_busy_share": round((busy1 - busy0) / max(1, total1 - total0), 3),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            # what a failed or hung run printed last, to find its cause
            "tail": output.splitlines()[-40:] if outcome != "passed" else []}


def summarise(runs: list[dict[str, Any]], planned: int) -> dict[str, Any]:
    """The summary of the runs so far (``complete`` once all ``planned`` runs are in)."""
    durations = [r["duration_s"] for r in runs]
    return {"runs": len(runs), "planned": planned, "complete": len(runs) == planned,
            "passed": sum(r["outcome"] == "passed" for r in runs),
            "failures": sum(r["outcome"] == "failed" for r in runs),
            "hangs": sum(r["outcome"] == "hang" for r in runs),
            "failed_tests": sorted({t for r in runs for t in r["failed_tests"]}),
            "duration_s": {"min": min(durations), "max": max(durations),
                           "mean": round(sum(durations) / len(durations), 1)},
            "cpu_busy_share_min": min(r["cpu_busy_share"] for r in runs)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="how many runs in a row (default 10)")
    p.add_argument("--cap", type=float, default=1800,
                   help="seconds one run may take before it counts as a hang (default 1800)")
    p.add_argument("--burners", type=int, default=os.cpu_count() or 1,
                   help="CPU burner processes during the runs (default: one per CPU)")
    p.add_argument("--out", type=Path, help="result file (default benchmarks/results/"
                                            "stress-<UTC>.json)")
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST ARGS",
                   help=f"what to run (default: {' '.join(DEFAULT_ARGS)}, the suite without "
                        "the system tests)")
    args = p.parse_args()
    if args.runs < 1 or args.cap <= 0 or args.burners < 0:
        p.error("--runs must be 1 or more, --cap above 0, --burners 0 or more")
    pytest_args = args.pytest_args or DEFAULT_ARGS
    record = Record("stress", {**vars(args), "out": str(args.out) if args.out else None,
                               "pytest_args": pytest_args})
    print(f"stress: {args.runs} runs of pytest {' '.join(pytest_args)} with {args.burners} "
          f"burner(s) on {os.cpu_count()} CPUs, each run capped at {args.cap:g} s", flush=True)
    runs: list[dict[str, Any]] = []
    burners = start_burners(args.burners, args.cap * args.runs + 60)
    # SIGTERM (a CI timeout, kill) and SIGHUP end this script through the finally below, as
    # Ctrl-C does
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: sys.exit(128 + number))
    path = args.out
    with tempfile.TemporaryDirectory(prefix="vrrpd-stress-") as tmp:
        try:
            for n in range(1, args.runs + 1):
                r = one_run(n, pytest_args, args.cap, Path(tmp))
                runs.append(r)
                print(f"run {n}/{args.runs}: {r['outcome']} in {r['duration_s']:.0f} s "
                      f"{r['counts']} CPU busy {r['cpu_busy_share']:.0%}"
                      + (f"; failed: {', '.join(r['failed_tests'])}" if r["failed_tests"]
                         else ""), flush=True)
                # after every run, so an interrupted stress run still leaves what it saw
                path = REPO / record.write(runs=runs, summary=summarise(runs, args.runs),
                                           path=path, quiet=n < args.runs)
        finally:
            stop(burners)
    summary = summarise(runs, args.runs)
    print(f"stress: {summary['runs']} runs, {summary['failures']} failed, {summary['hangs']} "
          f"hung; {summary['duration_s']['min']:.0f}-{summary['duration_s']['max']:.0f} s "
          f"each; CPUs at least {summary['cpu_busy_share_min']:.0%} busy during every run")
    return 0 if summary["passed"] == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
