"""Shared pieces of the tracker tests: configs, a status recorder, running a tracker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from vrrpd.config.model import TRACK_OPTIONS, TrackConfig, TrackType
from vrrpd.track.base import Tracker
from vrrpd.track.manager import make_tracker
from vrrpd.track.status import TrackStatus


def track_config(kind: TrackType, **options: object) -> TrackConfig:
    """A fast-ticking config named after its type; ``interval``/``timeout``/``rise``/``fall``
    may be overridden, every other keyword is a type-specific option."""
    common = {"interval": 0.1, "timeout": 1.0, "rise": 1, "fall": 1}
    for key in common:
        if key in options:
            common[key] = options.pop(key)  # type: ignore[assignment]
    return TrackConfig(name=str(kind), type=kind, options=TRACK_OPTIONS[kind](**options),  # type: ignore[arg-type]
                       **common)  # type: ignore[arg-type]


class Recorder:
    """The ``on_status`` callback: keeps every published status with its monotonic time."""

    def __init__(self) -> None:
        self.statuses: list[tuple[float, TrackStatus]] = []
        self._changed = asyncio.Event()

    def __call__(self, status: TrackStatus) -> None:
        self.statuses.append((time.monotonic(), status))
        self._changed.set()

    @property
    def last(self) -> TrackStatus | None:
        return self.statuses[-1][1] if self.statuses else None

    async def wait_for(
        self, predicate: Callable[[TrackStatus], bool], timeout: float = 5.0
    ) -> tuple[float, TrackStatus]:
        """The first status (from now on, or the latest one) satisfying ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                if self.statuses and predicate(self.statuses[-1][1]):
                    return self.statuses[-1]
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def running(config: TrackConfig) -> AsyncIterator[tuple[Tracker, Recorder]]:
    """Build the tracker for ``config`` and run it for the duration of the block."""
    recorder = Recorder()
    tracker = make_tracker(config, recorder)
    task = asyncio.create_task(tracker.run())
    try:
        yield tracker, recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
