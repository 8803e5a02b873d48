"""The BigQuery audit tables, as data, and the mapping from one audit row to the rows they store.

Four tables, all partitioned by day with a 365-day partition expiration and clustered for the usual
questions ("what happened to this transition on this date?"):

- `orchestration_events`: every audit row (input, decision, trigger, alert, dead letter, phase completion,
  SLO outcome), with the whole row as JSON in `payload` and the columns one filters on lifted out. Partitioned
  by the event time (`DATE(at)`), since alerts and dead letters may have no `game_date`. The history reader
  (`adapters.bigquery_history`) reads a date's rows back from here.
- `dependency_check_log`: one row per decision (dependency check), with per-processor coverage as a
  repeated record. Partitioned by `game_date`.
- `phase_completion_log`: one row per `(game_date, transition)` when it ends (triggered / degraded /
  failed). Partitioned by `game_date`.
- `slo_log`: one row per game date when it ends: its SLO outcome, the actuals, triggers per source and each
  objective's target/actual/met as a repeated record. Partitioned by `game_date`.

Field names follow `ops/audit_rows.py`; `ops/sql/*.sql` holds the same DDL for humans and Terraform, rendered
by `ddl()` (`python -m adapters.bigquery_schema ops/sql` rewrites them; a unit test keeps them in sync).

Every stored row carries `insert_id`: the sha256 of the audit row's canonical JSON. It is the insertAll
`insertId` (BigQuery's best-effort dedupe of retries) and a column, so readers can dedupe exactly
(`QUALIFY ROW_NUMBER() OVER (PARTITION BY insert_id) = 1`) after a resend that BigQuery did not catch.
Two byte-identical audit rows therefore count as one, which is what a resend is.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from router.effects import Source

PARTITION_EXPIRATION_DAYS = 365
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str  # BigQuery REST type: STRING, TIMESTAMP, DATE, FLOAT, INTEGER, BOOLEAN, JSON, RECORD
    mode: str = "NULLABLE"  # NULLABLE | REQUIRED | REPEATED
    fields: tuple[Field, ...] = ()
    description: str = ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.fields:
            out["fields"] = [f.to_api() for f in self.fields]
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    description: str
    fields: tuple[Field, ...]
    partition_field: str  # a DATE column, or a TIMESTAMP column partitioned by its day
    clustering: tuple[str, ...]
    partition_expiration_days: int = PARTITION_EXPIRATION_DAYS

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def to_api(self) -> dict[str, Any]:
        """The `tables.insert` body (gcloud-aio's `Table.create` adds `tableReference`)."""
        return {
            "description": self.description,
            "schema": {"fields": [f.to_api() for f in self.fields]},
            "timePartitioning": {
                "type": "DAY",
                "field": self.partition_field,
                "expirationMs": str(self.partition_expiration_days * _DAY_MS),
            },
            "clustering": {"fields": list(self.clustering)},
        }


def _f(name: str, type_: str, mode: str = "NULLABLE", description: str = "") -> Field:
    return Field(name, type_, mode, description=description)


_INSERT_ID = _f("insert_id", "STRING", "REQUIRED", "sha256 of the audit row's canonical JSON (dedupe key)")
_AT = _f("at", "TIMESTAMP", "REQUIRED", "when the router recorded the row (UTC)")

ORCHESTRATION_EVENTS = TableSpec(
    name="orchestration_events",
    description=(
        "Every cascade audit row: inputs, decisions, triggers, alerts, dead letters, phase completions, "
        "SLO outcomes."
    ),
    fields=(
        _INSERT_ID,
        _AT,
        _f(
            "kind",
            "STRING",
            "REQUIRED",
            "input | decision | trigger | alert | dead_letter | phase_completion | slo",
        ),
        _f("game_date", "DATE", description="null for alerts and dead letters without a date"),
        _f("transition", "STRING"),
        _f("mode", "STRING"),
        _f("decision", "STRING", description="decision rows: the decision"),
        _f(
            "outcome",
            "STRING",
            description=(
                "phase_completion rows: triggered | triggered_degraded | failed; slo rows: complete | failed"
            ),
        ),
        _f("trigger_id", "STRING"),
        _f("topic", "STRING"),
        _f("alert", "STRING"),
        _f("severity", "STRING"),
        _f("message_id", "STRING", description="input and dead_letter rows: the Pub/Sub message id"),
        _f("payload", "JSON", "REQUIRED", "the whole audit row"),
    ),
    partition_field="at",
    clustering=("kind", "transition", "game_date"),
)

DEPENDENCY_CHECK_LOG = TableSpec(
    name="dependency_check_log",
    description="One row per dependency check: coverage, completeness, quality, decision, reasons.",
    fields=(
        _INSERT_ID,
        _AT,
        _f("game_date", "DATE", "REQUIRED"),
        _f("transition", "STRING", "REQUIRED"),
        _f("mode", "STRING"),
        _f("cause", "STRING", description="event | timer | operator"),
        _f("decision", "STRING", "REQUIRED"),
        _f("completeness", "FLOAT"),
        _f("quality_score", "FLOAT"),
        _f("missing", "STRING", "REPEATED"),
        _f("reasons", "STRING", "REPEATED"),
        _f("stale", "STRING", "REPEATED"),
        Field(
            "coverage",
            "RECORD",
            "REPEATED",
            fields=(_f("processor", "STRING"), _f("coverage", "FLOAT")),
            description="per-processor coverage, 0..1",
        ),
    ),
    partition_field="game_date",
    clustering=("transition", "decision"),
)

PHASE_COMPLETION_LOG = TableSpec(
    name="phase_completion_log",
    description="One row per (game_date, transition) when it ends: triggered, degraded or failed.",
    fields=(
        _INSERT_ID,
        _AT,
        _f("game_date", "DATE", "REQUIRED"),
        _f("transition", "STRING", "REQUIRED"),
        _f("mode", "STRING"),
        _f("outcome", "STRING", "REQUIRED", "triggered | triggered_degraded | failed"),
        _f("source", "STRING"),
        _f("trigger_id", "STRING"),
        _f("opened_at", "TIMESTAMP"),
        _f("ended_at", "TIMESTAMP"),
        _f("duration_s", "FLOAT", description="ended_at - opened_at"),
        _f("completeness", "FLOAT"),
        _f("processors_reported", "INTEGER"),
        _f("missing", "STRING", "REPEATED"),
    ),
    partition_field="game_date",
    clustering=("transition", "outcome"),
)

# One count column per trigger source, named from the enum the router decides with: a new source is a new
# column (and a DDL change), never a count silently dropped.
_BY_SOURCE = {source.value: f"by_{source.value}" for source in Source}

SLO_LOG = TableSpec(
    name="slo_log",
    description="One row per game date when it ends: its SLO outcome, actuals, triggers per source, results.",
    fields=(
        _INSERT_ID,
        _AT,
        _f("game_date", "DATE", "REQUIRED"),
        _f("mode", "STRING"),
        _f("outcome", "STRING", "REQUIRED", "complete | failed"),
        _f("first_input_at", "TIMESTAMP", description="the date's first input; null if none arrived"),
        _f("ended_at", "TIMESTAMP", description="the last transition triggered, or one failed"),
        _f("end_to_end_s", "FLOAT", description="ended_at - first_input_at; null unless complete"),
        _f("completeness", "FLOAT", description="the lowest completeness at any of the date's triggers"),
        _f("quality", "FLOAT", description="the lowest quality score at any of the date's triggers"),
        _f("triggered", "INTEGER", description="transitions triggered"),
        *(
            _f(column, "INTEGER", description=f"triggers by {source}")
            for source, column in _BY_SOURCE.items()
        ),
        Field(
            "results",
            "RECORD",
            "REPEATED",
            fields=(
                _f("slo", "STRING"),
                _f("target", "FLOAT"),
                _f("actual", "FLOAT"),
                _f("met", "BOOLEAN"),
            ),
            description="each objective: its target, the actual value (null: not measured) and whether met",
        ),
    ),
    partition_field="game_date",
    clustering=("mode", "outcome"),
)

TABLES: tuple[TableSpec, ...] = (ORCHESTRATION_EVENTS, DEPENDENCY_CHECK_LOG, PHASE_COMPLETION_LOG, SLO_LOG)


class InvalidAuditRow(ValueError):
    """The row cannot be stored as given (missing `at`, a malformed date, ...): reject it, never retry."""


def canonical_json(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def insert_id(row: Mapping[str, Any]) -> str:
    """Deterministic per audit row, so a resend of the same row carries the same insertId. An `input` row
    is identified by its content without `at`: the daemon writes it again when a message it finds recorded
    is redelivered (the process that recorded it may have died before its audit row was durable), and that
    second row must deduplicate with the first."""
    identity = {k: v for k, v in row.items() if k != "at"} if row.get("kind") == "input" else row
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def bigquery_rows(row: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, insertAll JSON row) for every table that stores this audit row; orchestration_events first.

    Raises `InvalidAuditRow` when BigQuery would refuse it, so the caller can reject it before sending.
    """
    kind = row.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InvalidAuditRow(f"audit row without a kind: {canonical_json(row)[:200]}")
    row_id = insert_id(row)
    at = _timestamp(row, "at", required=True)
    event = {
        "insert_id": row_id,
        "at": at,
        "kind": kind,
        "game_date": _date(row, "game_date", required=False),
        "transition": row.get("transition"),
        "mode": row.get("mode"),
        "decision": row.get("decision") if kind == "decision" else None,
        "outcome": row.get("outcome") if kind in ("phase_completion", "slo") else None,
        "trigger_id": row.get("trigger_id"),
        "topic": row.get("topic"),
        "alert": row.get("alert"),
        "severity": row.get("severity"),
        "message_id": row.get("message_id"),
        "payload": canonical_json(row),  # a JSON column takes a JSON-encoded string in insertAll
    }
    out = [(ORCHESTRATION_EVENTS.name, event)]
    if kind == "decision":
        out.append((DEPENDENCY_CHECK_LOG.name, _check_row(row, row_id, at)))
    elif kind == "phase_completion":
        out.append((PHASE_COMPLETION_LOG.name, _phase_row(row, row_id, at)))
    elif kind == "slo":
        out.append((SLO_LOG.name, _slo_row(row, row_id, at)))
    return out


def _check_row(row: Mapping[str, Any], row_id: str, at: str) -> dict[str, Any]:
    coverage = row.get("coverage") or {}
    if not isinstance(coverage, Mapping):
        raise InvalidAuditRow(f"decision coverage is not an object: {coverage!r}")
    return {
        "insert_id": row_id,
        "at": at,
        "game_date": _date(row, "game_date", required=True),
        "transition": _required(row, "transition"),
        "mode": row.get("mode"),
        "cause": row.get("cause"),
        "decision": _required(row, "decision"),
        "completeness": row.get("completeness"),
        "quality_score": row.get("quality_score"),
        "missing": _strings(row, "missing"),
        "reasons": _strings(row, "reasons"),
        "stale": _strings(row, "stale"),
        "coverage": [{"processor": str(name), "coverage": value} for name, value in coverage.items()],
    }


def _phase_row(row: Mapping[str, Any], row_id: str, at: str) -> dict[str, Any]:
    opened_at = _timestamp(row, "opened_at", required=False)
    ended_at = _timestamp(row, "ended_at", required=False)
    duration_s = None
    if opened_at and ended_at:
        duration_s = (_parse_ts(ended_at) - _parse_ts(opened_at)).total_seconds()
    return {
        "insert_id": row_id,
        "at": at,
        "game_date": _date(row, "game_date", required=True),
        "transition": _required(row, "transition"),
        "mode": row.get("mode"),
        "outcome": _required(row, "outcome"),
        "source": row.get("source"),
        "trigger_id": row.get("trigger_id"),
        "opened_at": opened_at,
        "ended_at": ended_at,
        "duration_s": duration_s,
        "completeness": row.get("completeness"),
        "processors_reported": row.get("processors_reported"),
        "missing": _strings(row, "missing"),
    }


def _slo_row(row: Mapping[str, Any], row_id: str, at: str) -> dict[str, Any]:
    by_source = row.get("by_source") or {}
    if not isinstance(by_source, Mapping):
        raise InvalidAuditRow(f"slo row: by_source is not an object: {by_source!r}")
    unknown = set(by_source) - set(_BY_SOURCE)
    if unknown:  # a source with no column: refuse rather than store counts that do not add up
        raise InvalidAuditRow(f"slo row: by_source has unknown sources {sorted(map(str, unknown))}")
    return {
        "insert_id": row_id,
        "at": at,
        "game_date": _date(row, "game_date", required=True),
        "mode": row.get("mode"),
        "outcome": _required(row, "outcome"),
        "first_input_at": _timestamp(row, "first_input_at", required=False),
        "ended_at": _timestamp(row, "ended_at", required=False),
        "end_to_end_s": _number(row, "end_to_end_s", "slo row"),
        "completeness": _number(row, "completeness", "slo row"),
        "quality": _number(row, "quality", "slo row"),
        "triggered": _integer(row, "triggered", "slo row"),
        **{
            column: _integer(by_source, source, "slo row: by_source") for source, column in _BY_SOURCE.items()
        },
        "results": [_slo_result(item) for item in _records(row, "results")],
    }


def _slo_result(item: Mapping[str, Any]) -> dict[str, Any]:
    name = item.get("slo")
    if not isinstance(name, str) or not name:
        raise InvalidAuditRow(f"slo row: a result without an slo name: {item!r}")
    where = f"slo row: result {name}"
    met = item.get("met")
    if met is not None and not isinstance(met, bool):
        raise InvalidAuditRow(f"{where}: met is not a boolean: {met!r}")
    return {
        "slo": name,
        "target": _number(item, "target", where),
        "actual": _number(item, "actual", where),
        "met": met,
    }


def _records(row: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = row.get(name) or []  # a REPEATED column takes [], never null
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidAuditRow(f"{row.get('kind')} row: {name} is not a list of objects: {value!r}")
    return list(value)


def _number(values: Mapping[str, Any], name: str, where: str) -> float | None:
    value = values.get(name)
    # A bool is an int to Python but never a measurement; a numeric string would be stored as a number.
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise InvalidAuditRow(f"{where}: {name} is not a number: {value!r}")


def _integer(values: Mapping[str, Any], name: str, where: str) -> int | None:
    value = values.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise InvalidAuditRow(f"{where}: {name} is not an integer: {value!r}")


def _required(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None or value == "":
        raise InvalidAuditRow(f"{row.get('kind')} row without {name}")
    return value


def _strings(row: Mapping[str, Any], name: str) -> list[str]:
    value = row.get(name) or []  # a REPEATED column takes [], never null
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidAuditRow(f"{row.get('kind')} row: {name} is not a list: {value!r}")
    return [str(v) for v in value]


def _parse_ts(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _timestamp(row: Mapping[str, Any], name: str, *, required: bool) -> Any:
    value = row.get(name)
    if value is None and not required:
        return None
    try:
        _parse_ts(_text(value))
    except (TypeError, ValueError) as exc:
        raise InvalidAuditRow(
            f"{row.get('kind')} row: {name} is not an ISO timestamp with zone: {value!r}"
        ) from exc
    return value


def _date(row: Mapping[str, Any], name: str, *, required: bool) -> Any:
    value = row.get(name)
    if value is None and not required:
        return None
    try:
        date.fromisoformat(_text(value))
    except (TypeError, ValueError) as exc:
        raise InvalidAuditRow(f"{row.get('kind')} row: {name} is not a YYYY-MM-DD date: {value!r}") from exc
    return value


# -- DDL for humans and Terraform --------------------------------------------------------------------------

_SQL_TYPES = {"FLOAT": "FLOAT64", "INTEGER": "INT64", "BOOLEAN": "BOOL"}


def _sql_type(field: Field) -> str:
    if field.type == "RECORD":
        base = "STRUCT<" + ", ".join(f"{f.name} {_sql_type(f)}" for f in field.fields) + ">"
    else:
        base = _SQL_TYPES.get(field.type, field.type)
    return f"ARRAY<{base}>" if field.mode == "REPEATED" else base


def ddl(table: TableSpec) -> str:
    """`CREATE TABLE IF NOT EXISTS` for `table`, with `${project}` and `${dataset}` left for the caller."""
    columns = []
    for f in table.fields:
        not_null = " NOT NULL" if f.mode == "REQUIRED" else ""
        description = f" OPTIONS(description={json.dumps(f.description)})" if f.description else ""
        columns.append(f"  `{f.name}` {_sql_type(f)}{not_null}{description}")
    partition_column = next(f for f in table.fields if f.name == table.partition_field)
    partition = (
        f"DATE(`{table.partition_field}`)"
        if partition_column.type == "TIMESTAMP"
        else f"`{table.partition_field}`"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS `${{project}}.${{dataset}}.{table.name}` (\n"
        + ",\n".join(columns)
        + "\n)\n"
        + f"PARTITION BY {partition}\n"
        + f"CLUSTER BY {', '.join(f'`{c}`' for c in table.clustering)}\n"
        + "OPTIONS(\n"
        + f"  partition_expiration_days={table.partition_expiration_days},\n"
        + f"  description={json.dumps(table.description)}\n"
        + ");\n"
    )


SQL_HEADER = (
    "-- Generated from adapters/bigquery_schema.py (python -m adapters.bigquery_schema ops/sql);\n"
    "-- tests/unit/test_bigquery_schema.py fails when the two differ. ${project} and ${dataset} are\n"
    "-- placeholders (Terraform templatefile syntax).\n"
)


def sql_file_text(table: TableSpec) -> str:
    return SQL_HEADER + ddl(table)


def strip_sql_comments(text: str) -> str:
    return re.sub(r"--[^\n]*\n", "", text)


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path("ops/sql")
    out.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        (out / f"{table.name}.sql").write_text(sql_file_text(table))


if __name__ == "__main__":
    main(sys.argv[1:])
