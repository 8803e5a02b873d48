"""Settings from the environment: defaults, conventional names, and errors named by environment variable."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.errors import ConfigurationError
from adapters.resource_names import ResourceNames
from ops.settings import Settings, load_settings

MINIMAL = {"GOOGLE_CLOUD_PROJECT": "nba-props"}


def test_defaults_need_only_a_project() -> None:
    settings = load_settings(MINIMAL)

    assert settings.project == "nba-props"
    assert settings.policy_path is None
    assert settings.port == 8080
    assert settings.log_level == "INFO"
    assert settings.shutdown_grace_s == 8.0
    assert settings.names == ResourceNames(
        subscription_prefix="cascade-",
        dead_letter_topic="cascade-dead-letter",
        alert_topic="nba-slo-violation",
        status_topic="nba-orchestration-status",
        firestore_collection="cascade_dates",
        bigquery_dataset="cascade_audit",
    )
    assert settings.bigquery_location == "US"
    assert settings.claim_lease_s == 60.0
    assert settings.max_in_flight == 64
    assert (settings.ack_batch_max, settings.ack_batch_delay_s) == (100, 0.2)
    assert settings.admin_token is None
    assert settings.recent_days == 3
    assert settings.pubsub_emulator_host is None
    assert settings.firestore_emulator_host is None
    assert settings.bigquery_emulator_host is None
    assert settings.instance_id == f"{socket.gethostname()}-{os.getpid()}"


def test_conventional_names_and_prefixed_names_are_read() -> None:
    settings = load_settings(
        {
            "GOOGLE_CLOUD_PROJECT": "nba-props",
            "PORT": "9090",
            "PUBSUB_EMULATOR_HOST": "localhost:8085",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8086",
            "BIGQUERY_EMULATOR_HOST": "localhost:9050",
            "CASCADE_POLICY_PATH": "/etc/cascade/policy.yaml",
            "CASCADE_LOG_LEVEL": "debug",
            "CASCADE_SHUTDOWN_GRACE_S": "5.5",
            "CASCADE_INSTANCE_ID": "rev-7",
            "CASCADE_DEAD_LETTER_TOPIC": "test-dead",
            "CASCADE_BIGQUERY_LOCATION": "EU",
            "CASCADE_MAX_IN_FLIGHT": "8",
            "CASCADE_ACK_BATCH_MAX": "500",
            "CASCADE_ACK_BATCH_DELAY_S": "0.2",
            "CASCADE_RECENT_DAYS": "5",
        }
    )

    assert settings.port == 9090
    assert settings.pubsub_emulator_host == "localhost:8085"
    assert settings.firestore_emulator_host == "127.0.0.1:8086"
    assert settings.bigquery_emulator_host == "localhost:9050"
    assert settings.policy_path == Path("/etc/cascade/policy.yaml")
    assert settings.log_level == "DEBUG"
    assert settings.shutdown_grace_s == 5.5
    assert settings.instance_id == "rev-7"
    assert settings.names.dead_letter_topic == "test-dead"
    assert settings.bigquery_location == "EU"
    assert settings.max_in_flight == 8
    assert (settings.ack_batch_max, settings.ack_batch_delay_s) == (500, 0.2)
    assert settings.recent_days == 5


def test_cascade_project_takes_precedence_over_google_cloud_project() -> None:
    assert load_settings({"CASCADE_PROJECT": "own", "GOOGLE_CLOUD_PROJECT": "ambient"}).project == "own"
    assert load_settings({"CASCADE_PROJECT": "own"}).project == "own"


def test_an_empty_variable_counts_as_unset() -> None:
    settings = load_settings({**MINIMAL, "PORT": "", "CASCADE_ADMIN_TOKEN": ""})

    assert settings.port == 8080
    assert settings.admin_token is None


def test_load_settings_reads_only_the_given_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("CASCADE_LOG_LEVEL", "ERROR")

    settings = load_settings(MINIMAL)

    assert (settings.port, settings.log_level) == (8080, "INFO")


def test_settings_without_arguments_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASCADE_PROJECT", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("PORT", "1234")

    settings = Settings()

    assert (settings.project, settings.port) == ("from-env", 1234)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "70000", "PORT: Input should be less than or equal to 65535"),
        ("PORT", "0", "PORT: Input should be greater than or equal to 1"),
        ("PORT", "http", "PORT: Input should be a valid integer"),
        ("CASCADE_LOG_LEVEL", "verbose", "CASCADE_LOG_LEVEL: Input should be 'DEBUG', 'INFO'"),
        ("CASCADE_SHUTDOWN_GRACE_S", "10", "CASCADE_SHUTDOWN_GRACE_S: Value error, must be below 10"),
        ("CASCADE_SHUTDOWN_GRACE_S", "0", "CASCADE_SHUTDOWN_GRACE_S: Input should be greater than 0"),
        (
            "PUBSUB_EMULATOR_HOST",
            "http://localhost:8085",
            "PUBSUB_EMULATOR_HOST: Value error, must be host:port",
        ),
        ("FIRESTORE_EMULATOR_HOST", "localhost", "FIRESTORE_EMULATOR_HOST: Value error, must be host:port"),
        (
            "BIGQUERY_EMULATOR_HOST",
            "localhost:99999",
            "BIGQUERY_EMULATOR_HOST: Value error, must be host:port",
        ),
        ("CASCADE_MAX_IN_FLIGHT", "0", "CASCADE_MAX_IN_FLIGHT: Input should be greater than or equal to 1"),
        ("CASCADE_CLAIM_LEASE_S", "-1", "CASCADE_CLAIM_LEASE_S: Input should be greater than 0"),
        (
            "CASCADE_ACK_BATCH_MAX",
            "3000",
            "CASCADE_ACK_BATCH_MAX: Input should be less than or equal to 2500",
        ),
        (
            "CASCADE_ACK_BATCH_DELAY_S",
            "5",
            "CASCADE_ACK_BATCH_DELAY_S: Input should be less than or equal to 1",
        ),
        ("CASCADE_RECENT_DAYS", "0", "CASCADE_RECENT_DAYS: Input should be greater than or equal to 1"),
        ("CASCADE_BIGQUERY_DATASET", "audit-log", "CASCADE_BIGQUERY_DATASET: String should match pattern"),
        ("CASCADE_SUBSCRIPTION_PREFIX", "a b", "CASCADE_SUBSCRIPTION_PREFIX: Value error, must be non-empty"),
        ("CASCADE_INSTANCE_ID", "  ", "CASCADE_INSTANCE_ID: Value error, must be non-empty"),
        ("CASCADE_PORTT", "8080", "CASCADE_PORTT: not a cascade setting (did you mean CASCADE_PROJECT?)"),
        (
            "CASCADE_LOGLEVEL",
            "INFO",
            "CASCADE_LOGLEVEL: not a cascade setting (did you mean CASCADE_LOG_LEVEL?)",
        ),
    ],
)
def test_an_invalid_variable_is_named_with_the_reason(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**MINIMAL, name: value})

    assert expected in str(raised.value)


def test_a_missing_project_names_both_variables() -> None:
    with pytest.raises(ConfigurationError, match="CASCADE_PROJECT or GOOGLE_CLOUD_PROJECT: Field required"):
        load_settings({})


def test_every_invalid_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"PORT": "70000", "CASCADE_LOG_LEVEL": "loud", "CASCADE_TYPO": "1"})

    lines = str(raised.value).splitlines()
    assert lines[0] == "invalid configuration:"
    named = sorted(line.strip().split(":")[0] for line in lines[1:])
    assert named == ["CASCADE_LOG_LEVEL", "CASCADE_PROJECT or GOOGLE_CLOUD_PROJECT", "CASCADE_TYPO", "PORT"]


def test_the_admin_token_never_appears_in_repr_str_or_json() -> None:
    settings = load_settings({**MINIMAL, "CASCADE_ADMIN_TOKEN": "s3cret-token"})

    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret-token"
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "s3cret-token" not in text


def test_settings_are_immutable() -> None:
    settings = load_settings(MINIMAL)

    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_unknown_keyword_arguments_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings(project="p", prot=1)  # type: ignore[call-arg]
