"""`cascade completion SHELL`: the shell completion script, generated from the parser itself (shtab), so it
never lags behind the commands. Printed, not installed: where it goes is the user's shell's business."""

from __future__ import annotations

import argparse
from collections.abc import Callable

SHELLS = ("bash", "zsh", "tcsh")

EPILOG = """\
install, e.g.:
  bash  cascade completion bash > ~/.local/share/bash-completion/completions/cascade
  zsh   cascade completion zsh > "${fpath[1]}/_cascade"
  tcsh  cascade completion tcsh > ~/.cascade.csh  (and `source ~/.cascade.csh` in ~/.tcshrc)"""


def add_completion_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    root: Callable[[], argparse.ArgumentParser],
) -> None:
    """`root` builds the whole parser: the script describes every command, including this one."""
    comp = commands.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or tcsh",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    comp.set_defaults(handler=lambda args: print_completion(root(), args.shell))


def print_completion(parser: argparse.ArgumentParser, shell: str) -> int:
    import shtab  # only for this command

    print(shtab.complete(parser, shell=shell))
    return 0
