"""Rise/fall filtering of raw check results.  Pure logic: no I/O, no clock.

The status starts *unknown* (reported as failing) and the first result decides it at once,
whatever ``rise``/``fall`` are: at start-up there is no earlier state worth protecting, and
waiting ``rise`` intervals would only delay the first election.  keepalived does the same by
priming a script's counter at ``rise - 1``.  After that:

* ``rise`` consecutive successes are needed to go from failing to passing;
* ``fall`` consecutive failures are needed to go from passing to failing;
* :meth:`RiseFall.fail_now` fails immediately, for events that are certain (a watched process
  exited, a link went down): nothing is gained by waiting ``fall`` intervals for them.
"""

from __future__ import annotations


class RiseFall:
    """Counts consecutive results against the ``rise``/``fall`` thresholds."""

    def __init__(self, rise: int, fall: int) -> None:
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be >= 1 (rise={rise}, fall={fall})")
        self.rise = rise
        self.fall = fall
        self.ok: bool | None = None  # None: no result yet
        self._streak = 0  # consecutive results disagreeing with ``ok``

    def feed(self, success: bool) -> bool:
        """Record one check result; returns True when the status changed."""
        if self.ok is None:
            self.ok = success
            return True
        if success == self.ok:
            self._streak = 0
            return False
        self._streak += 1
        if self._streak < (self.rise if success else self.fall):
            return False
        self.ok = success
        self._streak = 0
        return True

    def fail_now(self) -> bool:
        """Fail immediately, regardless of ``fall``; returns True when the status changed."""
        changed = self.ok is not False
        self.ok = False
        self._streak = 0
        return changed

    @property
    def pending(self) -> str:
        """``"2/3"``-style progress towards the opposite status, for status output."""
        if self.ok is None:
            return ""
        return f"{self._streak}/{self.fall if self.ok else self.rise}"
