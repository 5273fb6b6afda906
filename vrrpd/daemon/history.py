"""An instance's transitions as the daemon keeps them: one :class:`TransitionRecord` each, the
last :data:`HISTORY` in ``vrrpctl status``, logged (FAULT as a warning), and handed to the
transition listeners (:mod:`vrrpd.daemon.fanout`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vrrpd.proto.events import Cause, State, Transition

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver

HISTORY = 50  # transitions kept for `vrrpctl status` / `events`


@dataclass(frozen=True)
class TransitionRecord:
    """One entry of the transition history."""

    at: float  # wall clock, for humans
    old: State
    new: State
    reason: str
    cause: Cause

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "old": self.old.value, "new": self.new.value,
                "reason": self.reason, "cause": self.cause.value}


TransitionListener = Callable[["InstanceDriver", TransitionRecord], None]


def record(d: InstanceDriver, t: Transition) -> TransitionRecord:
    """Keep, count and log ``t`` for instance ``d``."""
    entry = TransitionRecord(time.time(), t.old, t.new, t.reason, t.cause)
    d.history.append(entry)
    d.counters["transitions"] += 1
    d.state_since = entry.at
    d.log.log(logging.WARNING if t.new is State.FAULT else logging.INFO, "%s -> %s: %s",
              t.old, t.new, t.reason)
    return entry
