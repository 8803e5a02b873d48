"""`cascade run`: the always-on router, configured by the environment (ops/settings.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import anyio

from ops.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE
from policies.loader import PolicyError


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="the always-on router (configured by the environment, see README)")
    run.add_argument("--policy", type=Path, help="policy file (overrides CASCADE_POLICY_PATH)")
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from adapters.errors import CascadeError, ConfigurationError
    from ops import daemon
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
    configure_logging(settings.log_level, settings.project)
    try:
        return anyio.run(daemon.run, settings, backend_options={"use_uvloop": True})
    except (PolicyError, CascadeError) as exc:
        logging.getLogger("cascade").critical("cascade run: %s", exc)
        return EXIT_USAGE if isinstance(exc, (PolicyError, ConfigurationError)) else EXIT_UNAVAILABLE
