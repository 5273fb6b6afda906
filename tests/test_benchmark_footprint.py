"""The footprint, start-up and soak benchmarks' own arithmetic (issue 16 parts 3-5): the
verdicts against keepalived, the profile summary, the start-up summary."""

from __future__ import annotations

from typing import Any

from benchmarks.footprint import summarize as profile
from benchmarks.scale import verdicts
from benchmarks.soak import gap_stats
from benchmarks.startup import rfc_wait
from benchmarks.startup import summarize as startup


def _row(daemon: str, n: int, cpu: tuple[float, float], rss: float, p99: float = 1.0,
         false: int = 0) -> dict[str, Any]:
    return {"daemon": daemon, "instances": n, "cpu_per_s": {"lb1": cpu[0], "lb2": cpu[1]},
            "peak_rss_mib": {"lb1": rss, "lb2": rss - 1}, "false_transitions": {"lb1": false,
                                                                               "lb2": 0},
            "vrids_heard": n, "deviation_ms": {"p99": p99}}


def test_scale_verdicts_compare_with_keepalived_in_the_same_run() -> None:
    rows = [_row("vrrpd", 1, (0.002, 0.002), 24.0), _row("keepalived", 1, (0.001, 0.0), 13.0),
            _row("vrrpd", 255, (0.06, 0.05), 31.0, p99=4.0, false=1),
            _row("keepalived", 255, (0.08, 0.03), 13.0)]
    got = {v["target"]: v["met"] for v in verdicts(rows)}
    assert got["backup CPU at 255 <= 1.5 x keepalived's"] is False  # 0.05 > 0.045
    assert got["master CPU at 255 <= 1 x keepalived's"] is True
    assert got["peak RSS at 255 <= 30 MiB"] is False
    assert got["one instance RSS <= 25 MiB"] is True
    assert got["255 instances: 0 false transitions"] is False
    assert got["255 instances: |gap - interval| p99 <= 5 ms, every VRID heard"] is True


def test_profile_summary_counts_own_and_inclusive_samples() -> None:
    raw = "main;loop;recv 6\nmain;loop;send 3\nmain;idle 1\n"
    summary = profile(raw)
    assert summary["samples"] == 10
    assert summary["self"][0] == ["recv", 0.6]
    assert dict(map(tuple, summary["inclusive"]))["loop"] == 0.9  # type: ignore[arg-type]


def test_startup_subtracts_the_rfc_wait_and_soak_gaps() -> None:
    assert rfc_wait("owner") == 0.0
    assert round(rfc_wait("backup-first"), 4) == 0.3414  # 3 x 0.1 s + Skew_Time at 150
    rows = [{"variant": "owner", "instances": 1, "first_advert_ms": t, "daemon_share_ms": t,
             "vips_held_ms": t + 5, "started_line_ms": None} for t in (200.0, 250.0, 400.0)]
    line = startup(rows)[0]
    assert line["first_advert_ms"]["median"] == 250.0 and line["meets_target"] is True
    stats = gap_stats([0.010, 0.011, 0.025], 0.01)
    assert stats["adverts"] == 4 and stats["over_2_intervals"] == 1 and stats["max"] == 25.0


def test_profile_summary_counts_the_loop_waiting_in_select_apart() -> None:
    """py-spy takes a loop waiting in epoll_wait as active: those samples are the share
    ``waiting`` and not in the function shares."""
    raw = ("main;loop;recv 3\nmain;loop;send 1\n"
           "main;_run_once;EpollSelector.select (selectors.py:468) 4\n")
    summary = profile(raw)
    assert (summary["samples"], summary["waiting"]) == (4, 0.5)
    assert summary["self"] == [["recv", 0.75], ["send", 0.25]]
