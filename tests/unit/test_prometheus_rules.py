"""The Prometheus alert rules (ops/monitoring): valid for promtool, unit-tested, complete, and reading only
metrics the daemon exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from ops.metrics import Metrics
from tests.support.promql import exported_sample_names, metric_names

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "ops" / "monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
RULE_TESTS = sorted(MONITORING.glob("prometheus-rules*.test.yaml"))
PROMTOOL_MISSING = (
    "promtool not found: apt-get install prometheus (Debian) — .ci/run installs it when run as root"
)
SEVERITIES = {"critical", "warning", "info"}
# Written by Prometheus itself for every scrape target, not by the daemon.
SCRAPE_METRICS = {"up"}


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(PROMTOOL_MISSING)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=MONITORING, capture_output=True, text=True, timeout=50, check=False)


def test_the_rules_file_passes_promtool_check() -> None:
    result = _run(_promtool(), "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda path: path.name)
def test_the_promtool_unit_tests_pass(test_file: Path) -> None:
    result = _run(_promtool(), "test", "rules", test_file.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_test_files_load_this_rules_file() -> None:
    assert [path.name for path in RULE_TESTS] == [
        "prometheus-rules.days.test.yaml",
        "prometheus-rules.test.yaml",
    ]
    for test_file in RULE_TESTS:
        assert _load(test_file)["rule_files"] == [RULES.name]


def test_every_alert_has_a_unique_name_a_severity_and_what_an_operator_needs() -> None:
    alerts = _alerts()
    names = [alert["alert"] for alert in alerts]
    assert len(names) >= 15
    assert len(set(names)) == len(names)
    for alert in alerts:
        assert alert["alert"].startswith("Cascade"), alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), alert["alert"]


def test_every_alert_has_a_promtool_case_where_it_fires() -> None:
    fired = {
        case["alertname"]
        for test_file in RULE_TESTS
        for group in _load(test_file)["tests"]
        for case in group["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == {alert["alert"] for alert in _alerts()}


def test_the_season_alert_is_restricted_to_the_nba_season_months() -> None:
    (alert,) = [a for a in _alerts() if a["alert"] == "CascadeNoCompletionsRouted"]
    assert "month() >= 10 or month() <= 6" in alert["expr"]


def test_every_metric_the_rules_read_is_exported_by_the_daemon() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used = set().union(*(metric_names(rule["expr"]) for rule in _rules())) - SCRAPE_METRICS - recorded
    assert len(used) >= 10  # the parser found the metrics, so the check below is not vacuous
    assert used <= exported_sample_names(Metrics(CollectorRegistry()).registry)


def test_every_alert_is_explained_in_the_monitoring_doc() -> None:
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    missing = [alert["alert"] for alert in _alerts() if f"`{alert['alert']}`" not in doc]
    assert missing == []
