"""The benchmarks' fairness and traceability pieces (issue 16): keepalived's HAProxy check
counts a zombie as dead, faults go in at a random phase, result files carry the environment,
and a missing comparison daemon stops a benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import record
from lab.haproxy_pair import keepalived_check_script
from lab.phase import common_period, random_phase


class _Pidfile:
    """The part of lab.haproxy_pair.HAProxy the check script needs."""

    def __init__(self, path: Path) -> None:
        self.pidfile = path


def _check(tmp_path: Path, pid: int | None) -> int:
    pidfile = tmp_path / "haproxy.pid"
    if pid is None:
        pidfile.unlink(missing_ok=True)
    else:
        pidfile.write_text(f"{pid}\n")
    script = tmp_path / "check.sh"
    script.write_text(keepalived_check_script(_Pidfile(pidfile)))  # type: ignore[arg-type]
    script.chmod(0o755)
    return subprocess.run([str(script)], stderr=subprocess.DEVNULL).returncode


def test_keepalived_check_counts_a_zombie_as_dead(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _check(tmp_path, child.pid) == 0  # alive
        child.kill()
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        assert _check(tmp_path, child.pid) == 1  # a zombie: `kill -0` would still succeed
    finally:
        child.kill()
        child.wait()
    assert _check(tmp_path, child.pid) == 1  # reaped, gone
    assert _check(tmp_path, None) == 1  # no pidfile


def test_common_period_is_a_whole_number_of_each_interval() -> None:
    assert common_period(0.1, 0.1, 1) == 1.0
    assert common_period(1.0, 0.1, 1) == 1.0
    assert common_period(0.1, 0.5) == 0.5
    assert common_period(0.3, 0.25) == 1.5


def test_random_phase_waits_within_the_period() -> None:
    import random

    rng = random.Random(16)
    delays = [random_phase(0.01, rng) for _ in range(20)]
    assert all(0 <= d < 0.01 for d in delays)
    assert len(set(delays)) == 20


def test_result_file_names_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(record, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(record, "REPO", tmp_path)
    rec = record.Record("demo", {"runs": 2})
    shown = rec.write(runs=[1, 2], summary={"median": 1.5}, note="x")
    doc = json.loads((tmp_path / shown).read_text())
    assert shown.parent == Path("results") and shown.name.startswith("demo-")
    env = doc["environment"]
    assert set(env["versions"]) == {"vrrpd", "haproxy", "keepalived", "python"}
    assert env["cpus"] >= 1 and len(env["loadavg_start"]) == 3 and len(env["loadavg_end"]) == 3
    assert env["kernel"] and env["host"]
    assert env["git_commit"] is None and env["git_local_changes"] is None  # not a checkout
    assert doc["parameters"] == {"runs": 2} and doc["runs"] == [1, 2] and doc["note"] == "x"
    assert "load average" in capsys.readouterr().out
    assert not list((tmp_path / "results").glob("*.tmp"))


def test_missing_keepalived_stops_unless_skipped(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(record, "KEEPALIVED", "/nonexistent/keepalived")
    assert record.require_keepalived(True, "demo") is False
    with pytest.raises(SystemExit) as exc:
        record.require_keepalived(False, "demo")
    assert exc.value.code == 2
    assert "--skip-keepalived" in capsys.readouterr().err
