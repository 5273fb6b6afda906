"""Finding HAProxy's processes in every mode it runs in, and telling the modes apart.

HAProxy 2.6 runs in one of three ways (HAProxy management guide, "Starting HAProxy" and
"Master-worker mode"):

* **master-worker** (``-W``, ``-Ws`` under Debian's haproxy.service, or ``master-worker`` in
  ``global``): a master process forks the workers that serve; the pidfile names the master.
  A reload (``SIGUSR2`` to the master, what ``systemctl reload haproxy`` sends) re-executes
  the master under the same pid, forks new workers and lets the old ones finish and leave.
* **daemon** (classic ``-D -p PIDFILE``): the pidfile names the serving process(es), there is
  no master.  A reload starts a new process with ``-sf OLDPIDS`` (``-st``: hard stop), which
  rewrites the pidfile and tells the old process to finish and leave.
* **foreground** under a supervisor (``-db``, or ``-W``/``-Ws`` without ``-D``), often with no
  pidfile: the processes are found by who listens on the stats socket.

Everything here is blocking (psutil, /proc) and runs in the tracker's worker thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psutil

from vrrpd.track.pidwatch import ResolveError, Watched, read_pids

PROC_NET_UNIX = Path("/proc/net/unix")
SO_ACCEPTCON = 0x10000  # /proc/net/unix "Flags" of a listening socket (include/linux/net.h)
PF_EXITING = 0x4  # /proc/PID/stat "flags": the process is exiting (include/linux/sched.h)
DEAD_STATES = ("Z", "X")  # /proc/PID/stat "state" of a process that has exited (proc(5))
SUCCESSOR_FLAGS = ("-sf", "-st")  # `haproxy ... -sf OLDPID...`: the new process of a reload
LOOKUPS = 3  # tries when processes come and go while being looked at (a reload)
RETRY_PAUSE = 0.02  # seconds between them


class NoWorker(ResolveError):
    """A live master-worker master without a live worker: between the old workers leaving
    and the new one forked during a reload, or for good (``no-exit-on-failure``)."""

    def __init__(self, master: psutil.Process) -> None:
        super().__init__(f"haproxy master pid {master.pid} has no live worker")
        self.master = Watched.of(master, "master", essential=True)


class Mode(StrEnum):
    MASTER_WORKER = "master-worker"
    DAEMON = "daemon"
    FOREGROUND = "foreground"


@dataclass(frozen=True)
class Found:
    """What the tracker watches, how HAProxy runs and where that was learnt."""

    mode: Mode
    procs: list[Watched]
    found_by: str  # "pidfile /run/haproxy.pid" or "stats socket owner /run/haproxy/admin.sock"


@dataclass(frozen=True)
class _Stat:
    """What /proc/PID/stat says about a process's life (proc(5))."""

    exiting: bool  # a zombie, or between exit_group() and the zombie (PF_EXITING)
    session_leader: bool  # it called setsid(): a daemonized HAProxy (``-D``), never a worker


def _stat(pid: int) -> _Stat:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        raise psutil.NoSuchProcess(pid) from None
    fields = text[text.rfind(")") + 2:].split()  # state ppid pgrp session tty tpgid flags
    return _Stat(exiting=fields[0] in DEAD_STATES or bool(int(fields[6]) & PF_EXITING),
                 session_leader=int(fields[3]) == pid)


def _exiting(pid: int) -> bool:
    try:
        return _stat(pid).exiting
    except psutil.NoSuchProcess:
        return True


def is_haproxy(proc: psutil.Process) -> bool:
    """A live HAProxy process: not a zombie, not exiting (its command line already reads
    empty then).  A stale pidfile can name an unrelated process."""
    try:
        if _stat(proc.pid).exiting:
            return False
        if "haproxy" in proc.name():
            return True
        return "haproxy" in Path(proc.exe()).name
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _haproxies() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"])
            if "haproxy" in (p.info["name"] or "") and is_haproxy(p)]


def successors(pid: int) -> list[psutil.Process]:
    """Live HAProxy processes started with ``-sf``/``-st`` naming ``pid``: its reload.

    Reads /proc/*/cmdline directly: this runs when a process exits, so it should be quick.
    """
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if pid in _successor_pids(argv) and "haproxy" in Path(argv[0]).name:
            proc = _process(int(entry.name))
            if proc is not None and is_haproxy(proc):
                found.append(proc)
    return found


def _successor_pids(argv: list[str]) -> set[int]:
    pids: set[int] = set()
    taking = False
    for arg in argv:
        if arg in SUCCESSOR_FLAGS:
            taking = True
        elif taking and arg.isdigit():
            pids.add(int(arg))
        else:
            taking = False
    return pids


def socket_owners(path: Path, likely: Iterable[psutil.Process] = ()) -> list[psutil.Process]:
    """The HAProxy processes holding the listening unix socket bound at ``path``.

    HAProxy binds a unix socket under a temporary name (``PATH.<pid>.tmp``) and renames it,
    so /proc/net/unix (this network namespace's sockets) shows either name.  The socket's
    inode is then looked up among the descriptors (``socket:[INODE]``) of the ``likely``
    processes and their children (those found last time), else of every HAProxy process.
    """
    temp = re.compile(re.escape(str(path)) + r"\.\d+\.tmp")
    inodes = set()
    try:
        lines = PROC_NET_UNIX.read_text().splitlines()[1:]
    except OSError as exc:
        raise ResolveError(f"cannot read {PROC_NET_UNIX}: {exc.strerror}") from None
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or not int(fields[3], 16) & SO_ACCEPTCON:
            continue
        if fields[7] == str(path) or temp.fullmatch(fields[7]):
            inodes.add(f"socket:[{fields[6]}]")
    if not inodes:
        return []
    near: list[psutil.Process] = []
    for proc in likely:
        with contextlib.suppress(psutil.NoSuchProcess):
            near += [proc, *workers(proc)]
    return [p for p in near if _links(p.pid) & inodes] or \
        [p for p in _haproxies() if _links(p.pid) & inodes]


def _links(pid: int) -> set[str]:
    fds = f"/proc/{pid}/fd"
    links: set[str] = set()
    try:
        names = os.listdir(fds)
    except OSError:
        return links
    for name in names:
        try:
            links.add(os.readlink(f"{fds}/{name}"))
        except OSError:
            continue
    return links


def top(proc: psutil.Process) -> psutil.Process:
    """Climb from a worker to its master: the highest live HAProxy ancestor below a session
    leader.  A daemonized HAProxy (``-D``: the ``-W -D`` master, a classic daemon) started its
    own session; its HAProxy parent, for a moment, is the command that launched it (a start,
    or a ``-sf`` reload), which exits at once and is no part of what runs."""
    while not _stat(proc.pid).session_leader and (parent := proc.parent()) is not None \
            and is_haproxy(parent):
        proc = parent
    return proc


def workers(proc: psutil.Process) -> list[psutil.Process]:
    """The live HAProxy children of ``proc``.  From /proc/PID/task/*/children, which the kernel
    keeps (psutil's children() reads every process's stat: ~10 ms on a busy machine, and this
    runs at every tracker interval)."""
    pids: set[int] = set()
    try:
        for task in os.scandir(f"/proc/{proc.pid}/task"):
            with open(f"{task.path}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except FileNotFoundError:
        if not proc.is_running():
            raise psutil.NoSuchProcess(proc.pid) from None
        return [c for c in proc.children() if is_haproxy(c)]  # kernel without the file
    return [c for c in map(_process, sorted(pids)) if c is not None and is_haproxy(c)]


def is_master(proc: psutil.Process, children: list[psutil.Process]) -> bool:
    """A master-worker master: ``-W``/``-Ws`` says so, or it has HAProxy children and is not
    a classic ``-D`` launcher (which forks the serving process, writes the pidfile, exits).
    A command line that reads empty is a master re-executing itself (a reload) or a process
    exiting (the launcher, once it has forked): that one is looked at again."""
    argv = set(proc.cmdline())
    if not argv and _exiting(proc.pid):
        raise psutil.NoSuchProcess(proc.pid)
    return bool({"-W", "-Ws"} & argv) or (bool(children) and "-D" not in argv)


def find(pidfile: Path | None, socket: Path | None, known: Iterable[int] = ()) -> Found:
    """Find the running HAProxy: by ``pidfile`` if given, else by the stats ``socket``'s owner.

    A classic reload (``-sf``/``-st``) is not a failure: while its new process has truncated
    the pidfile but not yet written it, or after the old pid left but before the new one is
    written, a live HAProxy naming one of the ``known`` (last watched) or pidfile pids with
    ``-sf``/``-st`` is the one running.  A process that exits while being looked at (an old
    one leaving) makes the look-up start again, a few times.
    """
    for _ in range(LOOKUPS - 1):
        with contextlib.suppress(_Retry):
            return _find(pidfile, socket, list(known))
        time.sleep(RETRY_PAUSE)
    return _find(pidfile, socket, list(known))


class _Retry(ResolveError):
    """Looked at in the middle of a change: a process exited while being looked at."""


def _find(pidfile: Path | None, socket: Path | None, known: list[int]) -> Found:
    if pidfile is None:
        assert socket is not None, "the config loader requires pidfile or socket"
        # The known processes (or their -sf successors) count too: during a reload the
        # socket may be between owners for a moment.
        running = _running(known)
        entries = socket_owners(socket, running) + running
        if not entries:
            raise ResolveError(f"no haproxy process listens on stats socket {socket}")
        return _classify(entries, f"stats socket owner {socket}")
    try:
        pids = read_pids(pidfile)
    except ResolveError:
        entries = [new for pid in known for new in successors(pid)]
        if not entries:
            raise
        return _classify(entries, f"pidfile {pidfile}")
    for pid in pids:
        proc = _process(pid)
        if proc is not None and not is_haproxy(proc) and not _exiting(pid):
            raise ResolveError(f"pidfile {pidfile} names pid {pid}, which is "
                               f"{proc.name()!r}, not haproxy")
    entries = _running(pids)
    if len(entries) < len(pids):
        gone = [pid for pid in pids if pid not in {p.pid for p in entries}]
        if not successors(gone[0]):
            raise ResolveError(f"haproxy pid {gone[0]} from {pidfile} has exited")
    return _classify(entries, f"pidfile {pidfile}")


def _running(pids: Iterable[int]) -> list[psutil.Process]:
    """The live HAProxy processes among ``pids``, and the ``-sf`` successors of the others."""
    found = []
    for pid in pids:
        proc = _process(pid)
        if proc is not None and is_haproxy(proc):
            found.append(proc)
        else:
            found.extend(successors(pid))
    return found


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _classify(entries: Iterable[psutil.Process], found_by: str) -> Found:
    try:
        return _classify_live(entries, found_by)
    except psutil.NoSuchProcess as exc:
        raise _Retry(f"haproxy pid {exc.pid} exited while being looked at") from None


def _classify_live(entries: Iterable[psutil.Process], found_by: str) -> Found:
    roots = {p.pid: p for p in map(top, entries)}.values()
    children = {p.pid: workers(p) for p in roots}
    masters = [p for p in roots if is_master(p, children[p.pid])]
    if masters:
        procs = []
        for master in masters:
            live = children[master.pid]
            if not live:
                raise NoWorker(master)
            procs.append(Watched.of(master, "master", essential=True))
            procs += [Watched.of(w, "worker", essential=False) for w in live]
        return Found(Mode.MASTER_WORKER, procs, found_by)
    daemon = found_by.startswith("pidfile") or any("-D" in p.cmdline() for p in roots)
    # Not essential: the exit of one is looked at again (a -sf successor is a reload).
    return Found(Mode.DAEMON if daemon else Mode.FOREGROUND,
                 [Watched.of(p, "process", essential=False) for p in roots], found_by)
