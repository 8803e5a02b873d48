"""`cascade provision` reads the project and the resource names from the environment as `cascade run` does,
and what it creates is exactly what run's startup check looks for; subscriptions never expire; the dataset
is created where asked. Against the Pub/Sub and BigQuery emulators, provision as a subprocess."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from adapters.pubsub_admin import PubSubAdmin, consumed_subscriptions
from adapters.resource_names import ResourceNames
from ops.exit_codes import EXIT_OK, EXIT_USAGE
from ops.settings import load_settings
from policies.model import Policy
from tests.support.cli_process import cascade, critical_message
from tests.support.emulators import HOST, Emulator, free_port

pytestmark = pytest.mark.emulator

CUSTOM = {
    "CASCADE_SUBSCRIPTION_PREFIX": "ours-",
    "CASCADE_DEAD_LETTER_TOPIC": "ours-dead-letter",
    "CASCADE_ALERT_TOPIC": "ours-alerts",
    "CASCADE_STATUS_TOPIC": "ours-status",
    "CASCADE_BIGQUERY_DATASET": "ours_audit",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rest(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"content-type": "application/json"}, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        text = response.read()
    return dict(json.loads(text)) if text else {}


async def missing(project: str, pubsub: Emulator, policy: Policy, names: ResourceNames) -> list[str]:
    async with aiohttp.ClientSession() as session:
        return await PubSubAdmin(project, session, f"http://{pubsub.host_port}/v1").missing(policy, names)


def test_provision_creates_the_names_set_in_the_environment_and_run_finds_nothing_missing(
    pubsub_server: Emulator, bigquery_server: Emulator, policy: Policy, tmp_path: Path
) -> None:
    project = unique("names")
    env = {
        "CASCADE_PROJECT": project,  # no --project: the environment, as for run
        "PUBSUB_EMULATOR_HOST": pubsub_server.host_port,
        "BIGQUERY_EMULATOR_HOST": bigquery_server.host_port,
        **CUSTOM,
    }
    result = cascade(["provision", "--json"], env, tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    for created in (
        "topic ours-dead-letter",
        "topic ours-alerts",
        "topic ours-status",
        "subscription ours-dead-letter-audit",
        "subscription ours-nba-phase2-raw-complete",
        f"dataset {project}.ours_audit",
    ):
        assert created in report["created"]
    assert not [name for name in report["created"] if "cascade" in name or "nba-slo" in name]
    assert (report["dataset"], report["location"]) == (f"{project}.ours_audit", "US")
    assert report["existing"] == report["updated"] == report["not_updated"] == []

    names = load_settings(env).names  # as `cascade run` builds them from the same environment
    assert anyio.run(missing, project, pubsub_server, policy, names) == []


def test_every_subscription_is_created_never_to_expire(
    pubsub_server: Emulator, policy: Policy, tmp_path: Path
) -> None:
    project = unique("expiry")
    env = {"CASCADE_PROJECT": project, "PUBSUB_EMULATOR_HOST": pubsub_server.host_port}
    result = cascade(["provision", "--skip-bigquery"], env, tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    root = f"http://{pubsub_server.host_port}/v1/projects/{project}/subscriptions"
    subscriptions = consumed_subscriptions(policy)
    assert "cascade-dead-letter-audit" in subscriptions  # idle by design: the one that must not expire
    for name in subscriptions:
        # The emulator answers an expiration policy without a ttl (= never) as `{}`; one created without
        # any expiration policy has no `expirationPolicy` key at all.
        assert rest("GET", f"{root}/{name}").get("expirationPolicy") == {}, name


def test_an_existing_subscription_that_would_expire_is_reported_when_the_emulator_refuses_the_change(
    pubsub_server: Emulator, tmp_path: Path
) -> None:
    project = unique("stale")
    root = f"http://{pubsub_server.host_port}/v1/projects/{project}"
    rest("PUT", f"{root}/topics/nba-phase2-raw-complete", {})
    stale = {
        "topic": f"projects/{project}/topics/nba-phase2-raw-complete",
        "expirationPolicy": {"ttl": "86400s"},
    }
    rest("PUT", f"{root}/subscriptions/cascade-nba-phase2-raw-complete", stale)
    env = {"CASCADE_PROJECT": project, "PUBSUB_EMULATOR_HOST": pubsub_server.host_port}

    result = cascade(["provision", "--skip-bigquery", "--json"], env, tmp_path)

    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    assert "subscription cascade-nba-phase2-raw-complete" in report["existing"]
    [warning] = report["not_updated"]
    assert warning.startswith("subscription cascade-nba-phase2-raw-complete: may expire when idle (")
    assert "unsupported in the Pub/Sub Emulator" in warning  # the emulator cannot update expirationPolicy
    assert report["updated"] == [] and report["dataset"] is None


def test_run_refuses_to_start_without_the_dead_letter_topic(pubsub_server: Emulator, tmp_path: Path) -> None:
    project = unique("nodlq")
    env = {"CASCADE_PROJECT": project, "PUBSUB_EMULATOR_HOST": pubsub_server.host_port}
    assert cascade(["provision", "--skip-bigquery"], env, tmp_path).returncode == EXIT_OK
    rest("DELETE", f"http://{pubsub_server.host_port}/v1/projects/{project}/topics/cascade-dead-letter")
    closed = f"{HOST}:{free_port()}"  # never reached: the check comes first
    env |= {
        "FIRESTORE_EMULATOR_HOST": closed,
        "BIGQUERY_EMULATOR_HOST": closed,
        "PORT": str(free_port()),
        "CASCADE_AUDIT_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
    }

    result = cascade(["run"], env, tmp_path)

    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    message = critical_message(result.stdout)
    assert message.splitlines()[
        0
    ] == "cascade run: missing Pub/Sub resources (run `cascade provision`): " + ", ".join(
        [
            # A subscription outlives its topic on Pub/Sub, attached to the placeholder `_deleted-topic_`.
            "subscription cascade-dead-letter-audit (attached to _deleted-topic_, not cascade-dead-letter)",
            "topic cascade-dead-letter",
        ]
    )


def test_the_dataset_is_created_in_the_location_asked_for_and_never_silently_elsewhere(
    pubsub_server: Emulator, bigquery_server: Emulator, tmp_path: Path
) -> None:
    project = unique("where")
    env = {
        "PUBSUB_EMULATOR_HOST": pubsub_server.host_port,
        "BIGQUERY_EMULATOR_HOST": bigquery_server.host_port,
        "CASCADE_BIGQUERY_LOCATION": "EU",
    }
    argv = ["provision", "--project", project, "--dataset", "located", "--json"]
    first = cascade(argv, env, tmp_path)
    assert first.returncode == EXIT_OK, first.stderr
    assert json.loads(first.stdout)["location"] == "EU"
    url = f"http://{bigquery_server.host_port}/bigquery/v2/projects/{project}/datasets/located"
    assert rest("GET", url)["location"] == "EU"  # bqemulator records it (and defaults to US, as BigQuery)

    elsewhere = cascade([*argv, "--location", "US"], env, tmp_path)  # the flag wins over the variable

    assert elsewhere.returncode == EXIT_USAGE
    assert elsewhere.stderr.splitlines()[0] == (
        f"cascade provision: dataset {project}.located exists in location EU, not US "
        "(a dataset cannot move: pass --location EU or use another dataset)"
    )


def test_provision_with_bigquery_on_a_closed_port_names_it_and_its_address(
    pubsub_server: Emulator, tmp_path: Path
) -> None:
    closed = f"{HOST}:{free_port()}"
    env = {
        "CASCADE_PROJECT": unique("nobq"),
        "PUBSUB_EMULATOR_HOST": pubsub_server.host_port,
        "BIGQUERY_EMULATOR_HOST": closed,
    }
    result = cascade(["provision"], env, tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"cascade provision: BigQuery at {closed} did not answer (connection refused)"
    )
