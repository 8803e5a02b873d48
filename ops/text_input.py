"""Opening the text files a command reads (recordings, timelines, policies): one implementation for all.

A path may be `-` (standard input) or gzip-compressed under any name: gzip is recognised by its magic bytes,
because a recording copied as `day.jsonl` from `day.jsonl.gz` is still gzip. Text is UTF-8; a byte-order
mark at the start (Windows editors write one) is dropped. Every failure is an `InputError` whose message
is `FILE: problem`, the format every cascade command prints.
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
BOM = "\ufeff"


class InputError(ValueError):
    """A file could not be read as text; the message is `FILE: problem`."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


@contextmanager
def open_lines(path: Path, gunzip: bool = True) -> Iterator[Iterator[str]]:
    """The lines of `path` (or of stdin for `-`) as text, BOM dropped; `InputError` for any read failure.

    `gunzip`: decompress gzip content (recordings, timelines); off, gzip is just bytes that are not UTF-8."""
    name = str(path)
    with _binary(path) as raw:
        yield _decoded(_lines_of(_gunzipped(raw) if gunzip else raw, name), name)


def read_text(path: Path) -> str:
    """The whole of a (small) plain-text file, BOM dropped: the policy file (a file people edit, so a
    compressed one is a mistake to report, not to unpack)."""
    with open_lines(path, gunzip=False) as lines:
        return "".join(lines)


@contextmanager
def _binary(path: Path) -> Iterator[IO[bytes]]:
    if str(path) == "-":
        yield _stdin_bytes()
        return
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError(str(path), f"cannot read ({exc.strerror or exc})") from exc
    with raw:
        yield raw


def _stdin_bytes() -> IO[bytes]:
    buffer: IO[bytes] | None = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # stdin replaced by a text-only stream (an embedding program, a test)
        return io.BytesIO(sys.stdin.read().encode("utf-8"))
    return buffer


def _gunzipped(raw: IO[bytes]) -> IO[bytes]:
    peek = getattr(raw, "peek", None)
    head = peek(2)[:2] if peek is not None else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _lines_of(raw: IO[bytes], name: str) -> Iterator[bytes]:
    """The raw lines; a truncated or corrupt gzip stream becomes an `InputError`."""
    try:
        yield from raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(name, f"not a readable gzip file ({exc or 'truncated'})") from exc
    except OSError as exc:
        raise InputError(name, f"cannot read ({exc.strerror or exc})") from exc


def _decoded(lines: Iterator[bytes], name: str) -> Iterator[str]:
    """Decoded line by line, so a bad byte is reported with the line that holds it."""
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = line[exc.start]
            where = f"byte 0x{byte:02x} at line {number}, column {exc.start + 1}"
            raise InputError(name, f"not UTF-8 text ({where})") from exc
        yield text[1:] if number == 1 and text.startswith(BOM) else text
