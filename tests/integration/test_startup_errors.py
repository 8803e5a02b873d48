"""How `cascade run | provision | publish` fail before they can do anything: no credentials, or an emulator
variable pointing at a port where nothing listens. One sentence on stderr and an exit code, never a
traceback or a half-minute wait for a metadata server (each subprocess runs under a timeout)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ops.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE
from tests.support.cli_process import ROOT, critical_message
from tests.support.cli_process import cascade as run_cascade
from tests.support.emulators import HOST, free_port

EXAMPLE = ROOT / "examples" / "overnight_full_cascade.jsonl"
QUICK_S = 30  # well below the 37 s a metadata-server retry loop took; not a timing assertion


def cascade(argv: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    return run_cascade(argv, env, home, timeout_s=QUICK_S)


NO_CREDENTIALS = (
    "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS or run "
    "`gcloud auth application-default login`, or point {} at the emulator{}"
)


@pytest.mark.parametrize(
    ("argv", "variables"),
    [
        pytest.param(
            ["run"], "PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST", id="run"
        ),
        pytest.param(["provision"], "PUBSUB_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST", id="provision"),
        pytest.param(["publish", str(EXAMPLE), "--no-wait"], "PUBSUB_EMULATOR_HOST", id="publish"),
    ],
)
def test_without_credentials_the_command_exits_2_at_once_saying_how_to_get_them(
    argv: list[str], variables: str, tmp_path: Path
) -> None:
    result = cascade(argv, {"CASCADE_PROJECT": "no-creds"}, tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    plural = "s" if " and " in variables else ""
    assert result.stderr.splitlines()[0] == f"cascade {argv[0]}: " + NO_CREDENTIALS.format(variables, plural)


def test_run_with_every_emulator_on_a_closed_port_names_pubsub_and_its_address(tmp_path: Path) -> None:
    closed = f"{HOST}:{free_port()}"
    env = {
        "CASCADE_PROJECT": "closed",
        "PUBSUB_EMULATOR_HOST": closed,
        "FIRESTORE_EMULATOR_HOST": closed,
        "BIGQUERY_EMULATOR_HOST": closed,
        "PORT": str(free_port()),
        "CASCADE_AUDIT_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
    }
    result = cascade(["run"], env, tmp_path)
    assert result.returncode == EXIT_UNAVAILABLE, result.stdout + result.stderr
    message = critical_message(result.stdout)
    assert message.splitlines()[0] == f"cascade run: Pub/Sub at {closed} did not answer (connection refused)"


def test_provision_with_pubsub_on_a_closed_port_names_it_and_its_address(tmp_path: Path) -> None:
    closed = f"{HOST}:{free_port()}"
    env = {"CASCADE_PROJECT": "closed", "PUBSUB_EMULATOR_HOST": closed, "BIGQUERY_EMULATOR_HOST": closed}
    result = cascade(["provision"], env, tmp_path)
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"cascade provision: Pub/Sub at {closed} did not answer (connection refused)"
    )
