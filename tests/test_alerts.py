"""``etc/prometheus/vrrpd-alerts.yml``: promtool checks it and runs its unit tests
(``tests/prometheus/vrrpd-alerts.test.yml``), and every metric it uses is one vrrpd exports.

promtool comes with Debian's ``prometheus`` package (scripts/setup-host installs it); without
it the promtool tests are skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from metric_names import exported, used_in

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "etc/prometheus/vrrpd-alerts.yml"
UNIT_TESTS = REPO / "tests/prometheus/vrrpd-alerts.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; "
                             "scripts/setup-host installs it)")
LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


def rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for group in doc["groups"] for r in group["rules"]}


def with_annotations(tests: dict[str, Any]) -> dict[str, Any]:
    """The unit tests with each expected alert's annotations rendered from its rule."""
    by_name = rules()
    tests["rule_files"] = [str(RULES)]
    for test in tests["tests"]:
        for case in test["alert_rule_test"]:
            for alert in case.get("exp_alerts") or []:
                labels = alert["exp_labels"]
                alert["exp_annotations"] = {
                    key: LABEL.sub(lambda m, labels=labels: str(labels[m[1]]), text)
                    for key, text in by_name[case["alertname"]]["annotations"].items()}
    return tests


@needs_promtool
def test_rules_are_valid() -> None:
    out = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_unit_tests(tmp_path: Path) -> None:
    tests = tmp_path / "vrrpd-alerts.test.yml"
    tests.write_text(yaml.safe_dump(with_annotations(yaml.safe_load(UNIT_TESTS.read_text()))))
    out = subprocess.run([PROMTOOL, "test", "rules", str(tests)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_is_unit_tested_and_firing_somewhere() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"]
             if case.get("exp_alerts")}
    assert fired == set(rules())


def test_rules_use_only_exported_metrics() -> None:
    names = used_in(RULES.read_text())
    assert names, "no vrrpd_ metric found in the rules"
    assert names <= exported(), names - exported()
