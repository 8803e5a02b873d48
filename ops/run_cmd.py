"""`cascade run`: the always-on router, configured by the environment (ops/settings.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import anyio

from ops.exit_codes import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.help_text import epilog, paragraph
from policies.loader import PolicyError

EXIT_CODES = {
    EXIT_OK: "stopped by SIGTERM or SIGINT, after the ordered shutdown",
    1: "a task crashed (the log says which); the ordered shutdown ran",
    EXIT_USAGE: "invalid settings or policy, no Google credentials, or missing Pub/Sub resources "
    "(run `cascade provision`)",
    EXIT_UNAVAILABLE: "a backend did not answer at start: worth retrying",
}


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="the always-on router (configured by the environment, see --help)",
        description=paragraph(
            "Route completion events from Pub/Sub to trigger topics, keeping shared state in Firestore and "
            "an audit log in BigQuery; serve /healthz, /readyz, /status, /metrics and the dashboard on "
            "PORT. Configured by the environment below. At start it checks for Google credentials (unless "
            "every service is on its emulator) and that every topic and subscription it needs exists."
        ),
        epilog=epilog(None, EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--policy", type=Path, help="policy file (overrides CASCADE_POLICY_PATH)")
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from adapters.credentials import credentials_problem
    from adapters.errors import CascadeError
    from ops import daemon
    from ops.cli_errors import exit_code, single_error
    from ops.logs import configure_logging
    from ops.settings import load_settings

    environ = dict(os.environ)
    if args.policy is not None:
        environ["CASCADE_POLICY_PATH"] = str(args.policy)
    try:
        settings = load_settings(environ)
    except CascadeError as exc:
        print(f"cascade run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if problem := credentials_problem(["Pub/Sub", "Firestore", "BigQuery"], environ):
        print(f"cascade run: {problem}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.project)
    try:
        return anyio.run(daemon.run, settings, backend_options={"use_uvloop": True})
    except (PolicyError, CascadeError, BaseExceptionGroup) as exc:
        # One of ours, also when a task group wrapped it: one JSON log line and its exit code. Anything
        # else is a bug and keeps its traceback.
        error = single_error(exc)
        if error is None:
            raise
        logging.getLogger("cascade").critical("cascade run: %s", error)
        return exit_code(error)
