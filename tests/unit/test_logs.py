"""Cloud Logging JSON lines: one valid object per record, with severity, time, trace and structured fields."""

from __future__ import annotations

import ast
import io
import json
import logging
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ops.logs import SOURCE_KEY, STRUCTURED_FIELDS, TRACE_KEY, CloudLoggingFormatter, configure_logging


class Opaque:
    def __str__(self) -> str:
        return "<opaque 7>"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger writing through the formatter to a buffer (the root logger is left alone)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter(project="nba-props"))
    logger = logging.getLogger("cascade.test_logs")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    return [json.loads(line) for line in lines]


def record(msg: str = "hello", level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("cascade.x", level, "/app/ops/x.py", 42, msg, (), None, func="run")
    rec.created = datetime(2025, 12, 31, 6, 12, 9, 123456, tzinfo=UTC).timestamp()
    rec.__dict__.update(extra)
    return rec


def test_every_record_is_one_line_of_valid_json(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    logger.info("plain")
    logger.warning('two\nlines with "quotes" and ünïcode')
    logger.error("args %s and %d", "x", 3)

    assert [e["message"] for e in entries(stream)] == [
        "plain",
        'two\nlines with "quotes" and ünïcode',
        "args x and 3",
    ]
    assert len(stream.getvalue().splitlines()) == 3


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (25, "INFO"),  # a custom level between INFO and WARNING
        (5, "DEFAULT"),  # below DEBUG
    ],
)
def test_severity_follows_the_python_level(level: int, expected: str) -> None:
    entry = json.loads(CloudLoggingFormatter().format(record(level=level)))

    assert entry["severity"] == expected


def test_time_is_rfc3339_utc_with_z_and_source_location_names_the_call_site() -> None:
    entry = json.loads(CloudLoggingFormatter().format(record()))

    assert entry["time"] == "2025-12-31T06:12:09.123456Z"
    assert entry[SOURCE_KEY] == {"file": "/app/ops/x.py", "line": "42", "function": "run"}
    assert entry["logger"] == "cascade.x"


def test_source_location_of_a_real_call(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    logger.info("here")

    location = entries(stream)[0][SOURCE_KEY]
    assert location["file"].endswith("test_logs.py")
    assert location["function"] == "test_source_location_of_a_real_call"
    assert re.fullmatch(r"\d+", location["line"])


def test_a_correlation_id_becomes_the_trace_of_the_project() -> None:
    entry = json.loads(CloudLoggingFormatter(project="nba-props").format(record(correlation_id="c-77")))

    assert entry[TRACE_KEY] == "projects/nba-props/traces/c-77"
    assert entry["correlation_id"] == "c-77"


def test_no_trace_without_a_correlation_id_or_without_a_project() -> None:
    without_id = json.loads(CloudLoggingFormatter(project="nba-props").format(record()))
    without_project = json.loads(CloudLoggingFormatter().format(record(correlation_id="c-77")))

    assert TRACE_KEY not in without_id
    assert TRACE_KEY not in without_project
    assert without_project["correlation_id"] == "c-77"


def test_structured_fields_are_copied_and_other_extras_are_not(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture

    logger.info(
        "triggered",
        extra={
            "game_date": "2025-12-30",
            "transition": "phase3_to_phase4",
            "trigger_id": "t-1",
            "password": "hunter2",
        },
    )

    entry = entries(stream)[0]
    assert entry["game_date"] == "2025-12-30"
    assert entry["transition"] == "phase3_to_phase4"
    assert entry["trigger_id"] == "t-1"
    assert "password" not in entry
    assert "hunter2" not in stream.getvalue()


def test_an_exception_is_included_with_its_traceback(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    try:
        raise RuntimeError("store unavailable")
    except RuntimeError:
        logger.exception("could not record", extra={"game_date": "2025-12-30"})

    entry = entries(stream)[0]
    assert entry["severity"] == "ERROR"
    assert entry["message"].startswith("could not record\nTraceback (most recent call last):")
    assert "RuntimeError: store unavailable" in entry["message"]
    assert entry["game_date"] == "2025-12-30"


def test_values_json_cannot_hold_are_rendered_with_str(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    logger.info(
        "odd values",
        extra={
            "game_date": date(2025, 12, 30),
            "trigger_id": Opaque(),
            "changes": {("a", "b"): 1},  # a key JSON cannot hold
            "count": math.nan,
        },
    )

    entry = entries(stream)[0]
    assert entry["game_date"] == "2025-12-30"
    assert entry["trigger_id"] == "<opaque 7>"
    assert entry["changes"] == "{('a', 'b'): 1}"
    assert entry["count"] == "nan"
    assert entry["message"] == "odd values"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
def test_configure_logging_is_idempotent_and_sets_the_level() -> None:
    first, second = io.StringIO(), io.StringIO()

    configure_logging("warning", "nba-props", stream=first)
    configure_logging("INFO", "nba-props", stream=second)
    logging.getLogger("cascade.anything").info("once", extra={"correlation_id": "c-1"})
    logging.getLogger("cascade.anything").debug("filtered out")

    assert first.getvalue() == ""
    [entry] = entries(second)
    assert entry["message"] == "once"
    assert entry[TRACE_KEY] == "projects/nba-props/traces/c-1"
    assert logging.getLogger().level == logging.INFO


def test_the_shutdown_counts_appear_in_the_json_line(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    logger.info(
        "cascade stopped",
        extra={"keys": 12, "since": "2025-12-01", "drained": 3, "cancelled": 1, "spooled": 40, "buffered": 0},
    )

    entry = entries(stream)[0]
    assert (entry["keys"], entry["since"], entry["spooled"]) == (12, "2025-12-01", 40)
    assert (entry["drained"], entry["cancelled"], entry["buffered"]) == (3, 1, 0)


@pytest.mark.parametrize("module", ["ops/daemon.py", "ops/signals.py", "ops/policy_holder.py"])
def test_every_extra_the_lifecycle_logs_is_a_structured_field(module: str) -> None:
    """An `extra` key missing from the allow-list is silently dropped (the shutdown counts once were)."""
    tree = ast.parse((Path(__file__).resolve().parents[2] / module).read_text())
    keys = {
        key.value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        for kw in call.keywords
        if kw.arg == "extra" and isinstance(kw.value, ast.Dict)
        for key in kw.value.keys
        if isinstance(key, ast.Constant)
    }
    assert keys, f"no logging extras found in {module}"
    assert keys <= set(STRUCTURED_FIELDS), sorted(keys - set(STRUCTURED_FIELDS))
