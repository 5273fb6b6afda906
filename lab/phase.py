"""Faults at a random phase of the daemons' timers.

A fault injected a fixed time after the pair settled lands at the same point of every advert
and check cycle, run after run, so a median then measures that phase rather than the daemon
(issue 16).  :func:`random_phase` waits a delay drawn uniformly from :func:`common_period` --
a whole number of each interval -- so the fault falls at a uniform phase of every timer; the
caller records the delay with the run.
"""

from __future__ import annotations

import math
import random
import time


def common_period(*intervals: float) -> float:
    """The shortest time that is a whole number of each interval (seconds, to 1 ms)."""
    return math.lcm(*(round(x * 1000) for x in intervals)) / 1000


def random_phase(period: float, rng: random.Random | None = None) -> float:
    """Sleep a delay uniform in [0, ``period``) and return it (seconds)."""
    delay = (rng or random.Random()).uniform(0, period)
    time.sleep(delay)
    return delay
