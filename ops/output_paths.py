"""Checking where a command will write before it does the work: a typo in `--out` should cost a second, not
a whole replay followed by a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from ops.text_input import InputError


def check_writable(path: Path) -> None:
    """Return when `path` looks writable; else raise `InputError` (`PATH: problem`) saying why."""
    problem = _problem(path)
    if problem is not None:
        raise InputError(str(path), problem)


def _problem(path: Path) -> str | None:
    parent = path.parent
    if path.is_dir():
        return "is a directory"
    if not parent.exists():
        return f"directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.exists() and not os.access(path, os.W_OK):
        return "not writable"
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"directory {parent} is not writable"
    return None
