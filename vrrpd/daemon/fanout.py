"""Transition fan-out: one publisher (every driver), any number of subscribers.

A driver publishes each transition with ``call_soon`` after it has queued its critical actions
(:mod:`vrrpd.daemon.instance`), so nothing here can delay an advert or a VIP (DESIGN.md seam
5).  Subscribers are the non-critical reactions: the event history, notify hooks, sync groups,
config sync and systemd's STATUS line.  One that raises is logged and the others still run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vrrpd.daemon.history import TransitionListener, TransitionRecord
from vrrpd.daemon.instance import InstanceDriver

if TYPE_CHECKING:
    from vrrpd.daemon.runtime import Daemon

log = logging.getLogger("vrrpd")

class TransitionBus:
    def __init__(self) -> None:
        self._subscribers: list[TransitionListener] = []

    def subscribe(self, subscriber: TransitionListener) -> None:
        self._subscribers.append(subscriber)

    def publish(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(driver, record)
            except Exception:
                log.exception("[%s] reacting to %s -> %s failed (%s)", driver.name,
                              record.old.value, record.new.value,
                              getattr(subscriber, "__qualname__", subscriber))


class Reactions:
    """The daemon's subscribers: the event history, notify hooks, sync groups following their
    members, config sync (the new master pushes) and systemd's STATUS line."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def subscribe(self, bus: TransitionBus) -> None:
        for subscriber in (self.record, self.run_hooks, self.move_groups,
                           self.tell_config_sync, self.update_status):
            bus.subscribe(subscriber)

    def record(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        self.daemon.events.record("transition", instance=driver.name, old=record.old.value,
                                  new=record.new.value, reason=record.reason,
                                  priority=driver.router.priority)

    def run_hooks(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        d = self.daemon
        if d.hooks is None:
            return
        args = (record.new.value, record.old.value, driver.router.priority,
                [str(v.ip) for v in driver.cfg.held], record.reason, d.config.node)
        d.hooks.instance_changed(driver.name, *args)
        for group in d.groups.of(driver):
            if all(m.state is record.new for m in group.members):
                d.hooks.group_reached(group.cfg.name, *args)

    def move_groups(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        self.daemon.groups.on_transition(driver, record.old, record.new, record.cause)

    def tell_config_sync(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        if self.daemon.config_sync is not None:
            self.daemon.config_sync.on_transition(driver.name, record.new.value)

    def update_status(self, driver: InstanceDriver, record: TransitionRecord) -> None:
        self.daemon.notifier.notify(STATUS=self.daemon.summary())
