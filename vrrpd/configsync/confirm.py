"""After a reload: is HAProxy running the new configuration?  (asks HAProxy itself)

A reload command usually only *signals* HAProxy (``kill -USR2``, ``systemctl reload``) and
exits 0 before HAProxy has read the file; a bind that fails at run time (port in use, an
address that is not local) is only seen by HAProxy then.  So after the reload command:

* **master CLI** (``config_sync.master_socket``, HAProxy started with ``-W -S PATH``): ``show proc``
  before and after.  HAProxy 2.6 prints (checked against 2.6.12)::

      #<PID>          <type>          <reloads>       <uptime>        <version>
      16838           master          1 [failed: 0]   0d00h13m02s     2.6.12-1+deb12u4
      # workers
      4351            worker          0               0d00h00m00s     2.6.12-1+deb12u4
      # old workers
      16839           worker          1               0d00h00m43s     2.6.12-1+deb12u4
      # programs

  The master's reload counter counts every reload, failed or not; ``failed`` counts the
  failed reloads since the last good one (a good reload resets it to 0) and a failed one keeps
  the previous worker as the current one.  Confirmed: the counter moved past its value before
  the reload, ``failed`` is 0 and a current worker has survived no reload (it is new).
  The master CLI drops connections while the master re-executes itself: retried.
* **stats socket** (``config_sync.stats_socket``, optionally ``config_sync.pidfile``): the
  pidfile's process is alive and ``show info`` answers from a process other than the one that
  answered before the reload (every reload starts a new process).

Either waits up to :data:`CONFIRM_TIMEOUT`; a failure is a :class:`ConfirmError`, which the
applier treats like a failed reload (restore the backups, reload again).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CONFIRM_TIMEOUT = 10.0
POLL = 0.02
_MASTER = re.compile(r"^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", re.M)
_PROC = re.compile(r"^(\d+)\s+(\S+)\s+(\d+)\s")


class ConfirmError(Exception):
    """HAProxy is not running the configuration that was just installed."""


@dataclass(frozen=True)
class ProcState:
    """HAProxy 2.6 master CLI ``show proc``, the parts that tell whether a reload worked."""

    master_pid: int
    reloads: int
    failed: int
    workers: tuple[tuple[int, int], ...]  # current workers: (pid, reloads survived)


def parse_show_proc(text: str) -> ProcState:
    """Parse ``show proc`` (format above); ValueError when it is not that."""
    master = _MASTER.search(text)
    if master is None:
        raise ValueError(f"no master line in `show proc` output: {text[:200]!r}")
    workers = []
    section = ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip() if not line.startswith("#<") else section
            continue
        m = _PROC.match(line)
        if m and m.group(2) == "worker" and section == "workers":
            workers.append((int(m.group(1)), int(m.group(3))))
    return ProcState(int(master.group(1)), int(master.group(2)), int(master.group(3)),
                     tuple(workers))


async def cli(path: Path, command: str, timeout: float = 2.0) -> str:
    """Send one command to a HAProxy CLI unix socket and return the whole answer."""
    async def exchange() -> str:
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # the master CLI answers once the request side is closed
            return (await reader.read()).decode(errors="replace")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async with asyncio.timeout(timeout):  # not wait_for: see vrrpd.configsync.transport
        return await exchange()


class MasterCLIConfirm:
    """Confirm a reload of a master-worker HAProxy through its master CLI (``show proc``)."""

    def __init__(self, master_socket: Path, timeout: float = CONFIRM_TIMEOUT) -> None:
        self.socket = master_socket
        self.timeout = timeout

    async def show_proc(self) -> ProcState:
        return parse_show_proc(await cli(self.socket, "show proc"))

    async def before(self) -> ProcState | None:
        """The state before the reload (None: the master CLI does not answer now)."""
        try:
            return await self.show_proc()
        except (OSError, TimeoutError, ValueError):
            return None

    async def confirm(self, before: ProcState | None) -> str:
        """Wait until the reload shows in ``show proc``; a one-line summary or ConfirmError."""
        last: ProcState | None = None
        problem = f"the master CLI {self.socket} did not answer"
        deadline = asyncio.get_running_loop().time() + self.timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                last = await self.show_proc()
            except (OSError, TimeoutError, ValueError) as exc:  # re-executing: try again
                problem = f"the master CLI {self.socket} did not answer ({exc or 'timeout'})"
                await asyncio.sleep(POLL)
                continue
            if before is None or last.reloads > before.reloads:
                if last.failed:
                    raise ConfirmError(
                        f"HAProxy refused the reload at run time (master CLI `show proc`: "
                        f"reloads {last.reloads}, failed {last.failed}; the previous worker "
                        "keeps running); see HAProxy's log for the reason")
                if any(survived == 0 for _, survived in last.workers):
                    new = [pid for pid, survived in last.workers if survived == 0]
                    return (f"HAProxy reloaded: reload #{last.reloads}, new worker pid "
                            f"{', '.join(map(str, new))}")
                problem = "no new worker yet"
            else:
                problem = f"the reload counter is still {last.reloads}"
            await asyncio.sleep(POLL)
        raise ConfirmError(f"HAProxy did not confirm the reload within {self.timeout:g}s: "
                           f"{problem}")


class StatsSocketConfirm:
    """Confirm a reload without a master CLI: pidfile alive, a new process on the stats socket."""

    def __init__(self, stats_socket: Path, pidfile: Path | None = None,
                 timeout: float = CONFIRM_TIMEOUT) -> None:
        self.socket = stats_socket
        self.pidfile = pidfile
        self.timeout = timeout

    async def pid(self) -> int:
        """``Pid:`` of the process answering ``show info`` on the stats socket."""
        info = await cli(self.socket, "show info")
        m = re.search(r"^Pid:\s*(\d+)", info, re.M)
        if m is None:
            raise ValueError(f"no Pid in `show info`: {info[:200]!r}")
        return int(m.group(1))

    async def before(self) -> int | None:
        try:
            return await self.pid()
        except (OSError, TimeoutError, ValueError):
            return None

    def _pidfile_alive(self) -> str | None:
        """None when the pidfile's process runs (or no pidfile is configured), else why not."""
        if self.pidfile is None:
            return None
        try:
            pid = int(self.pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError) as exc:
            return f"no HAProxy process from {self.pidfile} ({exc})"
        return None

    async def confirm(self, before: int | None) -> str:
        problem = "not checked"
        deadline = asyncio.get_running_loop().time() + self.timeout
        while asyncio.get_running_loop().time() < deadline:
            problem = self._pidfile_alive() or ""
            if not problem:
                try:
                    now = await self.pid()
                except (OSError, TimeoutError, ValueError) as exc:
                    problem = f"the stats socket {self.socket} did not answer ({exc or 'timeout'})"
                else:
                    if now != before:
                        return f"HAProxy reloaded: pid {now} answers on {self.socket}"
                    problem = f"pid {now}, which answered before the reload, still answers"
            await asyncio.sleep(POLL)
        raise ConfirmError(f"HAProxy did not confirm the reload within {self.timeout:g}s: "
                           f"{problem}")


class Confirmer(Protocol):
    """What the applier needs: a snapshot before the reload, a check after it."""

    async def before(self) -> Any:
        """State before the reload (None when HAProxy does not answer)."""

    async def confirm(self, before: Any) -> str:
        """A summary when HAProxy runs the reloaded files, else :class:`ConfirmError`."""


def confirmer(master_socket: Path | None, stats_socket: Path | None,
              pidfile: Path | None) -> Confirmer | None:
    """The check the configuration asks for (master CLI preferred), or None."""
    if master_socket is not None:
        return MasterCLIConfirm(master_socket)
    if stats_socket is not None:
        return StatsSocketConfirm(stats_socket, pidfile)
    return None
