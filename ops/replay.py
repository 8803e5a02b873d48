"""`cascade replay`: the real engine over a recorded day, on in-memory adapters and a virtual clock.

Time only moves when the replay moves it: to each recorded delivery's `at`, and in between to every timer
that is due (re-checks, fallback and self-heal deadlines, breaker cooldowns, publish retries), so a day that
took 30 hours replays in milliseconds and every deadline fires exactly as it would have.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.clock import VirtualClock
from adapters.memory import MemoryAuditSink, MemoryPublisher, MemoryStateStore
from adapters.ports import AuditRow
from ops.day_watch import DayWatch
from ops.engine import Delivery, Engine, EngineConfig
from ops.expected_days import ExpectedDays
from policies.calendar import expected_game_days
from policies.model import Policy
from router.keys import Key
from router.state import DateState

DEFAULT_TAIL = timedelta(hours=36)
FREEZE_EVERY = 5_000  # deliveries between gc.freeze() calls (see _frozen_history)
PROGRESS_EVERY = 256  # deliveries between progress calls: the replay loop is hot, a call each is not free


class RecordedDelivery(BaseModel):
    """One line of a recorded day: a message as Pub/Sub delivered it, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    topic: str = Field(min_length=1)
    message_id: str = Field(min_length=1)
    attributes: dict[str, str] = {}
    data: dict[str, Any] | str

    @field_validator("at")
    @classmethod
    def _plain_utc(cls, value: datetime) -> datetime:
        # pydantic gives "...Z" its own TzInfo; every instant the replay derives from it (virtual now, timers,
        # deadlines compared with message timestamps) inherits it, and arithmetic or comparison across two
        # different tzinfo objects calls utcoffset() on both: 0.5-1 us each instead of 40-90 ns, dozens of
        # times per delivery. The same instant with the stdlib's UTC prints the same everywhere ("+00:00").
        # Other offsets are kept as written.
        if value.utcoffset() == timedelta(0):
            return value.replace(tzinfo=UTC)
        return value

    @cached_property
    def body(self) -> bytes:
        """The body as Pub/Sub delivers it: bytes. A string `data` is the raw body (maybe not JSON)."""
        if isinstance(self.data, str):
            return self.data.encode()
        return json.dumps(self.data).encode()


class RecordingError(ValueError):
    """The events file itself is unreadable; names the line."""


def read_recording(lines: Iterable[str], source: str = "<events>") -> list[RecordedDelivery]:
    with _gc_paused():
        deliveries = _parse_lines(lines, source)
    # Stable: deliveries recorded at the same instant keep their file order.
    return sorted(deliveries, key=lambda d: d.at)


def _parse_lines(lines: Iterable[str], source: str) -> list[RecordedDelivery]:
    deliveries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            delivery = RecordedDelivery.model_validate_json(line)
        except ValidationError as exc:
            raise RecordingError(_problem(exc, line, source, number)) from exc
        _ = delivery.body  # encode once while reading, as Pub/Sub would hand the router bytes
        deliveries.append(delivery)
    return deliveries


_JSON_AT = re.compile(r"^Invalid JSON: (?P<msg>.*) at line (?P<line>\d+) column (?P<col>\d+)$")


def _problem(exc: ValidationError, line: str, source: str, number: int) -> str:
    """`FILE:LINE: field: message; ...`, or `FILE:LINE:COL: invalid JSON: ...` when the line is not JSON.

    A recording line is one JSON document, so pydantic's "line 1 column C" is column C of line `number`;
    its "line 2 column 0" is the line's own newline (the document ended early): the end of the line.
    """
    errors = exc.errors(include_url=False)
    invalid = _JSON_AT.match(errors[0]["msg"]) if errors[0]["type"] == "json_invalid" else None
    if invalid is not None:
        column = int(invalid["col"]) if invalid["line"] == "1" else len(line.rstrip("\r\n")) + 1
        return f"{source}:{number}:{column}: invalid JSON: {invalid['msg']}"
    if errors[0]["type"] == "model_type":
        return f"{source}:{number}: expected a JSON object (a recorded delivery)"
    located = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors if e["loc"]]
    detail = "; ".join(located) or errors[0]["msg"]
    return f"{source}:{number}: {detail}"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading a recording only allocates what it keeps (a model, its dicts and body per line) and makes no
    reference cycles, yet the cyclic GC re-walks the whole growing list at each full collection: half of
    the parse time of a 10,000-date log. Paused while reading (if it was on), restored after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(repr=False)
class ReplayResult:
    rows: list[AuditRow]
    states: dict[Key, DateState]
    published: MemoryPublisher
    outcomes: dict[Delivery, int] = field(default_factory=dict)
    until: datetime | None = None

    def __repr__(self) -> str:
        # Short on purpose: a default repr of a 10,000-date result is hundreds of MB of text.
        return f"ReplayResult(rows={len(self.rows)}, states={len(self.states)}, until={self.until})"

    @property
    def timeline(self) -> list[AuditRow]:
        """Every audit row, in the order written: what `--out` writes and what the views read."""
        return self.rows

    def triggers(self) -> list[AuditRow]:
        return [row for row in self.rows if row["kind"] == "trigger"]

    def alerts(self) -> list[AuditRow]:
        return [row for row in self.rows if row["kind"] == "alert"]


async def replay(
    deliveries: list[RecordedDelivery],
    policy: Policy,
    until: datetime | None = None,
    publisher: MemoryPublisher | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """`progress(n)` (if given) hears every PROGRESS_EVERY deliveries how many were replayed."""
    if not deliveries and until is None:
        raise RecordingError("nothing to replay: the recording is empty and no --until was given")
    start = deliveries[0].at if deliveries else until
    assert start is not None
    end = until or (deliveries[-1].at + DEFAULT_TAIL)
    clock = VirtualClock(start)
    audit = MemoryAuditSink()
    publisher = publisher or MemoryPublisher()
    engine = Engine(
        lambda: policy,
        MemoryStateStore(),
        publisher,
        audit,
        clock,
        EngineConfig(instance_id="replay", concurrent=False),
        watch=DayWatch(policy),
    )
    engine.expected = _expected_days(deliveries, policy)
    outcomes: dict[Delivery, int] = dict.fromkeys(Delivery, 0)
    with _frozen_history():
        for count, delivery in enumerate(deliveries, start=1):
            if delivery.at > end:
                break
            if count % FREEZE_EVERY == 0:
                gc.freeze()
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
            await advance(engine, clock, delivery.at)
            body, attributes = delivery.body, delivery.attributes
            outcomes[await engine.deliver(delivery.topic, delivery.message_id, body, attributes)] += 1
        await advance(engine, clock, end)
    return ReplayResult(audit.rows, dict(engine.states), publisher, outcomes, end)


def _expected_days(deliveries: list[RecordedDelivery], policy: Policy) -> ExpectedDays | None:
    """The calendar's part in a replay: the game days between the first and the last recorded game date
    (a recording of one date opens no other; a recording that skips a game day shows it failing)."""
    span = game_date_span(deliveries)
    if policy.calendar is None or span is None or not expected_game_days(policy.calendar, *span):
        return None
    return ExpectedDays(*span)


def game_date_span(deliveries: Iterable[RecordedDelivery]) -> tuple[date, date] | None:
    """The first and last `game_date` the recorded bodies name (unreadable ones are not dates: ignored)."""
    named = {d.data.get("game_date") for d in deliveries if isinstance(d.data, dict)}
    dates = []
    for text in named:
        if isinstance(text, str):
            try:
                dates.append(date.fromisoformat(text))
            except ValueError:
                continue
    return (min(dates), max(dates)) if dates else None


@contextmanager
def _frozen_history() -> Iterator[None]:
    """Replay keeps every audit row and state in memory, so the heap only grows, and the cyclic GC would
    rescan that ever larger heap (13% of a 10,000-date replay, growing with its length). `gc.freeze()`
    (here and every FREEZE_EVERY deliveries) moves what exists to the permanent generation, so collections
    look only at what is new; young garbage is collected as usual. Unfrozen at the end."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def advance(engine: Engine, clock: VirtualClock, to: datetime) -> None:
    """Move virtual time to `to`, stopping at every timer on the way, in order."""
    while (due := engine.next_due()) is not None and due <= to:
        clock.set(due)
        await engine.fire_due()
    clock.set(to)


# `json.dumps` with any keyword builds a new encoder per row; this one is built once. Same output as
# `json.dumps(row)` (", " and ": " are the defaults); rows are plain trees, so the cycle check is skipped.
_TIMELINE_ENCODER = json.JSONEncoder(check_circular=False)
TIMELINE_CHUNK = 4096  # rows per write call


def write_timeline(rows: Iterable[AuditRow], path: Path) -> None:
    encode = _TIMELINE_ENCODER.encode
    with path.open("w", encoding="utf-8") as out:
        chunk: list[str] = []
        for row in rows:
            chunk.append(encode(row))
            if len(chunk) == TIMELINE_CHUNK:
                out.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            out.write("\n".join(chunk) + "\n")


def summary_rows(result: ReplayResult) -> list[dict[str, Any]]:
    """`summary_lines` as data (for `--json`): one object per (game_date, transition)."""
    rows = []
    for key in sorted(result.states):
        state, trigger = result.states[key], result.states[key].published
        last = state.last
        rows.append(
            {
                "game_date": str(key.game_date),
                "transition": key.transition,
                "mode": state.mode.value,
                "phase": state.phase.value,
                "completeness": last.completeness if last else None,
                "missing": list(last.missing) if last else [],
                "trigger": None
                if trigger is None
                else {
                    "trigger_id": trigger.trigger_id,
                    "source": trigger.source.value if trigger.source else None,
                    "degraded": trigger.degraded,
                },
            }
        )
    return rows


def summary_lines(result: ReplayResult) -> list[str]:
    """One line per (game_date, transition): mode, outcome, trigger, completeness, missing (the text of
    `summary_rows`)."""
    return [_summary_line(row) for row in summary_rows(result)]


def _summary_line(row: Mapping[str, Any]) -> str:
    trigger = row["trigger"]
    detail = (
        f"trigger {trigger['trigger_id']} source={trigger['source'] or '?'}"
        f"{' degraded' if trigger['degraded'] else ''}"
        if trigger
        else "no trigger"
    )
    completeness = "-" if row["completeness"] is None else f"{row['completeness']:.3f}"
    return (
        f"{row['game_date']} {row['transition']:<17} {row['mode']:<9} {row['phase']:<18} "
        f"completeness={completeness} missing={', '.join(row['missing']) or '-'} {detail}"
    )


def describe(row: Mapping[str, Any]) -> str:
    """A one-line human rendering of a timeline row."""
    kind = row["kind"]
    head = f"{row['at']}  {kind:<11}"
    if kind == "decision":
        return (
            f"{head} {row['game_date']} {row['transition']:<17} {row['mode']:<9} {row['decision']:<16} "
            f"completeness={row['completeness']:.3f} quality={row['quality_score']:.3f} "
            f"({row['cause']}) {'; '.join(row['reasons'])}"
        )
    if kind == "trigger":
        degraded = " DEGRADED" if row["degraded"] else ""
        table = row["payload"].get("source_table")
        return (
            f"{head} {row['game_date']} {row['transition']:<17} {row['mode']:<9} -> {row['topic']} "
            f"{row['trigger_id']} source={row['source']}{degraded}{f' table={table}' if table else ''}"
        )
    if kind == "alert":
        return f"{head} {row['severity']:<8} {row['alert']}: {row['message']}"
    if kind == "input":
        name = row["processor"] or f"{row['raw_name']} (unknown)"
        return f"{head} {row['game_date']} {row['transition']:<17} {name} {row['status']}"
    if kind == "phase_completion":
        return (
            f"{head} {row['game_date']} {row['transition']:<17} {row['mode']:<9} {row['outcome']} "
            f"source={row['source'] or '-'}"
        )
    if kind == "slo":
        missed = [r["slo"] for r in row["results"] if not r["met"]]
        return f"{head} {row['game_date']} {row['mode']} {row['outcome']} missed={','.join(missed) or '-'}"
    return f"{head} {row['topic']} {row['message_id']}: {row['reason']}"
