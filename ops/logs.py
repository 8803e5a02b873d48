"""Logs as one JSON object per line, in the structured format Cloud Logging reads from stdout.

Cloud Run forwards each stdout line; a line that is a JSON object becomes a structured entry whose special
keys (`severity`, `message`, `time`, `logging.googleapis.com/trace`, `logging.googleapis.com/sourceLocation`)
fill the entry's own fields. Context goes in through `extra`:

    log.info("triggered %s", transition, extra={"game_date": "2025-12-30", "transition": transition,
                                               "trigger_id": trigger_id, "correlation_id": corr})

Only the keys in `STRUCTURED_FIELDS` are copied from `extra`: a record carries every attribute logging and
the libraries set on it, and an allow-list keeps those (and anything secret) out of the output.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

TRACE_KEY = "logging.googleapis.com/trace"
SOURCE_KEY = "logging.googleapis.com/sourceLocation"

STRUCTURED_FIELDS = (
    "game_date",
    "transition",
    "trigger_id",
    "correlation_id",
    "mode",
    "decision",
    "source",
    "topic",
    "subscription",
    "message_id",
    "processor",
    "alert",
    "instance_id",
    "policy_source",
    "changes",
    "problems",
    "signal",
    "count",
    "elapsed_s",
    # The shutdown and start lines (ops.daemon): what was restored, drained, cancelled, flushed, spooled.
    "keys",
    "since",
    "in_flight",
    "drained",
    "cancelled",
    "buffered",
    "spooled",
    "reason",
)

# Cloud Logging severities by the lowest Python level that maps to them; below DEBUG is DEFAULT.
_SEVERITIES = (
    (logging.CRITICAL, "CRITICAL"),
    (logging.ERROR, "ERROR"),
    (logging.WARNING, "WARNING"),
    (logging.INFO, "INFO"),
    (logging.DEBUG, "DEBUG"),
)


def severity(levelno: int) -> str:
    return next((name for floor, name in _SEVERITIES if levelno >= floor), "DEFAULT")


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record; `project` turns a `correlation_id` into a Cloud Trace resource name."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            # In the message, where Error Reporting looks for a stack trace.
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        entry: dict[str, Any] = {
            "severity": severity(record.levelno),
            "message": message,
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "logger": record.name,
            SOURCE_KEY: {"file": record.pathname, "line": str(record.lineno), "function": record.funcName},
        }
        for key in STRUCTURED_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        correlation_id = entry.get("correlation_id")
        if correlation_id and self.project:
            entry[TRACE_KEY] = f"projects/{self.project}/traces/{correlation_id}"
        return _dumps(entry)


def _dumps(entry: dict[str, Any]) -> str:
    """JSON on one line; whatever JSON cannot hold (objects, non-string keys, NaN) is rendered with str()."""
    try:
        return json.dumps(entry, default=str, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        safe = {key: value if _encodable(value) else str(value) for key, value in entry.items()}
        return json.dumps(safe, default=str, allow_nan=False, ensure_ascii=False)


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


class _CascadeHandler(logging.StreamHandler[TextIO]):
    """Marks the handler `configure_logging` or `configure_cli_logging` installed, so a later call of either
    replaces it instead of adding one."""


def _install(handler: _CascadeHandler) -> None:
    """`handler` in place of the one cascade installed before (other handlers are left alone)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CascadeHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)


def configure_logging(level: int | str, project: str | None, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (default: the current `sys.stdout`) as Cloud Logging JSON.

    Idempotent: calling it again replaces the handler it installed before (and leaves other handlers alone).
    """
    handler = _CascadeHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(project))
    _install(handler)
    logging.getLogger().setLevel(level.upper() if isinstance(level, str) else level)


class _StderrHandler(_CascadeHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted (tests and wrappers replace it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def configure_cli_logging(level: int | str) -> None:
    """Log lines for a one-shot command: plain text on stderr (stdout is the command's answer), only from
    `level` up. The handler's level, not the root's: the root stays as it is for everything else in the
    process. `configure_logging` (the daemon's JSON) replaces this handler like its own."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    _install(handler)
