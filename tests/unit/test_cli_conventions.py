"""What every `cascade` command shares: log lines that respect --quiet, one line and an exit code for an error
raised inside a task group, --version, help on every argument, --json summaries, shell completion."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from adapters.errors import ConfigurationError, PublishError
from ops import cli_errors, version
from ops.cli import build_parser, main
from ops.exit_codes import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.policy_file import load_policy
from policies.loader import PolicyError, Problem

EXAMPLES = Path(__file__).parents[2] / "examples"
RECORDING = EXAMPLES / "overnight_full_cascade.jsonl"
ALERTING = EXAMPLES / "critical_never_reports.jsonl"  # warning, error and critical alerts
ROOT = Path(__file__).parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def cascade(*argv: str) -> subprocess.CompletedProcess[str]:
    """A real process: how logging is configured only shows outside pytest's own log capture."""
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv], capture_output=True, text=True, cwd=ROOT, timeout=50
    )


# --- 5. log lines ---------------------------------------------------------------------------------------


def test_replay_quiet_prints_the_summary_and_no_log_line() -> None:
    done = cascade("replay", str(ALERTING), "--quiet")

    assert done.returncode == EXIT_OK
    assert done.stdout.splitlines()[0].startswith("replayed ")
    assert done.stderr == ""


def test_replay_logs_only_the_alerts_at_error_and_above_the_timeline_has_the_rest() -> None:
    done = cascade("replay", str(ALERTING))

    assert done.returncode == EXIT_OK
    assert done.stderr.splitlines()[0].startswith("alert fallback_deadline_missed: ")
    assert "manual_intervention_required" in done.stderr
    assert "alert slo_at_risk" not in done.stderr  # a WARNING: in the printed timeline only
    assert "slo_at_risk" in done.stdout


# --- 6. an error inside a task group ------------------------------------------------------------------


def raising_in_a_task_group(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        async def fail() -> None:
            raise error

        async def body() -> int:
            async with anyio.create_task_group() as outer:
                async with anyio.create_task_group() as inner:  # nested: a group inside a group
                    inner.start_soon(fail)
                outer.start_soon(anyio.sleep, 0)
            return 0

        return anyio.run(body)

    return handler


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            ConfigurationError("CASCADE_PROJECT is not set"),
            EXIT_USAGE,
            "cascade run: CASCADE_PROJECT is not set",
        ),
        (
            PolicyError("p.yaml", [Problem(3, "breaker", "bad")]),
            EXIT_USAGE,
            "cascade run: p.yaml:3: breaker: bad",
        ),
        (PublishError("Pub/Sub refused"), EXIT_UNAVAILABLE, "cascade run: Pub/Sub refused"),
    ],
    ids=["configuration", "policy", "publish"],
)
def test_an_error_raised_in_a_task_group_is_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    code: int,
    line: str,
) -> None:
    monkeypatch.setattr("ops.run_cmd.run_command", raising_in_a_task_group(error))

    assert run(capsys, "run") == (code, "", line + "\n")


def test_run_logs_an_error_from_its_task_group_as_one_json_line_with_its_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon's own handler, not main's backstop: `run` logs in JSON (Cloud Logging reads stdout).
    async def daemon_run(settings: object) -> int:
        async def fail() -> None:
            raise ConfigurationError("subscription cascade-x was deleted")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(fail)
        return 0

    monkeypatch.setattr("ops.daemon.run", daemon_run)
    for name in ("PUBSUB", "FIRESTORE", "BIGQUERY"):  # on the emulators: no credentials needed
        monkeypatch.setenv(f"{name}_EMULATOR_HOST", "localhost:1")
    monkeypatch.setenv("CASCADE_PROJECT", "p")

    code = main(["run"])

    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == EXIT_USAGE
    assert [(r["severity"], r["message"]) for r in logged] == [
        ("CRITICAL", "cascade run: subscription cascade-x was deleted")
    ]


def test_a_group_of_two_errors_or_a_bug_is_not_hidden() -> None:
    two = BaseExceptionGroup("two", [ConfigurationError("a"), PublishError("b")])
    bug = ExceptionGroup("bug", [ExceptionGroup("inner", [KeyError("x")])])

    assert cli_errors.single_error(two) is None
    assert cli_errors.single_error(bug) is None


def test_a_bug_inside_a_task_group_stays_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ops.run_cmd.run_command", raising_in_a_task_group(KeyError("bug")))

    with pytest.raises(BaseExceptionGroup):
        main(["run"])


# --- 7. --version ---------------------------------------------------------------------------------------


def test_version_prints_the_installed_distributions_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import packages_distributions
    from importlib.metadata import version as metadata_version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    expected = metadata_version(packages_distributions()["ops"][0])
    assert capsys.readouterr().out == f"cascade {expected}\n"


def test_version_follows_a_renamed_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"cascade-router": "2.0.0"}

    def fake_version(name: str) -> str:
        if name not in versions:
            raise version.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(version, "version", fake_version)
    monkeypatch.setattr(version, "packages_distributions", lambda: {"ops": ["cascade-router"]})
    assert version.installed_version() == "2.0.0"
    monkeypatch.setattr(version, "packages_distributions", lambda: {})
    assert version.installed_version() == "unknown (not installed as a distribution)"


# --- 8. help on everything ----------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_every_argument_has_help() -> None:
    parser = build_parser()
    commands = subcommands(parser)
    listed = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))._choices_actions
    missing = [f"{c.dest} (the command)" for c in listed if not c.help]
    for name, command in commands.items():
        missing += [f"{name} {a.dest}" for a in command._actions if not a.help or a.help == argparse.SUPPRESS]
    missing += [f"cascade {a.dest}" for a in parser._actions if not a.help]

    assert len(listed) == len(commands) >= 9
    assert missing == []


@pytest.mark.parametrize("name", ["replay", "check-policy", "publish", "run", "provision"])
def test_the_help_of_each_command_that_reads_input_or_backends_lists_its_exit_codes(name: str) -> None:
    command = subcommands(build_parser())[name]
    text = command.format_help()

    assert command.description
    assert "exit codes:\n  0  " in text and "\n  2  " in text


# --- 9. --json --------------------------------------------------------------------------------------------


def test_replay_json_is_one_object_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tl.jsonl"

    code, printed, err = run(capsys, "replay", str(RECORDING), "--out", str(out), "--json")

    assert code == EXIT_OK and err == ""
    summary = json.loads(printed)
    assert (summary["events"], summary["deliveries"], summary["until"]) == (
        str(RECORDING),
        16,
        "2026-01-01T20:05:05Z",
    )
    assert summary["outcomes"] == {"routed": 16, "duplicate": 0, "dead_lettered": 0}
    assert summary["timeline"] == {"path": str(out), "records": len(out.read_text().splitlines())}
    assert summary["report"] is None
    triggered = [k for k in summary["keys"] if k["phase"] == "triggered"]
    assert len(triggered) == len(summary["keys"]) == 4
    assert triggered[0]["trigger"]["trigger_id"].startswith("trg-2025-12-30-phase2_to_phase3-")


def test_check_policy_json_says_ok_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "policies" / "nba.yaml"
    policy = load_policy(path)

    code, printed, _ = run(capsys, "check-policy", str(path), "--json")

    assert code == EXIT_OK
    assert json.loads(printed) == {
        "file": str(path),
        "ok": True,
        "transitions": len(policy.transitions),
        "processors": len(policy.processors),
    }


# --- 10. shell completion -----------------------------------------------------------------------------


def test_the_bash_completion_script_knows_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, script, _ = run(capsys, "completion", "bash")

    assert code == EXIT_OK
    assert "complete -o bashdefault -F _shtab_cascade cascade" in script
    for name in subcommands(build_parser()):
        assert name in script


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_zsh_and_tcsh_scripts_are_printed(capsys: pytest.CaptureFixture[str], shell: str) -> None:
    code, script, _ = run(capsys, "completion", shell)

    assert code == EXIT_OK
    assert "check-policy" in script
