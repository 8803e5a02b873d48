"""The BigQuery audit tables: the DDL files match the schema the adapter creates, every audit row field has a
column, and rows BigQuery would refuse are recognised before they are sent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.bigquery_schema import (
    DEPENDENCY_CHECK_LOG,
    ORCHESTRATION_EVENTS,
    PHASE_COMPLETION_LOG,
    SLO_LOG,
    TABLES,
    InvalidAuditRow,
    bigquery_rows,
    insert_id,
    sql_file_text,
    strip_sql_comments,
)
from ops.audit_rows import KINDS
from ops.replay import read_recording, replay
from policies.model import Policy
from router.effects import Source

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "ops" / "sql"

# A date's SLO outcome in the contract's format (views/slo.py writes them when a date ends).
SLO_ROW: dict[str, Any] = {
    "at": "2026-02-04T07:32:42Z",
    "kind": "slo",
    "game_date": "2026-02-03",
    "mode": "same_day",
    "outcome": "complete",
    "first_input_at": "2026-02-04T06:02:42Z",
    "ended_at": "2026-02-04T07:32:42Z",
    "end_to_end_s": 5400.0,
    "completeness": 0.8,
    "quality": 0.95,
    "triggered": 4,
    "by_source": {"cascade": 3, "fallback": 0, "self_heal": 1, "manual": 0},
    "results": [
        {"slo": "end_to_end", "target": 7200.0, "actual": 5400.0, "met": True},
        {"slo": "completeness", "target": 0.8, "actual": 0.8, "met": True},
        {"slo": "quality", "target": 0.9, "actual": None, "met": False},
    ],
}


def engine_rows(policy: Policy) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in ("critical_never_reports.jsonl", "duplicates_out_of_order_unknown.jsonl"):
        with (ROOT / "examples" / name).open() as lines:
            deliveries = read_recording(lines, name)
        rows += [dict(r) for r in anyio.run(replay, deliveries, policy, None).rows]
    return rows


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_checked_in_ddl_is_the_ddl_of_the_schema_the_adapter_creates(table: Any) -> None:
    path = SQL_DIR / f"{table.name}.sql"
    assert strip_sql_comments(path.read_text()) == strip_sql_comments(sql_file_text(table)), (
        f"{path} is out of date: python -m adapters.bigquery_schema ops/sql"
    )


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_ddl_column_names_match_the_schema_fields(table: Any) -> None:
    text = (SQL_DIR / f"{table.name}.sql").read_text()
    assert re.findall(r"^  `(\w+)` ", text, flags=re.MULTILINE) == table.field_names
    assert f"partition_expiration_days={table.partition_expiration_days}" in text
    assert table.partition_expiration_days == 365


def test_every_table_is_partitioned_by_a_date_or_timestamp_column_and_clustered_by_its_columns() -> None:
    for table in TABLES:
        types = {f.name: f.type for f in table.fields}
        assert types[table.partition_field] in {"DATE", "TIMESTAMP"}
        assert set(table.clustering) <= set(types)
        api = table.to_api()
        assert api["timePartitioning"]["expirationMs"] == str(365 * 24 * 3600 * 1000)


def test_every_field_of_every_audit_row_kind_has_a_home(policy: Policy) -> None:
    rows = [*engine_rows(policy), SLO_ROW]
    assert {r["kind"] for r in rows} == set(KINDS)
    for row in rows:
        mapped = dict(bigquery_rows(row))
        assert set(mapped) <= {t.name for t in TABLES}
        assert set(mapped[ORCHESTRATION_EVENTS.name]) == set(ORCHESTRATION_EVENTS.field_names)
        if row["kind"] == "decision":
            check = mapped[DEPENDENCY_CHECK_LOG.name]
            assert set(check) == set(DEPENDENCY_CHECK_LOG.field_names)
            assert set(row) - {"kind"} <= set(check)  # nothing of the check is only in the JSON payload
        if row["kind"] == "phase_completion":
            phase = mapped[PHASE_COMPLETION_LOG.name]
            assert set(phase) == set(PHASE_COMPLETION_LOG.field_names)
            assert set(row) - {"kind"} <= set(phase)
        if row["kind"] == "slo":
            slo = mapped[SLO_LOG.name]
            assert set(slo) == set(SLO_LOG.field_names)
            assert set(row) - {"kind", "by_source"} <= set(slo)
            assert {f"by_{source}" for source in row["by_source"]} <= set(slo)


def test_a_decision_goes_to_the_event_log_and_the_check_log_with_coverage_as_records() -> None:
    row = {
        "at": "2025-12-31T06:12:10Z",
        "kind": "decision",
        "game_date": "2025-12-30",
        "transition": "phase2_to_phase3",
        "mode": "overnight",
        "decision": "WAIT",
        "completeness": 0.5,
        "quality_score": 1.0,
        "missing": ["b"],
        "reasons": ["critical processor(s) missing: b"],
        "cause": "event",
        "stale": [],
        "coverage": {"a": 1.0, "b": 0.0},
    }
    (events, event), (checks, check) = bigquery_rows(row)
    assert (events, checks) == ("orchestration_events", "dependency_check_log")
    assert event["payload"] == '{"at":"2025-12-31T06:12:10Z","cause":"event","completeness":0.5,' + (
        '"coverage":{"a":1.0,"b":0.0},"decision":"WAIT","game_date":"2025-12-30","kind":"decision",'
        '"missing":["b"],"mode":"overnight","quality_score":1.0,"reasons":["critical processor(s) missing: b"],'
        '"stale":[],"transition":"phase2_to_phase3"}'
    )
    assert check["coverage"] == [{"processor": "a", "coverage": 1.0}, {"processor": "b", "coverage": 0.0}]
    assert event["insert_id"] == check["insert_id"] == insert_id(row)


def test_insert_id_is_the_same_for_the_same_row_and_differs_for_another() -> None:
    row = {"at": "2025-12-31T06:12:10Z", "kind": "alert", "alert": "x", "message": "m"}
    assert insert_id(row) == insert_id(dict(reversed(list(row.items()))))
    assert insert_id(row) != insert_id({**row, "message": "n"})
    assert re.fullmatch(r"[0-9a-f]{64}", insert_id(row))


def test_phase_completion_records_its_duration() -> None:
    row = {
        "at": "2026-02-04T13:00:00Z",
        "kind": "phase_completion",
        "game_date": "2026-02-03",
        "transition": "phase2_to_phase3",
        "mode": "overnight",
        "outcome": "failed",
        "source": None,
        "trigger_id": None,
        "opened_at": "2026-02-04T06:02:42Z",
        "ended_at": "2026-02-04T13:00:00Z",
        "completeness": 0.8,
        "processors_reported": 4,
        "missing": ["nbac_gamebook"],
    }
    (_, _), (table, phase) = bigquery_rows(row)
    assert table == "phase_completion_log"
    assert phase["duration_s"] == 6 * 3600 + 57 * 60 + 18


def test_an_slo_outcome_goes_to_the_event_log_and_the_slo_log_with_counts_per_source_and_results() -> None:
    (events, event), (slos, slo) = bigquery_rows(SLO_ROW)
    assert (events, slos) == ("orchestration_events", "slo_log")
    assert (event["kind"], event["game_date"], event["mode"], event["outcome"]) == (
        "slo",
        "2026-02-03",
        "same_day",
        "complete",
    )
    assert json.loads(event["payload"]) == SLO_ROW
    assert slo == {
        "insert_id": insert_id(SLO_ROW),
        "at": "2026-02-04T07:32:42Z",
        "game_date": "2026-02-03",
        "mode": "same_day",
        "outcome": "complete",
        "first_input_at": "2026-02-04T06:02:42Z",
        "ended_at": "2026-02-04T07:32:42Z",
        "end_to_end_s": 5400.0,
        "completeness": 0.8,
        "quality": 0.95,
        "triggered": 4,
        "by_cascade": 3,
        "by_fallback": 0,
        "by_self_heal": 1,
        "by_manual": 0,
        "results": SLO_ROW["results"],
    }


def test_a_failed_date_without_inputs_or_measurements_is_storable() -> None:
    row = {
        **SLO_ROW,
        "outcome": "failed",
        "first_input_at": None,
        "end_to_end_s": None,
        "completeness": None,
        "quality": None,
        "triggered": 0,
        "by_source": {},
        "results": [],
    }
    [_, (_, slo)] = bigquery_rows(row)
    assert slo["first_input_at"] is None and slo["results"] == []
    assert [slo[f"by_{s.value}"] for s in Source] == [None] * len(Source)


def test_the_slo_log_has_one_count_column_per_trigger_source() -> None:
    counts = [f.name for f in SLO_LOG.fields if f.name.startswith("by_")]
    assert counts == [f"by_{source.value}" for source in Source]
    assert [f.type for f in SLO_LOG.fields if f.name.startswith("by_")] == ["INTEGER"] * len(Source)


def test_an_input_row_goes_to_the_event_log_only_with_its_message_id() -> None:
    row = {
        "at": "2026-02-04T06:02:42Z",
        "kind": "input",
        "game_date": "2026-02-03",
        "transition": "phase2_to_phase3",
        "processor": None,
        "raw_name": "OddsApiGameLinesBatchProcessor",
        "status": "success",
        "message_id": "17",
        "reported_at": "2026-02-04T06:02:40Z",
        "record_count": None,
    }
    [(table, event)] = bigquery_rows(row)
    assert table == "orchestration_events"
    assert (event["kind"], event["message_id"], event["outcome"]) == ("input", "17", None)
    assert json.loads(event["payload"]) == row


@pytest.mark.parametrize(
    "row",
    [
        {"at": "2025-12-31T06:12:10Z"},  # no kind
        {"kind": "alert", "message": "no at"},
        {"kind": "alert", "at": "yesterday"},
        {"kind": "alert", "at": "2025-12-31T06:12:10"},  # no zone: ambiguous instant
        {"kind": "alert", "at": "2025-12-31T06:12:10Z", "game_date": "2025-13-01"},
        {"kind": "decision", "at": "2025-12-31T06:12:10Z", "transition": "t", "decision": "WAIT"},  # no date
        {"kind": "decision", "at": "2025-12-31T06:12:10Z", "game_date": "2025-12-30", "transition": "t"},
        {
            "kind": "decision",
            "at": "2025-12-31T06:12:10Z",
            "game_date": "2025-12-30",
            "transition": "t",
            "decision": "WAIT",
            "missing": "b",  # a string where a list belongs
        },
        {**SLO_ROW, "game_date": None},  # the slo log is partitioned by game_date
        {**SLO_ROW, "outcome": ""},
        {**SLO_ROW, "ended_at": "2026-02-04T07:32:42"},  # no zone
        {**SLO_ROW, "first_input_at": "soon"},
        {**SLO_ROW, "end_to_end_s": "5400"},
        {**SLO_ROW, "completeness": True},
        {**SLO_ROW, "triggered": 4.5},
        {**SLO_ROW, "by_source": [3, 0, 1, 0]},
        {**SLO_ROW, "by_source": {"cascade": 3, "operator": 1}},  # a source with no column
        {**SLO_ROW, "by_source": {"cascade": "3"}},
        {**SLO_ROW, "results": {"slo": "end_to_end"}},  # an object where a list belongs
        {**SLO_ROW, "results": ["end_to_end"]},
        {**SLO_ROW, "results": [{"target": 7200.0, "actual": 5400.0, "met": True}]},  # no slo name
        {**SLO_ROW, "results": [{"slo": "end_to_end", "target": 7200.0, "actual": 5400.0, "met": "yes"}]},
        {**SLO_ROW, "results": [{"slo": "end_to_end", "target": "2h", "actual": 5400.0, "met": True}]},
    ],
)
def test_rows_bigquery_would_refuse_are_invalid_before_sending(row: dict[str, Any]) -> None:
    with pytest.raises(InvalidAuditRow):
        bigquery_rows(row)
