"""``haproxy`` tracker against a real HAProxy 2.6 in each mode users run it in.

* ``master-worker``: ``haproxy -W -D -p PIDFILE`` (pidfile = the master), reload = ``SIGUSR2``;
* ``daemon``: classic ``haproxy -D -p PIDFILE`` (pidfile = the serving process), reload =
  a new ``haproxy -D -p PIDFILE -sf OLDPID``;
* ``foreground-mw``: ``haproxy -Ws`` under a supervisor (this test) with no pidfile, found by
  its stats socket's owner, reload = ``SIGUSR2`` (what systemd's ExecReload sends);
* ``foreground``: ``haproxy -db`` under a supervisor, no pidfile, reload = ``-sf``.

In the foreground modes this test is the parent, so a killed HAProxy stays a zombie until the
test reaps it: the tracker must count the zombie as dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from track_helpers import running, track_config
from track_helpers.haproxy import alive, free_port, haproxy_config, master_ready, wait_until

from vrrpd.config.model import TrackType
from vrrpd.configsync.confirm import MasterCLIConfirm
from vrrpd.track.haproxy_procs import socket_owners

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

PROXIES = """\
frontend portal
    bind 127.0.0.1:{port}
    http-request return status 200
"""

MODES = {  # test mode -> (tracker mode, argv, uses the pidfile)
    "master-worker": ("master-worker", ["-W", "-D"], True),
    "daemon": ("daemon", ["-D"], True),
    "foreground-mw": ("master-worker", ["-Ws"], False),
    "foreground": ("foreground", ["-db"], False),
}


class HAProxyRun:
    """One HAProxy in a test mode; ``start``, ``reload``, ``kill`` as an operator would."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.dir = tmp_path
        self.mode = mode
        self.expected_mode, self.argv, self.uses_pidfile = MODES[mode]
        self.cfg = tmp_path / "haproxy.cfg"
        self.cfg.write_text(haproxy_config(tmp_path, PROXIES.format(port=free_port())))
        self.pidfile = tmp_path / "haproxy.pid"
        self.socket = tmp_path / "admin.sock"
        self.children: list[subprocess.Popen[bytes]] = []  # foreground: we supervise
        # A master's CLI (-S): a reload is signalled only once the master handles it.
        self.master_cli = MasterCLIConfirm(tmp_path / "master.sock")
        if self.expected_mode == "master-worker":
            self.argv = [*self.argv, "-S", str(self.master_cli.socket)]

    def tracker_options(self) -> dict[str, object]:
        if self.uses_pidfile:
            return {"pidfile": self.pidfile}
        return {"socket": self.socket}

    def start(self, *extra: str) -> None:
        argv = ["haproxy", *self.argv, "-f", str(self.cfg), *extra]
        if self.uses_pidfile:
            subprocess.run([*argv, "-p", str(self.pidfile)], check=True, timeout=10)
        else:
            self.children.append(subprocess.Popen(argv, stderr=subprocess.DEVNULL))
        wait_until(lambda: bool(self.serving()), timeout=10)
        if self.expected_mode == "master-worker":
            wait_until(lambda: master_ready(self.master_cli), timeout=10)

    def main_pid(self) -> int:
        """The master (master-worker) or the serving process (daemon, foreground)."""
        if self.uses_pidfile:
            return int(self.pidfile.read_text().split()[0])
        return self.children[-1].pid

    def serving(self) -> list[int]:
        """Pids of the processes answering on the stats socket (the workers)."""
        if not self.socket.exists():
            return []
        return [p.pid for p in socket_owners(self.socket)]

    def reload(self) -> None:
        """A normal reload; returns once the new serving process listens."""
        old = self.serving()
        if self.expected_mode == "master-worker":
            os.kill(self.main_pid(), signal.SIGUSR2)
            wait_until(lambda: bool(set(self.serving()) - set(old)), timeout=10)
        else:
            self.start("-sf", str(self.main_pid()))
        wait_until(lambda: not any(map(alive, old)), timeout=10)

    def kill(self) -> int:
        pid = self.main_pid()
        os.kill(pid, signal.SIGKILL)
        return pid

    def cleanup(self) -> None:
        pids = [p.pid for p in psutil.process_iter(["cmdline"])
                if str(self.cfg) in (p.info["cmdline"] or [])]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for child in self.children:
            child.wait(5)
        wait_until(lambda: not any(map(alive, pids)))


@pytest.fixture(params=list(MODES))
def haproxy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HAProxyRun]:
    run = HAProxyRun(tmp_path, request.param)
    try:
        run.start()
        yield run
    finally:
        run.cleanup()


def config(run: HAProxyRun, **options: object) -> object:
    options.setdefault("interval", 10.0)  # only events can report a death quickly
    return track_config(TrackType.HAPROXY, **run.tracker_options(), **options)


def test_mode_is_detected_and_shown(haproxy: HAProxyRun) -> None:
    async def scenario() -> dict[str, object]:
        async with running(config(haproxy)) as (tracker, rec):
            _, status = await rec.wait_for(lambda s: True)
            assert status.ok, status.detail
            return tracker.status_dict()

    doc = asyncio.run(scenario())
    assert doc["mode"] == haproxy.expected_mode
    how = f"pidfile {haproxy.pidfile}" if haproxy.uses_pidfile else \
        f"stats socket owner {haproxy.socket}"
    assert doc["found_by"] == how
    assert str(doc["detail"]).endswith(f"({haproxy.expected_mode}, by {how})")
    for pid in haproxy.serving():
        assert f"pid {pid}" in str(doc["detail"])


def test_kill_fails_at_once_zombie_included(haproxy: HAProxyRun) -> None:
    async def scenario() -> tuple[float, str]:
        async with running(config(haproxy, fall=3)) as (tracker, rec):
            await rec.wait_for(lambda s: s.ok)
            killed_at = time.monotonic()
            pid = haproxy.kill()  # in the foreground modes it stays our zombie
            seen_at, status = await rec.wait_for(lambda s: not s.ok, timeout=2)
            if not haproxy.uses_pidfile:  # not reaped: a zombie from now on
                await asyncio.to_thread(wait_until, lambda: not alive(pid), 1)
                assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
                tracker.record(await tracker.bounded_check())  # look again: still dead
                assert not tracker.status.ok, tracker.status.detail
        return seen_at - killed_at, status.detail

    latency, detail = asyncio.run(scenario())
    print(f"{haproxy.mode}: death seen after {latency * 1000:.1f} ms: {detail}")
    assert latency < 0.2  # the tracker's interval is 10 s: only the pidfd event is this quick
    assert "exited" in detail


def test_reload_is_not_a_failure(haproxy: HAProxyRun) -> None:
    old = haproxy.serving()

    async def scenario() -> str:
        async with running(config(haproxy, interval=0.2)) as (tracker, rec):
            await rec.wait_for(lambda s: s.ok)
            await asyncio.to_thread(haproxy.reload)
            await asyncio.sleep(0.5)  # two intervals after the old process left
            assert [s.ok for _, s in rec.statuses] == [True], rec.statuses
            return tracker.detail

    detail = asyncio.run(scenario())
    new = haproxy.serving()
    assert new and not set(new) & set(old)
    assert all(f"pid {pid}" in detail for pid in new), detail


def test_restart_fails_then_passes(haproxy: HAProxyRun) -> None:
    async def scenario() -> list[bool]:
        async with running(config(haproxy, interval=0.1)) as (_, rec):
            await rec.wait_for(lambda s: s.ok)
            haproxy.kill()
            await rec.wait_for(lambda s: not s.ok, timeout=2)
            await asyncio.to_thread(haproxy.cleanup)
            await asyncio.to_thread(haproxy.start)
            await rec.wait_for(lambda s: s.ok, timeout=3)
            return [s.ok for _, s in rec.statuses]

    assert asyncio.run(scenario()) == [True, False, True]


def test_daemon_reload_before_the_pidfile_is_rewritten(tmp_path: Path) -> None:
    """The old process may leave before the new one rewrites the pidfile: its ``-sf`` names
    the old pid, so the pidfile's dead pid still counts as HAProxy running."""
    run = HAProxyRun(tmp_path, "daemon")
    try:
        run.start()
        old = run.main_pid()
        stale = run.pidfile.read_text()
        run.start("-sf", str(old))
        wait_until(lambda: not alive(old))
        run.pidfile.write_text(stale)  # as if the new process had not written it yet

        async def scenario() -> tuple[bool, str]:
            async with running(config(run)) as (_, rec):
                _, status = await rec.wait_for(lambda s: True)
            return status.ok, status.detail

        ok, detail = asyncio.run(scenario())
        assert ok, detail
        assert f"process pid {run.serving()[0]}" in detail
    finally:
        run.cleanup()


def test_stale_pidfile_and_no_socket_owner(tmp_path: Path) -> None:
    pidfile = tmp_path / "haproxy.pid"
    pidfile.write_text("999999999\n")  # above pid_max: never a process

    async def first(**options: object) -> str:
        async with running(track_config(TrackType.HAPROXY, **options)) as (_, rec):
            _, status = await rec.wait_for(lambda s: True)
        assert not status.ok
        return status.detail

    assert asyncio.run(first(pidfile=pidfile)) == \
        f"haproxy pid 999999999 from {pidfile} has exited"
    sock = tmp_path / "admin.sock"
    assert asyncio.run(first(socket=sock)) == \
        f"no haproxy process listens on stats socket {sock}"
