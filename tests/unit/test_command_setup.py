"""What `cascade run | provision | publish` check before any network: the project, the settings, the
credentials; what their --help says; and the one place the resource names live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from adapters.credentials import credentials_problem
from adapters.errors import ConfigurationError
from adapters.memory_pubsub import MemoryBroker
from adapters.pubsub_admin import provision
from adapters.resource_names import DEFAULT_NAMES, ResourceNames
from ops.cli import build_parser, main
from ops.engine import EngineConfig
from ops.exit_codes import EXIT_OK, EXIT_USAGE
from ops.settings import env_names, load_settings
from policies.model import Policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "overnight_full_cascade.jsonl"
NO_PROJECT = "no project: pass --project or set CASCADE_PROJECT (or GOOGLE_CLOUD_PROJECT)"
NO_CREDENTIALS_RUN = (
    "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS or run "
    "`gcloud auth application-default login`, or point PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST and "
    "BIGQUERY_EMULATOR_HOST at the emulators"
)
EMULATORS = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No project, no credentials, no emulator, no Cloud Run: a newcomer's shell. Returns the empty HOME."""
    for name in (
        "CASCADE_PROJECT",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUDSDK_CONFIG",
        "K_SERVICE",
        "CLOUD_RUN_JOB",
        "GCE_METADATA_HOST",
        "GCE_METADATA_ROOT",
        *EMULATORS,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def first_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.splitlines()[0]


# --- the project -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["provision"], id="provision"),
        pytest.param(["publish", str(EXAMPLE), "--no-wait"], id="publish"),
    ],
)
def test_without_any_project_provision_and_publish_say_how_to_give_one(
    argv: list[str], bare_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert first_error_line(capsys) == f"cascade {argv[0]}: {NO_PROJECT}"


def test_provision_refuses_a_misspelt_cascade_variable_as_run_does(
    bare_environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Otherwise provision would quietly create the default dead-letter topic, and run would refuse to start.
    monkeypatch.setenv("CASCADE_DEAD_LETER_TOPIC", "ours-dead-letter")
    assert main(["provision", "--project", "p"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "cascade provision: invalid configuration:"
    assert "CASCADE_DEAD_LETER_TOPIC: not a cascade setting (did you mean CASCADE_DEAD_LETTER_TOPIC?)" in err


def test_provision_validates_the_dataset_flag_with_the_settings_rule(
    bare_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provision", "--project", "p", "--dataset", "no-dashes"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "cascade provision: invalid configuration:"
    assert "CASCADE_BIGQUERY_DATASET: String should match pattern" in err


# --- credentials ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "services"),
    [
        pytest.param(
            ["run"], "PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST", id="run"
        ),
        pytest.param(["provision"], "PUBSUB_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST", id="provision"),
        pytest.param(["provision", "--skip-bigquery"], "PUBSUB_EMULATOR_HOST", id="provision-pubsub-only"),
        pytest.param(["publish", str(EXAMPLE), "--no-wait"], "PUBSUB_EMULATOR_HOST", id="publish"),
    ],
)
def test_without_credentials_each_command_names_the_ways_to_get_them(
    argv: list[str],
    services: str,
    bare_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CASCADE_PROJECT", "p")
    assert main(argv) == EXIT_USAGE
    line = first_error_line(capsys)
    assert line.startswith(
        f"cascade {argv[0]}: no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS"
    )
    assert line.endswith(f"or point {services} at the emulator{'s' if ' and ' in services else ''}")


def test_the_run_message_is_the_documented_sentence(bare_environment: Path) -> None:
    assert credentials_problem(["Pub/Sub", "Firestore", "BigQuery"], {}) == NO_CREDENTIALS_RUN


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"K_SERVICE": "cascade"}, id="cloud-run-service"),
        pytest.param({"CLOUD_RUN_JOB": "provision"}, id="cloud-run-job"),
        pytest.param({"GCE_METADATA_HOST": "169.254.169.254"}, id="metadata-host-given"),
        pytest.param(dict.fromkeys(EMULATORS, "localhost:1"), id="every-service-emulated"),
    ],
)
def test_no_false_alarm_where_the_metadata_server_or_the_emulators_stand_in(
    environ: dict[str, str], bare_environment: Path
) -> None:
    assert credentials_problem(["Pub/Sub", "Firestore", "BigQuery"], environ) is None


def test_only_the_services_not_on_an_emulator_need_credentials(bare_environment: Path) -> None:
    problem = credentials_problem(["Pub/Sub", "BigQuery"], {"PUBSUB_EMULATOR_HOST": "localhost:1"})
    assert problem is not None and problem.endswith("or point BIGQUERY_EMULATOR_HOST at the emulator")


def test_gclouds_application_default_file_counts_as_credentials(bare_environment: Path) -> None:
    adc = bare_environment / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    user = {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    adc.write_text(json.dumps(user))
    assert credentials_problem(["Pub/Sub"], {}) is None


def test_a_key_file_that_is_not_there_is_named(
    bare_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = bare_environment / "key.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    problem = credentials_problem(["Pub/Sub"], {"GOOGLE_APPLICATION_CREDENTIALS": str(missing)})
    assert problem is not None and problem.startswith("GOOGLE_APPLICATION_CREDENTIALS is set but unusable: ")
    assert str(missing) in problem


# --- help -------------------------------------------------------------------------------------------------


def subcommand(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def test_run_help_lists_every_variable_the_settings_read_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "usage: cascade run [-h] [--policy POLICY]"
    environment = out[out.index("environment:") : out.index("exit codes:")]
    for names in env_names().values():
        assert " or ".join(names) in environment
    assert "CASCADE_TOPIC_PREFIX" not in out
    exit_codes = out[out.index("exit codes:") :].splitlines()[1:]
    assert [
        line.split()[0] for line in exit_codes if line.startswith("  ") and line.split()[0].isdigit()
    ] == [
        "0",
        "1",
        "2",
        "3",
    ]


def test_provision_help_lists_the_names_it_reads_and_its_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["provision", "--help"])
    assert exit_.value.code == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("usage: cascade provision [-h] [--project PROJECT]")
    for variable in (
        "CASCADE_PROJECT or GOOGLE_CLOUD_PROJECT",
        "CASCADE_SUBSCRIPTION_PREFIX",
        "CASCADE_DEAD_LETTER_TOPIC",
        "CASCADE_ALERT_TOPIC",
        "CASCADE_STATUS_TOPIC",
        "CASCADE_BIGQUERY_DATASET",
        "CASCADE_BIGQUERY_LOCATION",
        "PUBSUB_EMULATOR_HOST",
        "BIGQUERY_EMULATOR_HOST",
    ):
        assert variable in out
    assert "CASCADE_SHUTDOWN_GRACE_S" not in out  # run's business, not provision's
    assert "exit codes:" in out


# --- one source of truth for names --------------------------------------------------------------------------


def test_settings_engine_and_provisioning_share_the_default_names() -> None:
    assert load_settings({"CASCADE_PROJECT": "p"}).names == DEFAULT_NAMES
    assert EngineConfig().names == DEFAULT_NAMES


def test_the_topic_prefix_variable_is_gone() -> None:
    with pytest.raises(ConfigurationError, match="CASCADE_TOPIC_PREFIX: not a cascade setting"):
        load_settings({"CASCADE_PROJECT": "p", "CASCADE_TOPIC_PREFIX": "x-"})


async def test_provisioning_creates_the_names_it_is_given(policy: Policy) -> None:
    names = ResourceNames(
        subscription_prefix="ours-",
        dead_letter_topic="ours-dlq",
        alert_topic="ours-alert",
        status_topic="ours-st",
    )
    result = await provision(MemoryBroker(), policy, names)
    for created in ("topic ours-dlq", "topic ours-alert", "topic ours-st", "subscription ours-dlq-audit"):
        assert created in result.created
    assert "subscription ours-nba-phase2-raw-complete" in result.created
    assert not [name for name in result.created if "cascade-" in name or "nba-slo" in name]
