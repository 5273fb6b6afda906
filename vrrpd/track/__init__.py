"""Health trackers: pure rise/fall logic (:mod:`.rise_fall`), the priority arithmetic
(:mod:`.status`) and one asyncio runner per tracker type, run together by :class:`TrackerSet`."""

from vrrpd.track.manager import TrackerSet
from vrrpd.track.rise_fall import RiseFall
from vrrpd.track.status import CheckResult, TrackStatus, effective_priority

__all__ = ["CheckResult", "RiseFall", "TrackStatus", "TrackerSet", "effective_priority"]
