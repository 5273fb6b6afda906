"""``haproxy`` tracker: HAProxy in master-worker mode, its stats socket and its backends.

Options (converted by the config loader): ``pidfile`` (Path, holds the *master* pid),
``socket`` (Path or None: the ``stats socket`` served by the worker), ``backends`` (list[str]).

* The master and its workers are watched by pidfd: the master's exit fails the tracker at once;
  a worker's exit does too unless the master still has a live worker (an old worker leaving
  after a reload).  The pidfile is read again at every interval, as a restart changes pids.
* With ``socket``: ``show info`` must answer ``Name: HAProxy`` within the timeout.
* With ``backends``: ``show stat``; a listed backend whose servers are all DOWN (or in MAINT)
  fails the tracker -- HAProxy runs but cannot serve that VIP's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import cast

import psutil

from vrrpd.config.model import TrackConfig, TrackType
from vrrpd.track.base import StatusCallback
from vrrpd.track.pidwatch import (
    ProcessWatchTracker,
    ResolveError,
    Watched,
    describe,
    live_process,
    read_pidfile,
)
from vrrpd.track.status import CheckResult

MAX_REPLY = 8 * 1024 * 1024  # bytes; `show stat` of a large configuration stays well below


class StatsError(Exception):
    """The stats socket failed or answered nonsense; the message is the failure detail."""


class HAProxyTracker(ProcessWatchTracker):
    """Passes while the master and a worker run and the socket/backends checks pass."""

    kind = TrackType.HAPROXY

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        opts = config.options
        self.pidfile = cast(Path, opts["pidfile"])
        self.socket = cast(Path | None, opts.get("socket"))
        self.backends = cast(list[str], opts.get("backends") or [])
        if self.backends and self.socket is None:
            raise ValueError(f"tracker {config.name}: backends need the stats socket")

    def resolve(self) -> list[Watched]:
        pid = read_pidfile(self.pidfile)
        master = live_process(pid, f"haproxy master from {self.pidfile}")
        try:
            if not looks_like_haproxy(master):
                raise ResolveError(
                    f"pidfile {self.pidfile} names pid {pid}, which is {master.name()!r}, "
                    "not haproxy"
                )
            workers = [c for c in master.children() if c.status() != psutil.STATUS_ZOMBIE]
        except psutil.NoSuchProcess:
            raise ResolveError(f"haproxy master pid {pid} exited") from None
        if not workers:
            raise ResolveError(f"haproxy master pid {pid} has no live worker")
        return [Watched.of(master, "master", essential=True)] + [
            Watched.of(w, "worker", essential=False) for w in workers
        ]

    async def check_running(self, procs: Sequence[Watched]) -> CheckResult:
        if self.socket is None:
            return CheckResult(True, describe(procs))
        try:
            info = parse_info(await self._command("show info"))
            problems = []
            if self.backends:
                problems = backend_problems(
                    parse_stat(await self._command("show stat")), self.backends
                )
        except StatsError as exc:
            return CheckResult(False, f"stats socket {self.socket}: {exc}")
        if problems:
            return CheckResult(False, "; ".join(problems))
        return CheckResult(True, f"{describe(procs)}; HAProxy {info.get('Version', '?')}")

    async def _command(self, command: str) -> str:
        assert self.socket is not None
        self.step = f"stats socket {self.socket}: {command!r}"
        return await stats_command(self.socket, command)


def looks_like_haproxy(proc: psutil.Process) -> bool:
    """A pidfile left behind by a dead HAProxy can name an unrelated process."""
    if "haproxy" in proc.name():
        return True
    with contextlib.suppress(psutil.AccessDenied):
        return "haproxy" in Path(proc.exe()).name
    return False


async def stats_command(path: Path, command: str) -> str:
    """Send one command to a HAProxy stats socket and read the reply until HAProxy closes.

    Unbounded in time: the caller's check timeout bounds it.
    """
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError as exc:
        raise StatsError(f"cannot connect: {exc.strerror or exc}") from None
    try:
        writer.write(command.encode("ascii") + b"\n")
        await writer.drain()
        reply = bytearray()
        while chunk := await reader.read(65536):
            reply += chunk
            if len(reply) > MAX_REPLY:
                raise StatsError(f"reply to {command!r} exceeds {MAX_REPLY} bytes")
    except OSError as exc:
        raise StatsError(f"{command!r} failed: {exc.strerror or exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return reply.decode("utf-8", errors="replace")


def parse_info(reply: str) -> dict[str, str]:
    """``show info`` -> ``{"Name": "HAProxy", "Version": ..., ...}``; nonsense raises."""
    info = dict(line.split(": ", 1) for line in reply.splitlines() if ": " in line)
    if info.get("Name") != "HAProxy":
        raise StatsError(f"unexpected reply to 'show info': {reply[:60]!r}")
    return info


def parse_stat(reply: str) -> list[dict[str, str]]:
    """``show stat`` CSV -> one dict per row, keyed by the header (``pxname``, ``status``...)."""
    lines = reply.splitlines()
    if not lines or not lines[0].startswith("# pxname,svname,"):
        raise StatsError(f"unexpected reply to 'show stat': {reply[:60]!r}")
    header = lines[0][2:].split(",")
    return [dict(zip(header, row, strict=False)) for row in csv.reader(lines[1:]) if row]


def backend_problems(rows: Iterable[dict[str, str]], backends: Iterable[str]) -> list[str]:
    """One message per listed backend that cannot serve: missing, no servers, all DOWN/MAINT."""
    servers: dict[str, list[str]] = {}
    for row in rows:
        statuses = servers.setdefault(row["pxname"], [])
        if row["svname"] not in ("FRONTEND", "BACKEND"):
            statuses.append(row.get("status", ""))
    problems = []
    for name in backends:
        found = servers.get(name)
        if found is None:
            problems.append(f"backend {name}: not found in 'show stat'")
        elif not found:
            problems.append(f"backend {name}: has no servers")
        elif all(s.startswith(("DOWN", "MAINT")) for s in found):
            problems.append(f"backend {name}: all {len(found)} servers DOWN")
    return problems
