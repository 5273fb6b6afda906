"""``etc/grafana/vrrpd-dashboard.json`` loads as a Grafana dashboard and asks only for metrics
vrrpd exports (a renamed metric would leave a panel silently empty)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from metric_names import exported, used_in

DASHBOARD = Path(__file__).resolve().parents[1] / "etc/grafana/vrrpd-dashboard.json"


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def test_dashboard_structure() -> None:
    doc = dashboard()
    assert doc["title"] and doc["uid"] and isinstance(doc["schemaVersion"], int)
    assert doc["__inputs"][0]["pluginId"] == "prometheus"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in doc["panels"]:
        assert panel["type"] and panel["title"], panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert used_in(target["expr"]), f"{panel['title']}: {target['expr']} reads no " \
                                            "vrrpd metric"


def test_every_query_uses_exported_metrics() -> None:
    names = exported()
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            unknown = used_in(target["expr"]) - names
            assert not unknown, f"{panel['title']}: {sorted(unknown)} not exported by vrrpd"


def test_the_pair_view_is_there() -> None:
    """The panels an on-call engineer opens it for: holders, states, health, trackers, sync."""
    used = set().union(*(used_in(t["expr"]) for p in dashboard()["panels"]
                         for t in p["targets"]))
    assert {"vrrpd_instance_vips_held", "vrrpd_instance_state", "vrrpd_health",
            "vrrpd_tracker_up", "vrrpd_config_sync_peer_up", "vrrpd_config_sync_generation"} <= used


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package prometheus)")
def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule; Grafana's $job filled in)."""
    exprs = [t["expr"].replace("$job", "vrrpd") for p in dashboard()["panels"]
             for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{n}", "expr": e} for n, e in enumerate(exprs)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
