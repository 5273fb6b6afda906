"""``process`` tracker and the pidfd watch, against real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from track_helpers import running, track_config

from vrrpd.config.model import TrackType
from vrrpd.track.pidwatch import PidWatch, ResolveError, Watched, read_pidfile


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def write_pidfile(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "app.pid"
    path.write_text(content)
    return path


def test_process_death_is_seen_by_event_within_50ms(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """The interval is 10 s: only the pidfd event can report the death this fast."""
    pidfile = write_pidfile(tmp_path, f"{sleeper.pid}\n")

    async def scenario() -> float:
        config = track_config(TrackType.PROCESS, pidfile=pidfile, interval=10.0, fall=5)
        async with running(config) as (_, rec):
            await rec.wait_for(lambda s: s.ok)
            killed_at = time.monotonic()
            sleeper.kill()  # not reaped: the pidfd fires on exit, not on wait()
            seen_at, status = await rec.wait_for(lambda s: not s.ok)
        assert status.detail == f"process pid {sleeper.pid} exited"
        return seen_at - killed_at

    latency = asyncio.run(scenario())
    print(f"death detected after {latency * 1000:.1f} ms")
    assert latency < 0.05


def test_zombie_counts_as_dead(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    sleeper.kill()
    deadline = time.monotonic() + 2
    while Path(f"/proc/{sleeper.pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pidfile = write_pidfile(tmp_path, str(sleeper.pid))

    async def scenario() -> str:
        async with running(track_config(TrackType.PROCESS, pidfile=pidfile)) as (_, rec):
            _, status = await rec.wait_for(lambda s: True)
        assert not status.ok
        return status.detail

    assert "has exited (zombie)" in asyncio.run(scenario())


def test_pidwatch_fires_for_a_zombie_opened_late(sleeper: subprocess.Popen[bytes]) -> None:
    """A pidfd opened on an already exited (zombie) process is readable at once."""
    watched = Watched(sleeper.pid, "process", _create_time(sleeper.pid), essential=True)
    sleeper.kill()
    time.sleep(0.1)

    async def scenario() -> list[Watched]:
        exited: list[Watched] = []
        watch = PidWatch(exited.append)
        watch.update([watched])
        await asyncio.sleep(0.05)
        watch.close()
        return exited

    assert asyncio.run(scenario()) == [watched]


def test_pidwatch_rejects_a_reused_pid(sleeper: subprocess.Popen[bytes]) -> None:
    """Same pid, other start time: the process we resolved is gone."""
    stale = Watched(sleeper.pid, "process", _create_time(sleeper.pid) - 100, essential=True)

    async def scenario() -> list[Watched]:
        exited: list[Watched] = []
        watch = PidWatch(exited.append)
        watch.update([stale])
        await asyncio.sleep(0.01)
        assert watch.watched == ()
        return exited

    assert asyncio.run(scenario()) == [stale]


def _create_time(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("\n", "is empty"),
        ("hello\n", "does not hold a pid: 'hello'"),
        ("-5\n", "does not hold a pid: '-5'"),
    ],
)
def test_bad_pidfiles(tmp_path: Path, content: str | None, detail: str) -> None:
    path = tmp_path / "app.pid"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResolveError, match=detail):
        read_pidfile(path)


def test_a_pidfile_being_rewritten_is_read_again(tmp_path: Path) -> None:
    """HAProxy's master truncates and rewrites its pidfile on every reload; a reader landing
    in between waits for the pid instead of failing the tracker."""
    path = tmp_path / "haproxy.pid"
    path.write_text("")
    writer = threading.Timer(0.03, path.write_text, ("4242\n",))
    writer.start()
    try:
        assert read_pidfile(path) == 4242
    finally:
        writer.join()


def failing_detail(**options: object) -> str:
    """The first status of a process tracker expected to fail."""

    async def scenario() -> str:
        async with running(track_config(TrackType.PROCESS, **options)) as (_, rec):
            _, status = await rec.wait_for(lambda s: True)
        assert not status.ok
        return status.detail

    return asyncio.run(scenario())


def test_pidfile_naming_a_missing_process(tmp_path: Path) -> None:
    unused = 4_000_000  # above pid_max's maximum (2^22)
    detail = failing_detail(pidfile=write_pidfile(tmp_path, str(unused)))
    assert detail == f"process from {tmp_path}/app.pid (pid {unused}) does not exist"


def test_pidfile_naming_someone_elses_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pidfile = write_pidfile(tmp_path, str(sleeper.pid))
    detail = failing_detail(pidfile=pidfile, name="haproxy")
    assert detail == f"pidfile {pidfile} names pid {sleeper.pid}, which is 'sleep', not 'haproxy'"


def test_missing_pidfile_then_recovery(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "app.pid"

    async def scenario() -> None:
        config = track_config(TrackType.PROCESS, pidfile=pidfile, name="sleep", rise=2)
        async with running(config) as (tracker, rec):
            _, first = await rec.wait_for(lambda s: True)
            assert "does not exist" in first.detail
            pidfile.write_text(f"{sleeper.pid}\n")
            _, up = await rec.wait_for(lambda s: s.ok)
            assert up.detail == f"process pid {sleeper.pid}"
            assert tracker.status.ok is True

    asyncio.run(scenario())


def test_name_and_cmdline_matching(sleeper: subprocess.Popen[bytes]) -> None:
    marker = f"{os.getpid()}{time.time_ns()}"
    script = f"import time; time.sleep(60)  # {marker}"
    own = subprocess.Popen([sys.executable, "-c", script])

    async def scenario() -> None:
        config = track_config(TrackType.PROCESS, cmdline=f"# {marker}$", interval=10.0)
        async with running(config) as (_, rec):
            _, up = await rec.wait_for(lambda s: s.ok)  # once the child has exec'd python
            assert up.detail == f"process pid {own.pid}"
            own.send_signal(signal.SIGKILL)
            _, down = await rec.wait_for(lambda s: not s.ok, timeout=1)
            assert down.detail.startswith(f"process pid {own.pid} exited; no running process")

    try:
        asyncio.run(scenario())
    finally:
        own.kill()
        own.wait()
    assert "no running process matches name" in failing_detail(name=f"no-such-{marker}"[:15])
