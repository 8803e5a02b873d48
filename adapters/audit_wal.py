"""The audit sink's write-ahead log: the in-memory buffer's copy on disk, so a `kill -9` loses no row.

See `adapters.bigquery_audit` (module docstring, "The write-ahead log") for where a row can be and the
trade-off (no fsync: a killed process loses nothing, a power loss may lose the unflushed tail).
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.bigquery_schema import InvalidAuditRow, bigquery_rows, canonical_json

log = logging.getLogger("cascade.audit.bigquery")


def spool_line(table: str, row: Mapping[str, Any]) -> bytes:
    """One table row as the spool keeps it."""
    return (canonical_json({"table": table, "row": row}) + "\n").encode()


@dataclass
class _Segment:
    path: Path
    rows: int = 0  # table rows, as in the buffer (an audit row is one or two)
    last_seq: int = 0  # the newest table row in it; the buffer is ordered by seq


class WriteAheadLog:
    """The buffer's copy on disk, in segments `<spool>.wal.N`: append-only, never fsync'd (see module doc).

    In a delivery's `write()` only `append` runs (one write syscall). Segments are started (`rotate`) before
    a send and after a spill, and dropped (`release`) once their rows are settled: on the flusher's side,
    or in a `write()` that spills (which fsyncs the spool anyway).
    """

    def __init__(self, spool_path: Path) -> None:
        self._spool_path = spool_path
        self._segments: deque[_Segment] = deque()  # oldest first; the last one is open while `_fd` is set
        self._fd: int | None = None
        self._numbered = 0

    def append(self, audit_rows: Sequence[str], table_rows: int, last_seq: int) -> None:
        """One write syscall for one `write()` call's audit rows (canonical JSON each); no fsync."""
        try:
            if self._fd is None:
                self._start_segment()
            assert self._fd is not None
            _write_all(self._fd, ("\n".join(audit_rows) + "\n").encode())
        except OSError:  # never let the audit log stop routing: these rows are only in memory now
            log.exception("audit WAL %s not writable; %d rows not crash-safe", self._spool_path, table_rows)
            self._close_fd()  # the next append starts a fresh segment
            return
        segment = self._segments[-1]
        segment.rows += table_rows
        segment.last_seq = last_seq

    def rotate(self) -> None:
        """Later rows go to a new segment, so the rows so far can be released together once settled."""
        if self._fd is not None and self._segments[-1].rows:
            self._start_segment()

    def release(self, oldest_buffered_seq: int | None) -> None:
        """Drop every segment none of whose rows is still buffered (None: the buffer is empty). The open
        segment is emptied in place rather than deleted, so a quiet router creates no file per send."""
        while self._segments and (
            oldest_buffered_seq is None or self._segments[0].last_seq < oldest_buffered_seq
        ):
            if self._fd is not None and len(self._segments) == 1:
                if self._segments[0].rows:
                    os.ftruncate(self._fd, 0)  # O_APPEND: the next write lands at the new end
                    self._segments[0] = _Segment(self._segments[0].path)
                return
            self._segments.popleft().path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the open segment, and delete it if it holds nothing (segments with rows stay for the next
        process: closed without a flush, rows are still buffered)."""
        self._close_fd()
        if self._segments and not self._segments[-1].rows:
            self._segments.pop().path.unlink(missing_ok=True)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _start_segment(self) -> None:
        self._close_fd()
        self._numbered += 1
        path = self._spool_path.with_name(f"{self._spool_path.name}.wal.{self._numbered}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._segments.append(_Segment(path))


def _wal_segments(spool_path: Path) -> list[Path]:
    """The WAL segments next to `spool_path`, oldest first."""
    prefix = spool_path.name + ".wal."
    try:
        names = [n for n in os.listdir(spool_path.parent) if n.startswith(prefix)]
    except FileNotFoundError:
        return []
    numbered = [(int(n[len(prefix) :]), n) for n in names if n[len(prefix) :].isdigit()]
    return [spool_path.with_name(name) for _, name in sorted(numbered)]


def move_wal_into_spool(spool_path: Path) -> None:
    """Append what a previous process's WAL holds to the spool (fsync'd), then delete the segments.

    Each audit row is mapped to its table rows again (`bigquery_rows` is deterministic: same rows, same
    `insert_id`). A line that does not map (a torn last line: killed mid-write) is copied as it is, and the
    spool's reader rejects it as unreadable. Killed between appending and deleting, the next start appends
    the segments again: duplicates, removable by `insert_id`.
    """
    segments = _wal_segments(spool_path)
    if not segments:
        return
    with spool_path.open("ab") as spool:
        for segment in segments:
            with segment.open("rb") as lines:
                spool.writelines(_spool_lines(line) for line in lines if line.strip())
        spool.flush()
        os.fsync(spool.fileno())
    for segment in segments:
        segment.unlink()
    log.warning("audit: moved the WAL of a previous process (%d segments) into %s", len(segments), spool_path)


def _spool_lines(wal_line: bytes) -> bytes:
    try:
        mapped = bigquery_rows(json.loads(wal_line))
    except (ValueError, TypeError, AttributeError, InvalidAuditRow):  # torn, or JSON but not a row
        return wal_line if wal_line.endswith(b"\n") else wal_line + b"\n"
    return b"".join(spool_line(table, row) for table, row in mapped)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # one call unless the kernel writes short (disk full, a signal)
        view = view[os.write(fd, view) :]
