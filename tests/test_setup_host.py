"""scripts/setup-host never stops or disables a service unless told this is a lab host.

The script runs for real (its packages and .venv are already there, so it installs nothing)
with a ``systemctl`` on PATH that records its arguments instead of acting.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = tmp_path / "systemctl.calls"
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexit 0\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    done = subprocess.run([str(REPO / "scripts" / "setup-host"), *args], capture_output=True,
                          text=True, env=env, timeout=600)
    return done, calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.skipif(os.geteuid() != 0, reason="setup-host runs as root only")
def test_default_run_changes_no_service(tmp_path: Path) -> None:
    done, calls = run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [c for c in calls if c.split()[0] in ("stop", "disable", "mask", "start",
                                                      "restart", "kill")], calls
    assert "--lab-host" not in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="setup-host runs as root only")
def test_lab_host_stops_and_disables_and_says_so(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--lab-host")
    assert done.returncode == 0, done.stderr
    assert calls == ["disable --now haproxy", "disable --now keepalived", "disable --now frr"]
    assert "setup-host --lab-host: stopped and disabled haproxy.service" in done.stdout
    assert "setup-host --lab-host: stopped and disabled keepalived.service" in done.stdout
    assert "setup-host --lab-host: stopped and disabled frr.service" in done.stdout


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--lab")
    assert (done.returncode, calls) == (2, [])
    assert "unknown option --lab" in done.stderr
