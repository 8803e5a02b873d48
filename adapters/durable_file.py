"""Appending to a local file so that what was appended survives a crash: the audit spool and the outage
journal (`adapters.bigquery_audit`, `adapters.journal`)."""

from __future__ import annotations

import os
from pathlib import Path


def append_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def end_with_newline(path: Path) -> None:
    """After a crash mid-append the last line may be torn: end it, so the next append starts a line."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            if file.tell() == 0:
                return
            file.seek(-1, os.SEEK_END)
            torn = file.read(1) != b"\n"
    except FileNotFoundError:
        return
    if torn:
        append_durably(path, b"\n")
