"""What every benchmark records: the machine it ran on and its result file.

One home for the result files under ``benchmarks/results/`` (the README cites them, so the
ones it cites are committed: see ``.gitignore``)::

    rec = Record("failover", parameters=vars(args))   # captures the environment now
    ...
    path = rec.write(runs=rows, summary=table)        # benchmarks/results/failover-<UTC>.json

A result file holds ``benchmark``, ``started`` / ``finished`` (UTC, ISO 8601), ``environment``
(host, kernel, CPU count, load average at the start and at the end, the versions of vrrpd,
HAProxy, keepalived and Python, the git commit of the checkout and the tracked files that
differed from it), ``parameters`` (the command line), ``runs`` (every raw measurement) and
``summary`` (what the script printed), plus any other section the benchmark names.

:func:`require_keepalived` is the one rule for a comparison daemon that is not installed: say
so and stop with a non-zero status, unless the operator asked to skip the comparison.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.keepalived import KEEPALIVED  # noqa: E402
from vrrpd import __version__  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SKIP_KEEPALIVED = "--skip-keepalived"  # the flag every comparing benchmark takes


def _first_line(argv: list[str]) -> str | None:
    """The first output line of a ``--version`` style command, None if it cannot run."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _version(argv: list[str]) -> str | None:
    """The version number in the first line (``HAProxy version 2.6.12-1+deb12u1 ...``)."""
    line = _first_line(argv)
    if line is None:
        return None
    found = re.search(r"\d+\.\d+(\.\d+)?\S*", line)
    return found.group(0) if found else line


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """The machine and software a measurement ran on (see the module docstring)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    changed = [line[3:] for line in status.splitlines()] if status is not None else None
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "vrrpd": __version__,
            "haproxy": _version(["haproxy", "-v"]),
            "keepalived": _version([KEEPALIVED, "--version"]),
            "python": platform.python_version(),
        },
        "git_commit": _git("rev-parse", "HEAD"),
        "git_local_changes": changed,  # tracked files that differ from the commit
    }


def byte_compile() -> str:
    """Compile vrrpd's byte code in the checkout, as the package's postinst compiles the
    installed venv (debian/vrrpd.postinst): a daemon started from a checkout with
    PYTHONDONTWRITEBYTECODE (this machine's default) compiled its modules at every start.
    Returns what to record beside the figures."""
    import compileall

    compileall.compile_dir(REPO / "vrrpd", quiet=1)
    return "vrrpd compiled before the runs, as debian/vrrpd.postinst does for the package"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Record:
    """One benchmark run's result file; the environment is captured when it is made."""

    def __init__(self, benchmark: str, parameters: dict[str, Any]) -> None:
        self.benchmark = benchmark
        self.parameters = parameters
        self.started = utc_now()
        self.environment = environment()

    def write(self, *, runs: Any, summary: Any, path: Path | None = None, quiet: bool = False,
              **sections: Any) -> Path:
        """Write ``benchmarks/results/<benchmark>-<UTC start>.json`` (or ``path``); print
        (unless ``quiet``) and return its path (relative to the repository, as the README
        cites it)."""
        env = dict(self.environment, loadavg_end=[round(x, 2) for x in os.getloadavg()])
        doc = {"benchmark": self.benchmark, "started": self.started, "finished": utc_now(),
               "environment": env, "parameters": self.parameters, "summary": summary,
               **sections, "runs": runs}
        if path is None:
            stamp = self.started.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
            path = RESULTS / f"{self.benchmark}-{stamp}.json"
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        tmp.replace(path)  # never a half-written result file
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        if not quiet:
            print(f"result written to {shown} (load average {env['loadavg_start'][0]:g} at the "
                  f"start, {env['loadavg_end'][0]:g} at the end, {env['cpus']} CPUs)")
        return shown


def require_peer(name: str, binary: str | Path, skip: bool, flag: str, script: str) -> bool:
    """Whether the comparison daemon ``name`` is to be measured: True if ``binary`` exists;
    False if ``skip`` (the operator passed ``flag``); otherwise say what is missing and exit
    with status 2."""
    if skip:
        return False
    if Path(binary).exists():
        return True
    print(f"{script}: {name} is not installed ({binary} missing), so the comparison cannot "
          f"run. Install it (apt-get install {name}, with policy-rc.d refusing starts) or "
          f"pass {flag} to measure without it.", file=sys.stderr)
    sys.exit(2)


def require_keepalived(skip: bool, script: str) -> bool:
    """:func:`require_peer` for keepalived (flag ``--skip-keepalived``)."""
    return require_peer("keepalived", KEEPALIVED, skip, SKIP_KEEPALIVED, script)


def compared_daemons(skip_keepalived: bool, script: str) -> list[str]:
    """``["vrrpd", "keepalived"]``, or vrrpd alone with ``--skip-keepalived``
    (:func:`require_keepalived`)."""
    return ["vrrpd", *(["keepalived"] if require_keepalived(skip_keepalived, script) else [])]
