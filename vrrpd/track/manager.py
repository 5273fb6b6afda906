"""``TrackerSet``: the running trackers of one configuration, their tasks and their status."""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
from collections.abc import Callable

from vrrpd.config.model import TrackConfig, TrackType
from vrrpd.track.base import Tracker
from vrrpd.track.status import TrackStatus

log = logging.getLogger("vrrpd.track")

# The runner of each type, imported when a tracker of that type is first configured: a node
# without process or haproxy trackers need not load psutil, nor one without http trackers the
# HTTP client.
RUNNERS: dict[TrackType, tuple[str, str]] = {
    TrackType.HAPROXY: ("vrrpd.track.haproxy", "HAProxyTracker"),
    TrackType.PROCESS: ("vrrpd.track.process", "ProcessTracker"),
    TrackType.TCP: ("vrrpd.track.net", "TcpTracker"),
    TrackType.HTTP: ("vrrpd.track.net", "HttpTracker"),
    TrackType.SCRIPT: ("vrrpd.track.script", "ScriptTracker"),
    TrackType.INTERFACE: ("vrrpd.track.interface", "InterfaceTracker"),
    TrackType.FILE: ("vrrpd.track.file", "FileTracker"),
}
TRACKER_TYPES: dict[TrackType, type[Tracker]] = {}  # the runner classes imported so far


def tracker_class(kind: TrackType) -> type[Tracker]:
    """The runner class of tracker type ``kind`` (its module is imported on first use)."""
    if kind not in TRACKER_TYPES:
        module, name = RUNNERS[kind]
        TRACKER_TYPES[kind] = getattr(importlib.import_module(module), name)
    return TRACKER_TYPES[kind]


def make_tracker(config: TrackConfig, on_change: Callable[[TrackStatus], None]) -> Tracker:
    """The runner for ``config``; a bad option (unknown user, bad URL) raises ValueError."""
    return tracker_class(config.type)(config, on_change)


class TrackerSet:
    """All trackers of the running configuration.

    ``on_change`` is called (on the loop) with a tracker's new status each time it changes,
    including its first result.  :meth:`reload` keeps trackers whose configuration did not change
    running, with their status and counters.
    """

    def __init__(
        self, configs: dict[str, TrackConfig], on_change: Callable[[TrackStatus], None]
    ) -> None:
        self._on_change = on_change
        self._trackers = {name: make_tracker(c, on_change) for name, c in configs.items()}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Start every tracker not yet running, as tasks of the running loop."""
        for name, tracker in self._trackers.items():
            if name not in self._tasks:
                task = asyncio.create_task(tracker.run(), name=f"track:{name}")
                task.add_done_callback(functools.partial(self._ended, tracker))
                self._tasks[name] = task

    async def stop(self) -> None:
        """Cancel every tracker and wait for them to finish."""
        await self._stop(list(self._tasks))

    def prepare(self, configs: dict[str, TrackConfig]) -> dict[str, Tracker]:
        """Build the runners a change to ``configs`` needs (new and redefined trackers),
        touching nothing that runs; a bad option raises ValueError."""
        return {
            name: make_tracker(c, self._on_change)
            for name, c in configs.items()
            if name not in self._trackers or self._trackers[name].config != c
        }

    async def commit(self, configs: dict[str, TrackConfig], built: dict[str, Tracker]) -> None:
        """Replace the set with ``configs``: the runners :meth:`prepare` built start, removed
        and redefined ones stop, unchanged ones keep running with their status."""
        await self._stop([n for n in self._trackers if n not in configs or n in built])
        self._trackers = {name: built.get(name) or self._trackers[name] for name in configs}
        self.start()

    async def reload(self, configs: dict[str, TrackConfig]) -> None:
        """:meth:`prepare` then :meth:`commit`."""
        await self.commit(configs, self.prepare(configs))

    def statuses(self) -> dict[str, TrackStatus]:
        return {name: t.status for name, t in self._trackers.items()}

    def status_dict(self) -> dict[str, dict[str, object]]:
        """JSON-able ``{name: {...}}`` for ``vrrpctl status`` (:meth:`Tracker.status_dict`)."""
        return {name: t.status_dict() for name, t in self._trackers.items()}

    async def _stop(self, names: list[str]) -> None:
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _ended(self, tracker: Tracker, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        log.error("tracker %s: runner stopped: %r", tracker.name, exc, exc_info=exc)
        tracker.fail_now(f"tracker stopped: {exc!r}")
