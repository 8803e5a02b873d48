"""Checking where a command will write before it does the work: a typo in `--out` should cost a second, not
a whole replay followed by a traceback."""

from __future__ import annotations

import os
from pathlib import Path


def output_problem(path: Path) -> str | None:
    """Why `path` cannot be written (as `PATH: problem`), or None if it looks writable."""
    parent = path.parent
    if path.is_dir():
        return f"{path}: is a directory"
    if not parent.exists():
        return f"{path}: directory {parent} does not exist"
    if not parent.is_dir():
        return f"{path}: {parent} is not a directory"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path}: not writable"
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"{path}: directory {parent} is not writable"
    return None
