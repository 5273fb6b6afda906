"""``file`` tracker: keepalived's ``vrrp_track_file`` semantics.

keepalived.conf(5): the file holds an integer that is multiplied by the weight and added to the
priority; with weight 0 a non-zero value is a failure.  Here, read every ``interval`` (a cheap
``stat``/``read`` in a worker thread, so a hung filesystem cannot stall the loop):

* file absent -> passing, value 0;
* an integer N -> value N, passing iff N == 0 (the weight arithmetic is in
  :func:`vrrpd.track.status.effective_priority`);
* empty or not an integer -> failing, no value (an operator typo must be seen).

Option (converted by the config loader): ``path`` (Path).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from vrrpd.config.model import FileOptions, TrackConfig, TrackType, options_of
from vrrpd.track.base import StatusCallback, Tracker
from vrrpd.track.status import CheckResult

MAX_READ = 4096  # bytes; the file holds one integer


def read_track_file(path: Path) -> CheckResult:
    """The result for ``path`` as it is now (blocking: call it in a thread)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_READ)
    except FileNotFoundError:
        return CheckResult(True, f"{path} absent", value=0)
    except OSError as exc:
        return CheckResult(False, f"{path}: {exc.strerror}")
    text = raw.decode("ascii", errors="replace").strip()
    if not text:
        return CheckResult(False, f"{path} is empty")
    try:
        value = int(text)
    except ValueError:
        return CheckResult(False, f"{path} does not hold an integer: {text[:40]!r}")
    return CheckResult(value == 0, f"{path} holds {value}", value=value)


class FileTracker(Tracker):
    """Reports the file's integer as :attr:`TrackStatus.value`."""

    kind = TrackType.FILE

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        self.path = options_of(config, FileOptions).path

    async def check(self) -> CheckResult:
        return await asyncio.to_thread(read_track_file, self.path)
