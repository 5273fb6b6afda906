"""``TrackerSet``: start, status, reload keeping unchanged trackers, stop; file tracker runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from track_helpers import Recorder, track_config

from vrrpd.config.model import TrackConfig, TrackType
from vrrpd.track.file import FileTracker
from vrrpd.track.manager import TRACKER_TYPES, TrackerSet
from vrrpd.track.status import TrackStatus


def file_config(name: str, path: Path, **overrides: object) -> TrackConfig:
    config = track_config(TrackType.FILE, path=path, interval=0.05, **overrides)
    return TrackConfig(name, config.type, config.options, config.interval, config.timeout,
                       config.rise, config.fall, config.weight)  # fmt: skip


def test_set_reports_reloads_and_stops(tmp_path: Path) -> None:
    prio = tmp_path / "prio"

    async def scenario() -> None:
        rec = Recorder()
        trackers = TrackerSet({"prio": file_config("prio", prio)}, rec)
        trackers.start()
        _, absent = await rec.wait_for(lambda s: s.name == "prio")
        assert (absent.ok, absent.value) == (True, 0)

        prio.write_text("-20\n")  # a new value publishes even without an ok/failing flip
        _, changed = await rec.wait_for(lambda s: s.value == -20)
        assert not changed.ok
        status = trackers.statuses()["prio"]
        assert (status.ok, status.value) == (False, -20)

        kept = trackers.statuses()["prio"]
        other = tmp_path / "other"
        await trackers.reload(
            {"prio": file_config("prio", prio), "other": file_config("other", other)}
        )
        await rec.wait_for(lambda s: s.name == "other")
        assert trackers.statuses()["prio"] is kept  # unchanged: same runner, same status
        assert set(trackers.statuses()) == {"prio", "other"}

        await trackers.reload({"other": file_config("other", other, rise=3)})
        assert set(trackers.statuses()) == {"other"}
        await trackers.stop()
        count = len(rec.statuses)
        prio.write_text("0\n")
        other.write_text("garbage")
        await asyncio.sleep(0.2)
        assert len(rec.statuses) == count  # stopped: no more checks

    asyncio.run(scenario())


def test_bad_reload_leaves_the_running_set_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        trackers = TrackerSet({"prio": file_config("prio", tmp_path / "p")}, Recorder())
        trackers.start()
        bad = track_config(TrackType.SCRIPT, command="true", user="no-such-user")
        with pytest.raises(ValueError, match="unknown user"):
            await trackers.reload({"check": bad})
        assert set(trackers.statuses()) == {"prio"}
        await trackers.stop()

    asyncio.run(scenario())


class CrashingTracker(FileTracker):
    async def run(self) -> None:
        raise RuntimeError("boom")


def test_crashed_runner_fails_its_tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRACKER_TYPES, TrackType.FILE, CrashingTracker)

    async def scenario() -> TrackStatus:
        rec = Recorder()
        trackers = TrackerSet({"prio": file_config("prio", tmp_path / "p")}, rec)
        trackers.start()
        _, status = await rec.wait_for(lambda s: True)
        await trackers.stop()
        return status

    status = asyncio.run(scenario())
    assert (status.ok, status.detail) == (False, "tracker stopped: RuntimeError('boom')")


def test_every_tracker_type_has_its_runner() -> None:
    """The runners are imported by type on first use (psutil only for the kinds that use it);
    each type names the class whose ``kind`` it is."""
    from vrrpd.config.model import TrackType
    from vrrpd.track.manager import RUNNERS, tracker_class

    assert set(RUNNERS) == set(TrackType)
    assert all(tracker_class(kind).kind is kind for kind in TrackType)
