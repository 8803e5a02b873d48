"""The `cascade` command line: the parser, and what every command shares (logging, the error backstop)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from adapters.errors import CascadeError
from ops import cli_errors
from ops.check_policy_cmd import add_check_policy_command
from ops.completion_cmd import add_completion_command
from ops.logs import configure_cli_logging
from ops.provision_cmd import add_provision_command
from ops.publish_cmd import add_publish_command
from ops.replay_cmd import add_replay_command
from ops.run_cmd import add_run_command
from ops.version import VersionAction
from ops.views_cmd import add_view_commands
from policies.loader import PolicyError

QUIET = logging.CRITICAL + 1  # above every level: no log line at all


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_cli_logging(_log_level(args))  # `run` replaces this with its JSON logging
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # `cascade ... | head`: the reader left; not an error. Point stdout at devnull so the interpreter's
        # final flush does not raise again (the recipe in the Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CascadeError, PolicyError) as exc:
        # The backstop: a command that let one of our errors through still ends in one line and a code.
        return cli_errors.report(args.command, exc)
    except BaseExceptionGroup as group:  # raised inside a task group: unwrap, or it is a bug (traceback)
        error = cli_errors.single_error(group)
        if error is None:
            raise
        return cli_errors.report(args.command, error)


def _log_level(args: argparse.Namespace) -> int | str:
    if getattr(args, "quiet", False):
        return QUIET
    level: int | str = getattr(args, "cli_log_level", logging.WARNING)
    return level


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cascade", description="Event-driven phase router.")
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(
        required=True, metavar="COMMAND", dest="command", help="`cascade COMMAND --help` for its options"
    )
    add_replay_command(commands)
    add_run_command(commands)
    add_provision_command(commands)
    add_publish_command(commands)
    add_view_commands(commands)
    add_check_policy_command(commands)
    add_completion_command(commands, build_parser)
    return parser


if __name__ == "__main__":
    sys.exit(main())
