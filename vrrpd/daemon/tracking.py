"""Tracker results -> instances: effective priority and FAULT.

A weight-0 tracker that fails is a fault source ``track:NAME`` for every instance using it
(FAULT, RFC-wise a router that must not serve); a weighted tracker moves the effective priority
(keepalived's rules, :func:`vrrpd.track.status.effective_priority`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vrrpd.config.model import Config, InstanceConfig, TrackConfig
from vrrpd.proto.events import PriorityChanged
from vrrpd.track.base import Tracker
from vrrpd.track.manager import TrackerSet
from vrrpd.track.status import TrackStatus, effective_priority


class InstanceTracking:
    """Owns the daemon's trackers and applies their statuses to the instances."""

    def __init__(self, config: Config, drivers: dict[str, Any],
                 post_fault: Callable[[list[str], str, bool], None],
                 record: Callable[..., None]) -> None:
        self.config = config
        self.drivers = drivers
        self._post_fault = post_fault
        self._record = record
        self.listeners: list[Callable[[TrackStatus], None]] = []  # anycast groups
        self.trackers = TrackerSet(self._used(config), self._on_status)

    @staticmethod
    def _used(config: Config) -> dict[str, TrackConfig]:
        refs = [*(i.track for i in config.instances), *(g.track for g in config.anycast)]
        used = {ref.name for track in refs for ref in track}
        return {n: t for n, t in config.tracks.items() if n in used}

    def prepare(self, config: Config) -> dict[str, Tracker]:
        """The runners ``config`` adds or redefines, built but not started (ValueError)."""
        return self.trackers.prepare(self._used(config))

    async def commit(self, config: Config, built: dict[str, Tracker]) -> None:
        """Switch to ``config``; unchanged trackers keep running (and keep their status)."""
        self.config = config
        await self.trackers.commit(self._used(config), built)
        for name in self.drivers:
            self.apply(name)

    def start(self) -> None:
        self.trackers.start()

    async def stop(self) -> None:
        await self.trackers.stop()

    def _weights(self, cfg: InstanceConfig) -> list[tuple[str, int]]:
        return [(ref.name, self.config.tracks[ref.name].weight if ref.weight is None
                 else ref.weight) for ref in cfg.track]

    def _on_status(self, status: TrackStatus) -> None:
        users = [cfg.name for cfg in self.config.instances
                 if any(ref.name == status.name for ref in cfg.track)]
        self._record("tracker", tracker=status.name, ok=status.ok, detail=status.detail,
                     value=status.value, instances=users)
        for name in users:
            self.apply(name)
        for listener in self.listeners:
            listener(status)

    def apply(self, name: str) -> None:
        """Bring instance ``name`` in line with the current tracker statuses."""
        driver = self.drivers[name]
        statuses = self.trackers.statuses()
        weights = self._weights(driver.cfg)
        for tracker, weight in weights:
            if weight == 0:
                st = statuses[tracker]
                failing = not st.ok or bool(st.value)
                if failing != (f"track:{tracker}" in driver.faults):
                    self._post_fault([name], f"track:{tracker}", failing)
        priority, _ = effective_priority(
            driver.cfg.priority, [(w, statuses[t]) for t, w in weights if w != 0])
        if priority != driver.router.effective_priority:
            driver.post(PriorityChanged(priority))
            self._record("priority", instance=name, priority=driver.router.priority)

    def instance_status(self, cfg: InstanceConfig) -> list[dict[str, Any]]:
        """Each tracker the instance uses, with its weight here and its full status (the
        ``haproxy`` tracker adds the mode it found HAProxy in)."""
        docs = self.trackers.status_dict()
        return [{"name": t, "weight": w, **docs[t]} for t, w in self._weights(cfg)]
