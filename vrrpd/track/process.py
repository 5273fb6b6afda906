"""``process`` tracker: a process found by pidfile, name or command-line regex, watched by pidfd.

Options (converted by the config loader): exactly one of ``pidfile`` (Path), ``name`` (str) or
``cmdline`` (regex str); with ``pidfile``, ``name`` may be given too and then the pidfile's
process must have that name (a stale pidfile can name someone else's process).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import cast

import psutil

from vrrpd.config.model import ProcessOptions, TrackConfig, TrackType, options_of
from vrrpd.track.base import StatusCallback
from vrrpd.track.pidwatch import (
    ProcessWatchTracker,
    ResolveError,
    Watched,
    live_process,
    read_pidfile,
)


class ProcessTracker(ProcessWatchTracker):
    """Passes while the process runs; its exit fails the tracker at once."""

    kind = TrackType.PROCESS

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        opts = options_of(config, ProcessOptions)
        self.pidfile, self.process_name = opts.pidfile, opts.name
        self.cmdline = re.compile(opts.cmdline) if opts.cmdline is not None else None
        if (self.pidfile, self.process_name, self.cmdline) == (None, None, None):
            raise ValueError(f"tracker {config.name}: process needs pidfile, name or cmdline")

    def resolve(self) -> list[Watched]:
        if self.pidfile is not None:
            return [self._from_pidfile(self.pidfile)]
        matches = [
            Watched.of(proc, "process", essential=False)
            for proc in psutil.process_iter(["name", "cmdline", "status"])
            if proc.pid != os.getpid() and self._matches(proc.info)
        ]
        if not matches:
            raise ResolveError(f"no running process matches {self._pattern()}")
        return matches

    def _from_pidfile(self, pidfile: Path) -> Watched:
        pid = read_pidfile(pidfile)
        proc = live_process(pid, f"process from {pidfile}")
        if self.process_name is not None:
            try:
                name = proc.name()
            except psutil.NoSuchProcess:
                raise ResolveError(f"pid {pid} from {pidfile} exited") from None
            if name != self.process_name:
                raise ResolveError(
                    f"pidfile {pidfile} names pid {pid}, which is {name!r}, "
                    f"not {self.process_name!r}"
                )
        return Watched.of(proc, "process", essential=True)

    def _matches(self, info: dict[str, object]) -> bool:
        if info["status"] == psutil.STATUS_ZOMBIE:
            return False
        if self.process_name is not None:
            return info["name"] == self.process_name
        assert self.cmdline is not None
        argv = cast(list[str] | None, info["cmdline"]) or []
        return self.cmdline.search(" ".join(argv)) is not None

    def _pattern(self) -> str:
        if self.process_name is not None:
            return f"name {self.process_name!r}"
        assert self.cmdline is not None
        return f"cmdline /{self.cmdline.pattern}/"
