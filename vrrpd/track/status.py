"""What a tracker reports, and how tracker results move an instance's priority.

The weight rules are keepalived's (``keepalived.conf(5)``, ``vrrp_script`` / ``track_script``):

* weight 0: a failing tracker puts every instance using it into FAULT;
* weight > 0: the weight is *added* to the priority while the tracker passes;
* weight < 0: the weight is added (so the priority drops) while the tracker fails.

``track_file`` (``vrrp_track_file``) is different: the file holds an integer N that is multiplied
by the weight and added whatever its sign; with weight 0 a non-zero N counts as a failure.  The
file tracker therefore reports N in :attr:`TrackStatus.value` and this module multiplies, because
the weight belongs to the instance's reference (``TrackRef.weight`` may override the tracker's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vrrpd.proto.numbers import OWNER_PRIORITY

PRIORITY_MIN = 1  # 0 is reserved for "master resigns" (RFC 5798 §5.2.4)
PRIORITY_MAX = 254  # highest priority of a router that is not the address owner


@dataclass(frozen=True)
class CheckResult:
    """The raw outcome of one check (or one event), before rise/fall filtering."""

    ok: bool
    detail: str
    value: int | None = None  # file tracker: the integer in the file (0 when absent)


@dataclass(frozen=True)
class TrackStatus:
    """A tracker's published status: it changes only when rise/fall confirm a change.

    ``since`` is the wall-clock time (``time.time()``) of the change.  ``value`` is only set by
    the file tracker: the integer N the file holds (0 when the file is absent).
    """

    name: str
    ok: bool
    detail: str
    since: float
    value: int | None = None


def weigh(results: Iterable[tuple[int, TrackStatus]]) -> tuple[int, bool]:
    """keepalived's tracker rules: ``(delta, faulted)`` for statuses paired with weights.

    A weight-0 tracker that fails faults; a weighted one adds its weight while passing if the
    weight is positive, while failing if negative; the file tracker adds value x weight.
    """
    delta = 0
    faulted = False
    for weight, status in results:
        if status.value is not None:
            if weight == 0:
                faulted = faulted or status.value != 0
            delta += status.value * weight
        elif weight == 0:
            faulted = faulted or not status.ok
        elif (weight > 0) == status.ok:
            delta += weight
    return delta, faulted


def effective_priority(base: int, results: Iterable[tuple[int, TrackStatus]]) -> tuple[int, bool]:
    """Apply tracker results to ``base`` (:func:`weigh`); returns ``(priority, faulted)``.

    The sum is clamped to 1..254 (keepalived does the same).  The address owner (``base`` 255)
    keeps 255: only a fault takes it down, as the caller moves a faulted instance to FAULT.
    """
    delta, faulted = weigh(results)
    if base == OWNER_PRIORITY:  # the address owner: trackers never move it
        return base, faulted
    return max(PRIORITY_MIN, min(PRIORITY_MAX, base + delta)), faulted
