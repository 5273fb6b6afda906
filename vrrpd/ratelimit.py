"""Log-line rate limiting shared by the daemon (dropped packets) and the trackers."""

from __future__ import annotations

import time
from collections.abc import Callable


class RepeatFilter:
    """Lets an identical message through at most once per ``period`` seconds.

    The first message after a quiet period carries how many copies were held back, so a
    check failing every second for an hour makes 60 log lines, not 3600.
    """

    def __init__(self, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (logged at, suppressed)

    def admit(self, message: str, key: str | None = None) -> str | None:
        """The line to log for ``message`` now, or None to stay quiet.

        ``key`` groups messages that differ in detail (a flood of bad packets from random
        sources is one kind of trouble, not thousands); by default the message is its own key.
        """
        key = message if key is None else key
        now = self._clock()
        self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.period or k == key}
        logged_at, suppressed = self._seen.get(key, (None, 0))
        if logged_at is not None and now - logged_at < self.period:
            self._seen[key] = (logged_at, suppressed + 1)
            return None
        self._seen[key] = (now, 0)
        return f"{message} (and {suppressed} more like it)" if suppressed else message
