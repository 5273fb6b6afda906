"""The runner every tracker type shares: periodic bounded checks, rise/fall, publishing, logging.

A tracker's :meth:`Tracker.run` loops until cancelled.  Each check is bounded by the tracker's
``timeout``; a check that overruns, or raises, is a failed check with a detail that says why.
Event-driven trackers (process death, link state) also call :meth:`Tracker.fail_now` /
:meth:`Tracker.record` from their event handlers.  ``on_status`` is called only when the
published :class:`~vrrpd.track.status.TrackStatus` changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from vrrpd.config.model import TrackConfig, TrackType
from vrrpd.ratelimit import RepeatFilter
from vrrpd.track.rise_fall import RiseFall
from vrrpd.track.status import CheckResult, TrackStatus

log = logging.getLogger("vrrpd.track")

StatusCallback = Callable[[TrackStatus], None]


class Tracker(ABC):
    """Base of the runners; a subclass implements :meth:`check` (and may extend :meth:`run`)."""

    kind: ClassVar[TrackType]

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        self.config = config
        self.name = config.name
        self._on_status = on_status
        self._rise_fall = RiseFall(config.rise, config.fall)
        self._repeats = RepeatFilter()
        self.status = TrackStatus(config.name, ok=False, detail="no result yet", since=time.time())
        self.last_result: CheckResult | None = None
        self.step: str | None = None  # what the running check waits on, for the timeout detail

    @property
    def detail(self) -> str:
        """The latest raw result's detail (the published status may lag it by rise/fall)."""
        return self.last_result.detail if self.last_result else self.status.detail

    async def run(self) -> None:
        """Check every ``interval`` seconds (start to start) until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.record(await self.bounded_check())
            await asyncio.sleep(max(0.0, started + self.config.interval - loop.time()))

    @abstractmethod
    async def check(self) -> CheckResult:
        """Run one check.  Called under the tracker's timeout; must not block the event loop."""

    async def bounded_check(self) -> CheckResult:
        """:meth:`check` within ``timeout``; an overrun or an exception is a failed check."""
        timeout = self.config.timeout
        self.step = None
        try:
            async with asyncio.timeout(timeout):
                return await self.check()
        except TimeoutError:
            waiting = f" (waiting for {self.step})" if self.step else ""
            return CheckResult(False, f"no result within the {timeout:g}s timeout{waiting}")
        except Exception as exc:  # a failing check must not end the tracker
            log.exception("tracker %s: check raised", self.name)
            return CheckResult(False, f"check error: {exc!r}")

    def record(self, result: CheckResult) -> None:
        """Feed one result through rise/fall and publish if the status changed."""
        self.last_result = result
        changed = self._rise_fall.feed(result.ok)
        if changed or (result.ok == self.status.ok and result.value != self.status.value):
            self._publish(result)
        elif not result.ok:
            self._log_repeat(logging.WARNING, f"check failed ({result.detail})")

    def fail_now(self, detail: str) -> None:
        """A certain failure (process exited, link down): fail without waiting for ``fall``."""
        result = CheckResult(False, detail)
        self.last_result = result
        if self._rise_fall.fail_now():
            self._publish(result)
        else:
            self._log_repeat(logging.WARNING, f"still failing ({detail})")

    def status_dict(self) -> dict[str, object]:
        """JSON-able status for ``vrrpctl status``: the published status and the latest raw
        check (the published one changes only with rise/fall)."""
        last = self.last_result
        return {
            "type": str(self.kind),
            "ok": self.status.ok,
            "detail": self.status.detail,
            "since": self.status.since,
            "value": self.status.value,
            "last_check": None if last is None else {"ok": last.ok, "detail": last.detail},
            "rise": self.config.rise,
            "fall": self.config.fall,
            "pending": self._rise_fall.pending,
        }

    def _publish(self, result: CheckResult) -> None:
        self.status = TrackStatus(self.name, result.ok, result.detail, time.time(), result.value)
        if result.ok:
            log.info("tracker %s: OK (%s)", self.name, result.detail)
        else:
            log.warning("tracker %s: FAILED (%s)", self.name, result.detail)
        self._on_status(self.status)

    def _log_repeat(self, level: int, message: str) -> None:
        line = self._repeats.admit(message)
        if line is not None:
            log.log(level, "tracker %s: %s", self.name, line)
