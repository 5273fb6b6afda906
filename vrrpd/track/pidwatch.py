"""Watching processes by event: ``pidfd_open(2)`` + the event loop's reader.

A pidfd becomes readable when its process exits -- when it becomes a zombie, not when it is
reaped -- so a crash is seen at once instead of at the next interval.  Resolving *which* pids to
watch (pidfile, name, command line, HAProxy's master and workers) uses psutil and runs in a
worker thread at each interval; between intervals nothing polls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from vrrpd.config.model import TrackConfig
from vrrpd.track.base import StatusCallback, Tracker
from vrrpd.track.status import CheckResult

log = logging.getLogger("vrrpd.track")


class ResolveError(Exception):
    """The process(es) a tracker watches cannot be found; the message is the failure detail."""


@dataclass(frozen=True)
class Watched:
    """One process under watch.  ``create_time`` tells a reused pid from the original."""

    pid: int
    role: str  # how log lines name it: "process", "master", "worker"
    create_time: float
    essential: bool  # its exit fails the tracker at once; otherwise the tracker re-resolves

    @classmethod
    def of(cls, proc: psutil.Process, role: str, *, essential: bool) -> Watched:
        return cls(proc.pid, role, proc.create_time(), essential)


PIDFILE_REWRITE_GRACE = 0.1  # seconds a missing or empty pidfile is re-read before failing
PIDFILE_RETRY = 0.01


def read_pids(path: Path) -> list[int]:
    """Every pid in ``path`` (one or more, whitespace-separated: a classic HAProxy with several
    processes writes one a line); a missing, empty or garbage pidfile raises
    :class:`ResolveError`.

    A daemon rewrites its pidfile when it restarts or reloads (HAProxy's master on every
    reload, truncating first), and a reader can land in that instant, exactly when the old
    worker's exit makes the tracker look again.  So a missing or empty file is re-read for
    :data:`PIDFILE_REWRITE_GRACE` before it counts.  Blocking: call it from a thread.
    """
    deadline = time.monotonic() + PIDFILE_REWRITE_GRACE
    while True:
        try:
            words = path.read_text(encoding="ascii", errors="replace")[:4096].split()
        except FileNotFoundError:
            words, problem = [], f"pidfile {path} does not exist"
        except OSError as exc:
            raise ResolveError(f"pidfile {path}: {exc.strerror}") from None
        else:
            problem = f"pidfile {path} is empty"
        if words:
            break
        if time.monotonic() >= deadline:
            raise ResolveError(problem)
        time.sleep(PIDFILE_RETRY)
    for word in words:
        if not word.isdigit() or int(word) <= 0:
            raise ResolveError(f"pidfile {path} does not hold a pid: {word[:20]!r}")
    return [int(w) for w in words]


def read_pidfile(path: Path) -> int:
    """The (first) pid in ``path``, see :func:`read_pids`."""
    return read_pids(path)[0]


def live_process(pid: int, what: str) -> psutil.Process:
    """``psutil.Process(pid)`` if it runs; missing or zombie raises :class:`ResolveError`."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise ResolveError(f"{what} (pid {pid}) has exited (zombie)")
    except psutil.NoSuchProcess:
        raise ResolveError(f"{what} (pid {pid}) does not exist") from None
    return proc


class PidWatch:
    """Calls ``on_exit(watched)`` on the loop as soon as a watched process exits."""

    def __init__(self, on_exit: Callable[[Watched], None]) -> None:
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._fds: dict[Watched, int] = {}

    @property
    def watched(self) -> tuple[Watched, ...]:
        return tuple(self._fds)

    def update(self, procs: Iterable[Watched]) -> None:
        """Watch exactly ``procs``: open pidfds for new ones, close those no longer wanted."""
        wanted = set(procs)
        for proc in set(self._fds) - wanted:
            self._forget(proc)
        for proc in wanted - set(self._fds):
            self._open(proc)

    def close(self) -> None:
        for proc in list(self._fds):
            self._forget(proc)

    def has_exited(self, proc: Watched) -> bool:
        """``proc`` exited: its exit was handled already (it is no longer watched), or its
        pidfd is readable and the loop has not run the handler yet."""
        fd = self._fds.get(proc)
        return fd is None or bool(select.select([fd], [], [], 0)[0])

    def _open(self, proc: Watched) -> None:
        try:
            fd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            self._loop.call_soon(self._on_exit, proc)
            return
        # The pid may have been reused between resolving and pidfd_open: compare start times.
        try:
            same = psutil.Process(proc.pid).create_time() == proc.create_time
        except psutil.NoSuchProcess:
            same = False
        if not same:
            os.close(fd)
            self._loop.call_soon(self._on_exit, proc)
            return
        self._fds[proc] = fd
        self._loop.add_reader(fd, self._exited, proc)

    def _exited(self, proc: Watched) -> None:
        self._forget(proc)
        self._on_exit(proc)

    def _forget(self, proc: Watched) -> None:
        fd = self._fds.pop(proc)
        self._loop.remove_reader(fd)
        os.close(fd)


class ProcessWatchTracker(Tracker):
    """Base of the ``process`` and ``haproxy`` trackers: resolve at each interval, watch between.

    The exit of an *essential* process (the pidfile's process, HAProxy's master) fails the
    tracker immediately, whatever ``fall`` is.  The exit of a non-essential one (a HAProxy
    worker, one of several processes matching a name) triggers an immediate re-resolve: an old
    worker leaving after a reload is normal, the last worker dying is not.
    """

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        self._watch: PidWatch | None = None
        self._rechecks: set[asyncio.Task[None]] = set()

    @abstractmethod
    def resolve(self) -> list[Watched]:
        """Find the processes to watch (runs in a thread); raise :class:`ResolveError` if none."""

    async def check_running(self, procs: Sequence[Watched]) -> CheckResult:
        """Further checks once the processes are found; by default, running is enough."""
        return CheckResult(True, describe(procs))

    async def run(self) -> None:
        self._watch = PidWatch(self._process_exited)
        try:
            await super().run()
        finally:
            for task in self._rechecks:
                task.cancel()
            self._watch.close()

    async def check(self) -> CheckResult:
        assert self._watch is not None, "check() runs inside run()"
        try:
            procs = await asyncio.to_thread(self.resolve)
        except ResolveError as exc:
            self._watch.update(())
            return CheckResult(False, str(exc))
        self._watch.update(procs)
        result = await self.check_running(procs)
        # The look-up ran before an essential process's exit, whose event came meanwhile (or
        # waits): that result is stale and must not undo the failure the event reported.
        gone = [p for p in procs if p.essential and self._watch.has_exited(p)]
        return CheckResult(False, f"{gone[0].role} pid {gone[0].pid} exited") if gone else result

    def _process_exited(self, proc: Watched) -> None:
        detail = f"{proc.role} pid {proc.pid} exited"
        if proc.essential:
            self.fail_now(detail)
            return
        task = asyncio.create_task(self._recheck(detail), name=f"track:{self.name}:recheck")
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, detail: str) -> None:
        assert self._watch is not None
        try:
            procs = await asyncio.to_thread(self.resolve)
        except ResolveError as exc:
            self.fail_now(f"{detail}; {exc}")
            return
        self._watch.update(procs)
        log.info("tracker %s: %s; still running: %s", self.name, detail, describe(procs))


def describe(procs: Sequence[Watched]) -> str:
    """``"master pid 10, worker pid 11"``."""
    return ", ".join(f"{p.role} pid {p.pid}" for p in procs)
