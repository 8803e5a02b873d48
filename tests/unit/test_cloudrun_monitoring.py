"""The Cloud Run service, the managed-Prometheus sidecar's scrape config and the alert rules agree: the
sidecar scrapes the router's port and path under the job name the rules select."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load(relative: str) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / relative).read_text())
    assert isinstance(loaded, dict), relative
    return loaded


def _template() -> dict[str, Any]:
    template = _load("ops/cloudrun/service.yaml")["spec"]["template"]
    assert isinstance(template, dict)
    return template


def _containers() -> dict[str, dict[str, Any]]:
    return {container["name"]: container for container in _template()["spec"]["containers"]}


def test_the_collector_starts_after_the_router_and_only_the_router_takes_requests() -> None:
    annotations = _template()["metadata"]["annotations"]
    assert json.loads(annotations["run.googleapis.com/container-dependencies"]) == {"collector": ["router"]}
    assert [name for name, container in _containers().items() if container.get("ports")] == ["router"]


def test_the_collector_reads_its_scrape_config_from_the_mounted_secret() -> None:
    (mount,) = _containers()["collector"]["volumeMounts"]
    assert mount["mountPath"] == "/etc/rungmp/"
    volumes = {volume["name"]: volume for volume in _template()["spec"]["volumes"]}
    assert volumes[mount["name"]]["secret"]["items"] == [{"key": "latest", "path": "config.yaml"}]


def test_the_sidecar_scrapes_the_routers_port_and_path_under_the_job_the_rules_select() -> None:
    run_monitoring = _load("ops/monitoring/run-monitoring.yaml")
    (endpoint,) = run_monitoring["spec"]["endpoints"]
    (port,) = _containers()["router"]["ports"]
    assert endpoint["port"] == port["containerPort"]
    assert endpoint["path"] == "/metrics"
    rules = (ROOT / "ops" / "monitoring" / "prometheus-rules.yaml").read_text()
    assert set(re.findall(r'job="([^"]+)"', rules)) == {run_monitoring["metadata"]["name"]}
