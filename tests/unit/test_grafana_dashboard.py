"""The Grafana dashboard (ops/monitoring/grafana-dashboard.json): importable, every panel queries something,
and every query is valid PromQL over metrics the daemon exports."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from ops.metrics import Metrics
from tests.support.promql import exported_sample_names, metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "monitoring" / "grafana-dashboard.json"
GRID_COLUMNS = 24
PROMTOOL_MISSING = (
    "promtool not found: apt-get install prometheus (Debian) — .ci/run installs it when run as root"
)
# What Grafana substitutes before the query reaches Prometheus, for checking the PromQL on its own.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$transition": ".*"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _queried_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but the rows, which only group the panels below them and hold no query."""
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in _queried_panels(dashboard) for target in panel["targets"]]


def test_it_is_an_importable_dashboard_with_a_prometheus_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    assert dashboard["uid"] == "cascade-router"
    assert dashboard["title"] == "cascade router"
    assert dashboard["schemaVersion"] >= 39
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_has_a_title_a_query_and_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    panels = _queried_panels(dashboard)
    assert len(panels) >= 17
    for panel in panels:
        assert panel["title"], panel["id"]
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    boxes = [(panel["title"], panel["gridPos"]) for panel in dashboard["panels"]]
    for _, box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= GRID_COLUMNS
    for (first, a), (second, b) in itertools.combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{first!r} overlaps {second!r}"


def test_every_metric_the_dashboard_reads_is_exported_by_the_daemon(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(expr) for expr in _exprs(dashboard)))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            used |= set(re.findall(r"label_values\((\w+)", variable["definition"]))
    assert len(used) >= 17  # the parser found the metrics, so the check below is not vacuous
    assert used <= exported_sample_names(Metrics(CollectorRegistry()).registry)


def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool has no query checker, so each query becomes a recording rule for `promtool check rules`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(PROMTOOL_MISSING)
    rules = []
    for number, expr in enumerate(_exprs(dashboard)):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    rules_file = tmp_path / "dashboard-queries.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
