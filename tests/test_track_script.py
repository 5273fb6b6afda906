"""``script`` tracker: real ``/bin/sh`` children, exit codes, timeouts, floods, privileges."""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from track_helpers import running, track_config

from vrrpd.config.model import TrackType
from vrrpd.track.script import ScriptTracker

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory the script's user (nobody) can reach and write: pytest's tmp is 0700."""
    path = Path(tempfile.mkdtemp(prefix="vrrpd-track-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


async def first_run(command: str, **options: object) -> tuple[bool, str, ScriptTracker]:
    config = track_config(TrackType.SCRIPT, command=command, interval=10.0, **options)
    async with running(config) as (tracker, rec):
        _, status = await rec.wait_for(lambda s: True, timeout=10)
    assert isinstance(tracker, ScriptTracker)
    return status.ok, status.detail, tracker


def check(command: str, **options: object) -> tuple[bool, str]:
    ok, detail, _ = asyncio.run(first_run(command, **options))
    return ok, detail


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo all good", (True, "exit 0: all good")),
        ("echo backend down >&2; exit 1", (False, "exit 1: backend down")),
        ("exit 255", (False, "exit 255")),
        ("kill -TERM $$", (False, "killed by SIGTERM")),
        (
            "/nonexistent/check",
            (False, "exit 127, command not found: /bin/sh: 1: /nonexistent/check: not found"),
        ),
    ],
)
def test_exit_codes(command: str, expected: tuple[bool, str]) -> None:
    assert check(command) == expected


def test_not_executable(open_dir: Path) -> None:
    script = open_dir / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    ok, detail = check(str(script))
    assert not ok
    assert detail.startswith("exit 126, command not executable:")
    script.chmod(script.stat().st_mode | stat.S_IXOTH)
    assert check(str(script)) == (True, "exit 0")


@as_root
def test_runs_as_nobody_without_root_groups() -> None:
    ok, detail, tracker = asyncio.run(first_run("id -u; id -G"))
    assert ok, detail
    uid, groups = tracker.last_output.split()
    assert int(uid) == 65534
    assert groups == str(grp.getgrnam("nogroup").gr_gid)  # root's groups dropped


def test_hang_kills_the_whole_process_group(open_dir: Path) -> None:
    """The script starts a grandchild ``sleep`` and hangs; both die at the timeout."""
    pidfile = open_dir / "grandchild.pid"
    command = f"sleep 60 & echo $! > {pidfile}; wait"

    async def scenario() -> tuple[bool, str, float]:
        started = time.monotonic()
        ok, detail, _ = await first_run(command, timeout=0.5)
        return ok, detail, time.monotonic() - started

    ok, detail, took = asyncio.run(scenario())
    assert (ok, detail) == (
        False,
        f"no result within the 0.5s timeout (waiting for script {command!r}, process group killed)",
    )
    assert took < 2
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != "zombie":
        assert time.monotonic() < deadline, "grandchild sleep survived the timeout"
        time.sleep(0.02)


def test_output_flood_keeps_only_max_output() -> None:
    """50 MB of output: read to the end, 1000 bytes kept, daemon memory not grown by it."""
    before = psutil.Process().memory_info().rss
    ok, detail, tracker = asyncio.run(
        first_run(
            "head -c 50000000 /dev/zero | tr '\\0' x; echo; exit 3", max_output=1000, timeout=20
        )
    )
    grown = psutil.Process().memory_info().rss - before
    assert not ok
    assert detail.startswith("exit 3: " + "x" * 100)
    assert tracker.last_output == "x" * 1000
    assert grown < 20_000_000


def test_unknown_user_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown user 'no-such-user'"):
        asyncio.run(first_run("true", user="no-such-user"))
