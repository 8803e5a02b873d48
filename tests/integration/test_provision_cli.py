"""`cascade provision` against the Pub/Sub and BigQuery emulators: creates everything, then is a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

from adapters.bigquery_schema import TABLES
from tests.support.emulators import Emulator

pytestmark = pytest.mark.emulator


def provision(pubsub: Emulator, bigquery: Emulator, project: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": pubsub.host_port,
        "BIGQUERY_EMULATOR_HOST": bigquery.host_port,
    }
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "provision", "--project", project, "--dataset", "audit_cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def bigquery_tables(bigquery: Emulator, project: str, dataset: str) -> set[str]:
    url = f"http://{bigquery.host_port}/bigquery/v2/projects/{project}/datasets/{dataset}/tables"
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        return {t["tableReference"]["tableId"] for t in json.load(response).get("tables") or []}


def test_provision_creates_every_topic_and_subscription_then_changes_nothing(
    pubsub_server: Emulator, bigquery_server: Emulator
) -> None:
    project = f"prov-{uuid.uuid4().hex[:8]}"
    first = provision(pubsub_server, bigquery_server, project)
    assert first.returncode == 0, first.stderr
    created = [line for line in first.stdout.splitlines() if line.startswith("created")]
    for topic in (
        "nba-phase2-raw-complete",
        "nba-phase3-trigger",
        "nba-phase6-export-trigger",
        "cascade-dead-letter",
        "nba-orchestration-status",
        "nba-slo-violation",
    ):
        assert f"created topic {topic}" in created
    assert "created subscription cascade-nba-phase5-predictions-complete" in created
    assert f"created dataset {project}.audit_cli" in created
    assert f"created table {project}.audit_cli.slo_log" in created
    tables = bigquery_tables(bigquery_server, project, "audit_cli")
    assert tables == {t.name for t in TABLES} and "slo_log" in tables

    second = provision(pubsub_server, bigquery_server, project)
    assert second.returncode == 0, second.stderr
    assert not [line for line in second.stdout.splitlines() if line.startswith("created")]
    assert len([line for line in second.stdout.splitlines() if line.startswith("exists")]) == len(created)


def test_provision_against_a_closed_port_fails_with_a_clear_message(bigquery_server: Emulator) -> None:
    closed = Emulator("closed", [], port=9, health_url="http://127.0.0.1:9/")
    result = provision(closed, bigquery_server, "prov-closed")
    assert result.returncode != 0
    assert "cascade provision:" in result.stderr and "Traceback" not in result.stderr
