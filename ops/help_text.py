"""The epilog of `cascade run --help` and `cascade provision --help`: the environment and the exit codes.

The variables and their meanings come from `ops.settings` (each field's `description`), so the help cannot
drift from what is read.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping

from ops.settings import env_descriptions, env_names

WIDTH = 110
# Read by the Google client libraries, not by the settings.
CREDENTIALS = {
    "GOOGLE_APPLICATION_CREDENTIALS": "service account key file (else gcloud's application-default login, "
    "else the metadata server on Cloud Run / GCE)",
}


def epilog(fields: Iterable[str] | None, exit_codes: Mapping[int, str]) -> str:
    """`fields`: the settings fields the command reads (None: all of them)."""
    wanted = None if fields is None else {" or ".join(env_names()[field]) for field in fields}
    variables = {
        name: meaning for name, meaning in env_descriptions().items() if wanted is None or name in wanted
    }
    variables |= CREDENTIALS
    width = max(len(name) for name in variables)
    lines = ["environment:"] + [_entry(name, meaning, width) for name, meaning in variables.items()]
    lines += ["", "exit codes:"] + [_entry(str(code), meaning, 1) for code, meaning in exit_codes.items()]
    return "\n".join(lines)


def paragraph(text: str) -> str:
    """A description for `RawDescriptionHelpFormatter` (which keeps line breaks as written)."""
    return textwrap.fill(text, WIDTH)


def _entry(name: str, meaning: str, width: int) -> str:
    return textwrap.fill(
        meaning, WIDTH, initial_indent=f"  {name:<{width}}  ", subsequent_indent=" " * (width + 4)
    )
