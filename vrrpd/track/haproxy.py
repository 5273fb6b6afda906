"""``haproxy`` tracker: HAProxy in any mode (master-worker, daemon, foreground), its stats
socket and its backends.

Options (converted by the config loader): ``pidfile`` (Path or None), ``socket`` (Path or
None: the ``stats socket`` served by the worker), ``backends`` (list[str]); at least one of
``pidfile`` and ``socket``.

* Where HAProxy runs and how (:mod:`vrrpd.track.haproxy_procs`): by the pidfile, or without
  one by the process listening on the stats socket; master-worker, classic daemon or
  foreground.  The mode shows in the tracker's detail and status (``vrrpctl status``).
* Every process is watched by pidfd.  A master's exit fails the tracker at once; a worker's
  exit does too unless the master still has a live worker (an old worker leaving after a
  ``SIGUSR2`` reload).  A daemon or foreground process's exit fails it unless a new HAProxy
  started with ``-sf``/``-st`` naming it runs (a classic reload).  The processes are found
  again at every interval, as a restart changes pids.
* With ``socket``: ``show info`` must answer ``Name: HAProxy`` within the timeout.
* With ``backends``: ``show stat``; a listed backend whose servers are all DOWN (or in MAINT)
  fails the tracker -- HAProxy runs but cannot serve that VIP's traffic.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from vrrpd.config.model import HAProxyOptions, TrackConfig, TrackType, options_of
from vrrpd.track.base import StatusCallback
from vrrpd.track.haproxy_procs import Found, Mode, NoWorker, find
from vrrpd.track.haproxy_stats import StatsError, parse_info, parse_stat, stats_command
from vrrpd.track.pidwatch import ProcessWatchTracker, Watched, describe
from vrrpd.track.status import CheckResult

# A master-worker master runs without a worker for a moment during a reload; longer than this
# it is a failure.  (A master whose last worker dies exits, which fails the tracker at once.)
RELOAD_GRACE = 2.0  # seconds


class HAProxyTracker(ProcessWatchTracker):
    """Passes while HAProxy serves (a worker runs) and the socket/backends checks pass."""

    kind = TrackType.HAPROXY

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        opts = options_of(config, HAProxyOptions)
        self.pidfile, self.socket, self.backends = opts.pidfile, opts.socket, list(opts.backends)
        if self.backends and self.socket is None:
            raise ValueError(f"tracker {config.name}: backends need the stats socket")
        if self.pidfile is None and self.socket is None:
            raise ValueError(f"tracker {config.name}: haproxy needs pidfile or socket")
        self.found: Found | None = None  # the last successful look-up
        self._workerless_since: float | None = None  # monotonic time, see RELOAD_GRACE

    def resolve(self) -> list[Watched]:
        known = [p.pid for p in self.found.procs] if self.found else []
        try:
            self.found = find(self.pidfile, self.socket, known)
        except NoWorker as exc:
            now = time.monotonic()
            self._workerless_since = self._workerless_since or now
            if now - self._workerless_since > RELOAD_GRACE:
                raise
            found_by = self.found.found_by if self.found else "its workers"
            self.found = Found(Mode.MASTER_WORKER, [exc.master], found_by)
        else:
            self._workerless_since = None
        return self.found.procs

    def how(self) -> str:
        """``"master-worker, by pidfile /run/haproxy.pid"``: the mode and where it was learnt."""
        return f"{self.found.mode}, by {self.found.found_by}" if self.found else "not found"

    async def check_running(self, procs: Sequence[Watched]) -> CheckResult:
        if self.socket is None:
            return CheckResult(True, f"{describe(procs)} ({self.how()})")
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
        return CheckResult(True, f"{describe(procs)}; HAProxy {info.get('Version', '?')} "
                                 f"({self.how()})")

    def status_dict(self) -> dict[str, object]:
        doc = super().status_dict()
        doc["mode"] = str(self.found.mode) if self.found else None
        doc["found_by"] = self.found.found_by if self.found else None
        return doc

    async def _command(self, command: str) -> str:
        """One stats socket command; a connection failure is tried once more, as during a
        reload the old process closes its socket (resetting what it accepted) while the path
        already leads to the new one's."""
        assert self.socket is not None
        self.step = f"stats socket {self.socket}: {command!r}"
        try:
            return await stats_command(self.socket, command)
        except StatsError as exc:
            if not exc.connection:
                raise
        return await stats_command(self.socket, command)


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
