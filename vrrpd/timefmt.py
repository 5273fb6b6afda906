"""Times as operators read them: ISO 8601, local time with date and UTC offset."""

from __future__ import annotations

import datetime


def iso(ts: float) -> str:
    """``1796036400.123`` -> ``"2026-11-30T12:00:00.123+01:00"`` (this machine's zone)."""
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")
