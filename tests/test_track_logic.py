"""Pure tracker logic: rise/fall, priority arithmetic, repeat filter, stats and file parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrrpd.ratelimit import RepeatFilter
from vrrpd.track.file import read_track_file
from vrrpd.track.haproxy import backend_problems
from vrrpd.track.haproxy_stats import StatsError, parse_info, parse_stat
from vrrpd.track.rise_fall import RiseFall
from vrrpd.track.status import TrackStatus, effective_priority


def run(rf: RiseFall, results: str) -> list[bool | None]:
    """Feed ``"++-"`` style results; returns the status after each."""
    out = []
    for r in results:
        rf.feed(r == "+")
        out.append(rf.ok)
    return out


def test_first_result_decides_whatever_rise_and_fall() -> None:
    assert RiseFall(3, 3).ok is None
    assert run(RiseFall(3, 3), "+") == [True]
    assert run(RiseFall(3, 3), "-") == [False]


def test_fall_needs_consecutive_failures() -> None:
    assert run(RiseFall(1, 3), "+--+---") == [True, True, True, True, True, True, False]


def test_rise_needs_consecutive_successes() -> None:
    assert run(RiseFall(2, 1), "-+-++") == [False, False, False, False, True]


def test_feed_reports_changes_only() -> None:
    rf = RiseFall(1, 2)
    assert [rf.feed(r) for r in (True, True, False, False, False, True)] == [
        True,
        False,
        False,
        True,
        False,
        True,
    ]


def test_fail_now_ignores_fall_and_resets_the_streak() -> None:
    rf = RiseFall(2, 5)
    rf.feed(True)
    assert rf.fail_now() is True
    assert rf.ok is False
    assert rf.fail_now() is False
    rf.feed(True)
    assert rf.pending == "1/2"
    rf.fail_now()
    assert rf.pending == "0/2"


def test_rise_fall_rejects_zero() -> None:
    with pytest.raises(ValueError):
        RiseFall(0, 1)


def status(ok: bool, value: int | None = None) -> TrackStatus:
    return TrackStatus("t", ok, "", 0.0, value)


@pytest.mark.parametrize(
    ("base", "results", "expected"),
    [
        (100, [], (100, False)),
        (100, [(10, status(True))], (110, False)),  # weight > 0 adds while passing
        (100, [(10, status(False))], (100, False)),
        (100, [(-30, status(False))], (70, False)),  # weight < 0 adds while failing
        (100, [(-30, status(True))], (100, False)),
        (100, [(0, status(True))], (100, False)),
        (100, [(0, status(False))], (100, True)),  # weight 0 failing -> FAULT
        (250, [(10, status(True))], (254, False)),  # clamped to 254
        (20, [(-50, status(False))], (1, False)),  # clamped to 1
        (255, [(-50, status(False))], (255, False)),  # the owner keeps 255
        (255, [(0, status(False))], (255, True)),  # ... unless faulted
        (100, [(5, status(False, 3))], (115, False)),  # track_file: N * weight, any sign
        (100, [(-5, status(False, 3))], (85, False)),
        (100, [(-5, status(False, -2))], (110, False)),
        (100, [(5, status(True, 0))], (100, False)),  # N == 0 adds nothing, even weight > 0
        (100, [(0, status(False, 7))], (100, True)),  # weight 0: N != 0 is a failure
        (100, [(0, status(True, 0))], (100, False)),
        (100, [(10, status(True)), (-20, status(False)), (-5, status(True))], (90, False)),
    ],
)
def test_effective_priority(
    base: int, results: list[tuple[int, TrackStatus]], expected: tuple[int, bool]
) -> None:
    assert effective_priority(base, results) == expected


def test_repeat_filter_holds_back_identical_lines_within_the_period() -> None:
    now = [0.0]
    f = RepeatFilter(period=60, clock=lambda: now[0])
    assert f.admit("a") == "a"
    assert f.admit("a") is None
    assert f.admit("b") == "b"
    now[0] = 30
    assert f.admit("a") is None
    now[0] = 61
    assert f.admit("a") == "a (and 2 more like it)"
    assert f.admit("a") is None


def test_repeat_filter_groups_messages_by_key() -> None:
    """A flood of drops from random sources is one line per reason and period."""
    now = [0.0]
    f = RepeatFilter(period=10, clock=lambda: now[0])
    assert f.admit("bad checksum from 192.0.2.7", "checksum") == "bad checksum from 192.0.2.7"
    assert f.admit("bad checksum from 192.0.2.8", "checksum") is None
    assert f.admit("TTL 64 from 192.0.2.8", "ttl") == "TTL 64 from 192.0.2.8"
    now[0] = 11
    assert f.admit("bad checksum from 192.0.2.9", "checksum") == (
        "bad checksum from 192.0.2.9 (and 1 more like it)")


INFO = "Name: HAProxy\nVersion: 2.6.12\nPid: 42\n"
STAT = (
    "# pxname,svname,qcur,status,weight\n"
    "fe,FRONTEND,,OPEN,\n"
    "web,s1,0,DOWN,1\n"
    "web,s2,0,MAINT,1\n"
    "web,BACKEND,0,DOWN,0\n"
    "dicom,s1,0,UP 1/3,1\n"
    "dicom,s2,0,DOWN,1\n"
    "dicom,BACKEND,0,UP,1\n"
    "empty,BACKEND,0,DOWN,0\n"
)


def test_parse_info() -> None:
    assert parse_info(INFO)["Version"] == "2.6.12"
    with pytest.raises(StatsError, match="unexpected reply"):
        parse_info("Unknown command\n")


def test_backend_problems() -> None:
    rows = parse_stat(STAT)
    assert backend_problems(rows, ["dicom"]) == []
    assert backend_problems(rows, ["web", "empty", "nope"]) == [
        "backend web: all 2 servers DOWN",
        "backend empty: has no servers",
        "backend nope: not found in 'show stat'",
    ]
    with pytest.raises(StatsError):
        parse_stat("garbage\n")


@pytest.mark.parametrize(
    ("content", "ok", "value", "detail"),
    [
        (None, True, 0, "absent"),
        ("0\n", True, 0, "holds 0"),
        ("5\n", False, 5, "holds 5"),
        ("-3", False, -3, "holds -3"),
        ("", False, None, "is empty"),
        ("  \n", False, None, "is empty"),
        ("fail\n", False, None, "does not hold an integer: 'fail'"),
    ],
)
def test_read_track_file(
    tmp_path: Path, content: str | None, ok: bool, value: int | None, detail: str
) -> None:
    path = tmp_path / "prio"
    if content is not None:
        path.write_text(content)
    result = read_track_file(path)
    assert (result.ok, result.value) == (ok, value)
    assert detail in result.detail
