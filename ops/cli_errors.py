"""The CLI's backstop for errors a command did not turn into a message itself.

An error raised inside an anyio task group reaches the caller wrapped in a `BaseExceptionGroup` (nested once
per task group it crossed), so `except CascadeError` misses it and the user gets a traceback. `main` asks
`single_error` for the one error inside and prints it like any other: `cascade COMMAND: message`.
"""

from __future__ import annotations

import sys

from adapters.errors import CascadeError, ConfigurationError
from ops.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE
from policies.loader import PolicyError

KNOWN = (CascadeError, PolicyError)


def single_error(error: BaseException) -> BaseException | None:
    """The one cascade error inside `error` (groups unwrapped at any depth), or None if there is not
    exactly one error in all, or it is not one of ours (that stays a traceback: it is a bug)."""
    leaves = list(_leaves(error))
    if len(leaves) == 1 and isinstance(leaves[0], KNOWN):
        return leaves[0]
    return None


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def exit_code(error: BaseException) -> int:
    """2 when the fix is in the settings or the policy, 3 when a backend failed (worth retrying)."""
    return EXIT_USAGE if isinstance(error, (ConfigurationError, PolicyError)) else EXIT_UNAVAILABLE


def report(command: str, error: BaseException) -> int:
    print(f"cascade {command}: {error}", file=sys.stderr)
    return exit_code(error)
