"""The BigQuery audit sink: batched streaming inserts that never block routing and never lose a row.

`write()` maps audit rows to table rows (`adapters.bigquery_schema`) and appends them to a bounded in-memory
buffer; it never awaits BigQuery. `run()` (one long-lived task) sends with `tabledata.insertAll` and a
deterministic `insertId` per row: each full batch (`batch_rows`) as soon as it fills, and a partial batch only
once `flush_interval_s` has passed since its oldest row was written (`adapters.batching.due_in_s`). So under
steady load every request carries a full batch, a quiet router still sends within the interval, and
`flush()` (shutdown) sends everything. Never per-row load jobs: they once exhausted the old system's load-job
quota and blocked the pipeline.

Where a row can be at any moment, oldest first: the spool file, then the buffer (mirrored in the WAL). Order
is kept by always sending the spool before the buffer, and by only ever moving rows from the head of the
buffer to the end of the spool:

- a batch that fails transiently (connection error, timeout, 429, 5xx) is appended to the spool (JSONL,
  fsync'd) and the flusher backs off; the next successful contact resends the spool first, in order, then
  truncates it. A sink started on an existing spool (after a crash) resends it too.
- when the buffer exceeds `max_buffer_rows` (a long outage), its oldest rows are spilled to the spool.
- rows BigQuery refuses (`insertErrors` with `skipInvalidRows`, or rows we can see are unstorable before
  sending) go to `<spool>.rejected` with the error, and the run continues. A 400/413/500 for a whole request
  is ambiguous (bqemulator answers 500 for a row it cannot convert; BigQuery answers 400/413 for an oversized
  request): if `tables.get` then succeeds, BigQuery is up and the request itself is the problem, so the batch
  is bisected down to the row(s) it refuses; otherwise it is an outage and the batch is spooled.

The write-ahead log (WAL) keeps the buffer through a `kill -9`: `write()` also appends its audit rows to the
current segment `<spool>.wal.N`, one line each (the canonical JSON that `bigquery_rows` already made for the
`payload` column, so the WAL costs no encoding), with ONE plain `write` syscall and no fsync. The trade-off:
a killed process (SIGKILL, OOM kill, a crash) loses nothing, since its written bytes are in the OS page cache
and the kernel writes them out anyway; a power loss or kernel crash can lose what was not written back yet
(the kernel's writeback delay, ~30 s by default), at worst the rows that were buffered, as without the WAL.
An fsync per call would make every delivery wait for the disk. A new segment starts before each send of a
batch and after each spill; a segment is deleted once none of its rows is still in the buffer (each was
sent, rejected or spooled, the spool being durable first), so the WAL holds the buffered rows plus at most
about one batch of settled ones (a spill in an outage: the buffer's size), and nothing once the buffer is
empty (a flush always empties it). At start, segments left
by a process that died are mapped to table rows, appended to the spool (in order, after what it holds,
fsync'd) and deleted, so they are resent first like any spooled row; a torn last line (killed mid-write)
becomes an unreadable spool line, rejected at resend.

Rows can be sent twice: a resend after a crash between "sent" and "spool truncated", and a WAL row recovered
after it was sent or spooled (a segment outlives its first settled rows). The `insertId` (and the
`insert_id` column) make those removable: `adapters.bigquery_history` keeps one row per `insert_id`. One
spool path belongs to one process: a second sink on it would take the first one's WAL as leftovers.

Counters (rows here are table rows, so a decision counts twice): `buffered`, `spool_pending` (gauges),
`spooled_rows`, `sent_rows`, `rejected_rows` (totals).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import anyio
from gcloud.aio.bigquery import Table

from adapters.audit_wal import WriteAheadLog, move_wal_into_spool, spool_line
from adapters.batching import due_in_s
from adapters.bigquery_http import describe, gcloud_session
from adapters.bigquery_schema import InvalidAuditRow, bigquery_rows, canonical_json
from adapters.durable_file import append_durably, end_with_newline
from adapters.ports import AuditRow

log = logging.getLogger("cascade.audit.bigquery")

# Whole-request answers that may mean "this request is bad" rather than "BigQuery is down" (see module doc).
_MAYBE_BAD_REQUEST = frozenset({400, 413, 500})


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int  # write order; only rows taken from the buffer have one (spooled rows: 0)
    table: str
    row: Mapping[str, Any]
    buffered_at: float = 0.0  # when write() buffered it (`now_s` clock); spooled rows: 0

    @property
    def insert_id(self) -> str:
        return str(self.row["insert_id"])

    def spool_line(self) -> bytes:
        return spool_line(self.table, self.row)


@dataclass
class _Outcome:
    sent: list[_Row] = field(default_factory=list)
    rejected: list[tuple[_Row, str]] = field(default_factory=list)
    unsent: list[_Row] = field(default_factory=list)  # a suffix (per table) left by a transient failure

    def extend(self, other: _Outcome) -> None:
        self.sent += other.sent
        self.rejected += other.rejected
        self.unsent += other.unsent


class BigQueryAuditSink:
    """`AuditSink` on BigQuery streaming inserts, with a local spool for outages (see module doc)."""

    def __init__(
        self,
        project: str,
        dataset: str,
        spool_path: Path,
        batch_rows: int = 500,
        flush_interval_s: float = 2.0,
        max_buffer_rows: int = 50_000,
        session: aiohttp.ClientSession | None = None,
        api_root: str | None = None,
        *,
        request_timeout_s: int = 10,
        max_backoff_s: float = 60.0,
        now_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_rows < 1 or max_buffer_rows < batch_rows:
            raise ValueError("need 1 <= batch_rows <= max_buffer_rows")
        self._project, self._dataset, self._api_root = project, dataset, api_root
        self._spool_path = spool_path
        self.rejected_path = spool_path.with_name(spool_path.name + ".rejected")
        self._batch_rows, self._max_buffer_rows = batch_rows, max_buffer_rows
        self._flush_interval_s, self._max_backoff_s = flush_interval_s, max_backoff_s
        self._request_timeout_s = request_timeout_s
        self._flush_deadline: float | None = None  # monotonic; a flush's requests must end before it
        self._now_s = now_s  # ages the buffer's oldest row (injected by tests)
        self._session, self._owns_session = session, session is None
        self._tables: dict[str, Table] = {}
        self._buffer: deque[_Row] = deque()
        self._seq = 0
        self._send_lock = asyncio.Lock()  # one sender at a time (run() and flush()), so order holds
        self._wakeup = asyncio.Event()
        self.spooled_rows = 0
        self.sent_rows = 0
        self.rejected_rows = 0
        end_with_newline(spool_path)  # a crash mid-append must not glue the next row onto a torn one
        move_wal_into_spool(spool_path)  # the buffer of a process that died: resent like spooled rows
        self.spool_pending = _count_lines(spool_path)  # left by a previous process: resent first
        self._wal = WriteAheadLog(spool_path)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- AuditSink ------------------------------------------------------------------------------------------

    async def write(self, rows: Sequence[AuditRow]) -> None:
        """Buffer `rows` and return; never awaits BigQuery (this coroutine never suspends)."""
        was_empty = not self._buffer
        now = self._now_s()
        added: list[_Row] = []
        logged: list[str] = []
        for audit_row in rows:
            try:
                mapped = bigquery_rows(audit_row)
            except InvalidAuditRow as exc:
                self._reject([(_Row(0, "-", {"audit_row": dict(audit_row)}), str(exc))])
                continue
            logged.append(mapped[0][1]["payload"])  # orchestration_events': the audit row, already encoded
            for table, row in mapped:
                self._seq += 1
                added.append(_Row(self._seq, table, row, now))
        self._buffer.extend(added)
        if added:  # before any spill below: that may release segments
            self._wal.append(logged, table_rows=len(added), last_seq=added[-1].seq)
        if len(self._buffer) > self._max_buffer_rows:
            self._spill_oldest()
        if (was_empty and self._buffer) or len(self._buffer) >= self._batch_rows or self.spool_pending:
            self._wakeup.set()  # a new oldest row (its interval starts now), a full batch, or spooled rows

    async def flush(self, budget_s: float | None = None) -> None:
        """Send everything now (shutdown); whatever BigQuery does not take is spooled, never dropped.

        Within `budget_s` (None: no limit of its own): each request's timeout is cut to what is left of it,
        and when it runs out — or the caller cancels the flush — every row not confirmed sent is appended to
        the spool (fsync'd) before the flush returns or the cancellation propagates. A request cut short may
        have been stored after all: its rows are spooled too and resent later (the `insertId` marks such
        duplicates). Call it after `run()` has been cancelled.
        """
        deadline = None if budget_s is None else time.monotonic() + budget_s
        self._flush_deadline = deadline
        ok = False
        try:
            with anyio.move_on_after(math.inf if budget_s is None else budget_s) as scope:
                ok = await self._send_pending(final=True)
        finally:
            self._flush_deadline = None
            if self._buffer:  # cancelled or out of time mid-send: nothing confirmed stays only in memory
                self._spill(len(self._buffer))
            self._wal.close()  # shutdown leaves no WAL behind, unless the spool was not writable
        if scope.cancelled_caught:
            log.warning(
                "audit flush: out of its %.1f s budget, %d rows kept in %s",
                budget_s,
                self.spool_pending,
                self._spool_path,
            )
        elif not ok:
            log.warning(
                "audit flush: BigQuery unavailable, %d rows kept in %s", self.spool_pending, self._spool_path
            )

    async def run(self) -> None:
        """The background flusher; runs until cancelled (then call `flush()` and `close()`)."""
        backoff_s = 0.0
        while True:
            if backoff_s:
                await asyncio.sleep(backoff_s)  # not woken by writes: an outage must not mean a retry storm
            else:
                await self._until_due()
            if await self._send_pending(final=False):
                backoff_s = 0.0
            else:
                backoff_s = min(self._max_backoff_s, max(self._flush_interval_s, backoff_s * 2))

    async def _until_due(self) -> None:
        """Until the spool holds rows, a batch is full, or the oldest buffered row has waited the interval."""
        while True:
            self._wakeup.clear()
            wait_s = self._due_in_s()
            if wait_s == 0.0:
                return
            with contextlib.suppress(TimeoutError):  # None: nothing buffered, only a write wakes us
                await asyncio.wait_for(self._wakeup.wait(), wait_s)

    def _due_in_s(self) -> float | None:
        if self.spool_pending:  # older than anything buffered, and left by an outage or a crash: now
            return 0.0
        oldest_at = self._buffer[0].buffered_at if self._buffer else None
        return due_in_s(len(self._buffer), oldest_at, self._now_s(), self._batch_rows, self._flush_interval_s)

    async def close(self) -> None:
        self._wal.close()  # its segments stay only if rows are still buffered (close without flush)
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None
        self._tables.clear()

    # -- Sending --------------------------------------------------------------------------------------------

    async def _send_pending(self, *, final: bool) -> bool:
        """Spool first, then the buffer's due batches (`final`: all). False after a transient failure."""
        async with self._send_lock:
            ok = True
            while ok and (self.spool_pending or self._buffer_due(final)):
                # The spool holds the oldest rows, also when write() spilled some during the last send.
                ok = await (self._drain_spool() if self.spool_pending else self._send_buffer_head())
            if not ok and final:
                self._spill(len(self._buffer))
            return ok

    def _buffer_due(self, final: bool) -> bool:
        # A partial batch waits for its interval; the last one sent by run() may be partial, flush()'s too.
        return bool(self._buffer) and (final or self._due_in_s() == 0.0)

    async def _send_buffer_head(self) -> bool:
        self._wal.rotate()  # rows written during the send go to a new segment: this one can go after it
        batch = [self._buffer[i] for i in range(min(self._batch_rows, len(self._buffer)))]
        outcome = await self._send(batch)
        # While we awaited, write() may have spilled some of these rows to the spool already (buffer full);
        # only the ones still at the head of the buffer are ours to settle. Spilled ones get resent later.
        still_here: set[int] = set()
        while self._buffer and self._buffer[0].seq <= batch[-1].seq:
            still_here.add(self._buffer.popleft().seq)
        self.sent_rows += len(outcome.sent)
        self._reject(outcome.rejected)
        self._append_spool([r for r in outcome.unsent if r.seq in still_here])
        self._release_wal()
        return not outcome.unsent

    async def _drain_spool(self) -> bool:
        try:
            spool = self._spool_path.open("rb")
        except FileNotFoundError:  # removed by hand: nothing left to resend
            self.spool_pending = 0
            return True
        with spool:
            while batch := self._read_spool_batch(spool):
                outcome = await self._send(batch)
                self.sent_rows += len(outcome.sent)
                self._reject(outcome.rejected)
                if outcome.unsent:
                    self._rewrite_spool(outcome.unsent, spool)
                    return False
            # EOF and no await since the last read: nothing can have been appended; the spool is all sent.
            self._truncate_spool()
        return True

    def _read_spool_batch(self, spool: BinaryIO) -> list[_Row]:
        batch: list[_Row] = []
        while len(batch) < self._batch_rows and (line := spool.readline()):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                batch.append(_Row(0, str(entry["table"]), dict(entry["row"])))
            except (ValueError, KeyError, TypeError) as exc:  # a torn line from a crash mid-write
                text = line.decode(errors="replace")
                self._reject([(_Row(0, "-", {"spool_line": text}), f"unreadable spool line: {exc}")])
        return batch

    async def _send(self, batch: list[_Row]) -> _Outcome:
        """Send `batch` table by table (order kept within each table); stop at the first transient failure."""
        outcome = _Outcome()
        by_table: dict[str, list[_Row]] = {}
        for row in batch:
            by_table.setdefault(row.table, []).append(row)
        for table, rows in by_table.items():
            if outcome.unsent:
                outcome.unsent += rows
                continue
            outcome.extend(await self._send_rows(table, rows))
        return outcome

    async def _send_rows(self, table: str, rows: list[_Row], *, retry_stopped: bool = True) -> _Outcome:
        try:
            response = await self._table(table).insert(
                [dict(r.row) for r in rows],
                skip_invalid=True,  # valid rows go in; invalid ones come back in insertErrors
                ignore_unknown=False,  # an unknown field is an error to see, not a value to drop
                timeout=self._timeout_s(),
                insert_id_fn=lambda row: str(row["insert_id"]),
            )
        except Exception as exc:
            return await self._after_failure(table, rows, exc)
        errors: dict[int, list[Mapping[str, Any]]] = {}
        for item in response.get("insertErrors") or []:
            errors[int(item.get("index", -1))] = list(item.get("errors") or [])
        outcome = _Outcome()
        stopped: list[_Row] = []
        for index, row in enumerate(rows):
            row_errors = errors.get(index)
            if not row_errors:
                outcome.sent.append(row)
            elif all(e.get("reason") == "stopped" for e in row_errors):
                stopped.append(row)  # not inserted only because another row was invalid
            else:
                outcome.rejected.append((row, json.dumps(row_errors)))
        if stopped and retry_stopped:
            outcome.extend(await self._send_rows(table, stopped, retry_stopped=False))
        elif stopped:
            outcome.unsent += stopped
        return outcome

    async def _after_failure(self, table: str, rows: list[_Row], exc: Exception) -> _Outcome:
        status = exc.status if isinstance(exc, aiohttp.ClientResponseError) else None
        if status in _MAYBE_BAD_REQUEST and await self._reachable(table):
            if len(rows) == 1:
                return _Outcome(rejected=[(rows[0], f"HTTP {status}: {exc}")])
            middle = len(rows) // 2
            outcome = await self._send_rows(table, rows[:middle])
            if outcome.unsent:
                outcome.unsent += rows[middle:]
            else:
                outcome.extend(await self._send_rows(table, rows[middle:]))
            return outcome
        if not isinstance(exc, aiohttp.ClientError | TimeoutError):
            log.exception("audit insert into %s failed unexpectedly; rows kept", table, exc_info=exc)
        else:
            log.warning("audit insert into %s failed (%s); %d rows kept", table, describe(exc), len(rows))
        return _Outcome(unsent=list(rows))

    def _timeout_s(self) -> int:
        """A request's timeout: the configured one, cut to what is left of a flush's budget (whole seconds,
        as gcloud-aio takes them; at least 1: the budget's own deadline cancels the rest)."""
        if self._flush_deadline is None:
            return self._request_timeout_s
        left_s = self._flush_deadline - time.monotonic()
        return max(1, min(self._request_timeout_s, int(left_s)))

    async def _reachable(self, table: str) -> bool:
        """Is BigQuery answering normal requests (so a failed insert is about the rows)?"""
        for _attempt in range(2):  # a 500 can leave a dead keep-alive connection: one fresh try
            try:
                await self._table(table).get(timeout=self._timeout_s())
                return True
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                continue
            except (aiohttp.ClientError, TimeoutError):
                return False
        return False

    def _table(self, name: str) -> Table:
        if name not in self._tables:
            if self._session is None:  # created lazily: aiohttp wants a running loop
                self._session = aiohttp.ClientSession()
            self._tables[name] = Table(
                self._dataset,
                name,
                project=self._project,
                session=gcloud_session(self._session),
                api_root=self._api_root,
            )
        return self._tables[name]

    # -- Spool and rejects (synchronous: local, small, and never interleaved with another writer) ----------

    def _spill_oldest(self) -> None:
        # At least a batch at a time, so a long outage costs one fsync per batch, not per row.
        self._spill(max(len(self._buffer) - self._max_buffer_rows, self._batch_rows))

    def _spill(self, count: int) -> None:
        rows = [self._buffer.popleft() for _ in range(min(count, len(self._buffer)))]
        try:
            self._append_spool(rows)
        except OSError:
            log.exception("audit spool %s not writable; %d rows stay in memory", self._spool_path, len(rows))
            self._buffer.extendleft(reversed(rows))
            return
        self._wal.rotate()  # in an outage no send rotates: without this one segment would grow for ever
        self._release_wal()

    def _release_wal(self) -> None:
        """Called after rows left the head of the buffer, once they are sent, rejected or durably spooled."""
        self._wal.release(self._buffer[0].seq if self._buffer else None)

    def _append_spool(self, rows: Iterable[_Row]) -> None:
        data = b"".join(r.spool_line() for r in rows)
        if not data:
            return
        count = data.count(b"\n")
        append_durably(self._spool_path, data)
        self.spooled_rows += count
        self.spool_pending += count

    def _rewrite_spool(self, unsent: list[_Row], spool: BinaryIO) -> None:
        """Spool := the unsent rows of the current batch + everything not read yet, atomically."""
        tmp = self._spool_path.with_name(self._spool_path.name + ".tmp")
        with tmp.open("wb") as out:
            out.write(b"".join(r.spool_line() for r in unsent))
            while chunk := spool.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._spool_path)
        self.spool_pending = _count_lines(self._spool_path)

    def _truncate_spool(self) -> None:
        with self._spool_path.open("wb") as spool:
            os.fsync(spool.fileno())
        self.spool_pending = 0

    def _reject(self, rejected: list[tuple[_Row, str]]) -> None:
        if not rejected:
            return
        at = datetime.now(UTC).isoformat()
        lines = [
            canonical_json({"rejected_at": at, "table": r.table, "row": r.row, "error": error}) + "\n"
            for r, error in rejected
        ]
        log.error("audit: %d rows rejected, kept in %s: %s", len(lines), self.rejected_path, rejected[0][1])
        self.rejected_rows += len(lines)
        try:
            append_durably(self.rejected_path, "".join(lines).encode())
        except OSError:  # never let the audit log stop routing: the log line is the last copy
            log.exception(
                "audit: rejected file %s not writable; rejected rows: %s", self.rejected_path, lines
            )


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as spool:
            return sum(1 for line in spool if line.strip())
    except FileNotFoundError:
        return 0
