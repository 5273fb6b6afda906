"""``vrrpctl events --plot``: both nodes' events drawn as an SVG timeline."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from vrrpd.cli import timeline, vrrpctl

T0 = 1_800_000_000.0


def ev(node: str, at: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"node": node, "ts": T0 + at, "type": kind, **fields}


FAILOVER = [
    ev("lb1", 0.0, "transition", instance="pacs", old="BACKUP", new="MASTER", reason="x",
       priority=150),
    ev("lb2", 0.0, "transition", instance="pacs", old="INIT", new="BACKUP", reason="x",
       priority=100),
    ev("lb1", 5.0, "tracker", tracker="haproxy", ok=False, detail="master exited",
       instances=["pacs"]),
    ev("lb1", 5.0, "transition", instance="pacs", old="MASTER", new="FAULT", reason="track",
       priority=150),
    ev("lb2", 5.06, "transition", instance="pacs", old="BACKUP", new="MASTER", reason="p0",
       priority=100),
    ev("lb1", 8.0, "tracker", tracker="haproxy", ok=True, detail="running",
       instances=["pacs"]),
    ev("lb1", 8.0, "transition", instance="pacs", old="FAULT", new="BACKUP", reason="ok",
       priority=150),
    ev("lb2", 9.0, "priority", instance="pacs", priority=90),
]


def test_lanes_follow_states_holder_and_trackers() -> None:
    rows = {r.label: r for r in timeline.lanes(FAILOVER, T0 - 1)}
    assert [v for _, v in rows["lb1 pacs"].steps] == [
        ("?", None), ("MASTER", 150), ("FAULT", 150), ("BACKUP", 150)]
    assert [v for _, v in rows["lb2 pacs"].steps] == [
        ("?", None), ("BACKUP", 100), ("MASTER", 100), ("MASTER", 90)]
    assert [v for _, v in rows["VIPs pacs"].steps] == ["", "lb1", "", "lb2"]
    assert [v for _, v in rows["lb1 track haproxy"].steps] == [None, False, True]


def test_both_masters_show_as_both_holding() -> None:
    split = [*FAILOVER[:2], ev("lb2", 3.0, "transition", instance="pacs", old="BACKUP",
                               new="MASTER", reason="no advert", priority=100)]
    rows = {r.label: r for r in timeline.lanes(split, T0)}
    assert rows["VIPs pacs"].steps[-1][1] == "lb1+lb2"


def test_svg_is_well_formed_and_labelled() -> None:
    svg = timeline.render(FAILOVER, T0 - 1, T0 + 12, "failover")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for text in ("lb1 pacs", "lb2 pacs", "VIPs pacs", "lb1 track haproxy", "MASTER 150",
                 "FAULT 150", "MASTER 100", "lb2", "failover"):
        assert text in texts, text


def test_vrrpctl_plot_with_the_other_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    mine = [e for e in FAILOVER if e["node"] == "lb1"]
    other = tmp_path / "lb2.jsonl"
    other.write_text("".join(json.dumps(e) + "\n" for e in FAILOVER if e["node"] == "lb2"))
    monkeypatch.setattr(vrrpctl, "request", lambda *a, **k: {"node": "lb1", "events": mine})
    monkeypatch.setattr(vrrpctl.time, "time", lambda: T0 + 12)
    out = tmp_path / "failover.svg"
    assert vrrpctl.main(["events", "--since", "1m", "--plot", str(out), "--also",
                         str(other)]) == 0
    assert capsys.readouterr().out == f"wrote {out}: 8 events of lb1, lb2\n"
    assert "lb2 pacs" in out.read_text()
