"""Where `cascade status | explain | slo` read a history from: a replay timeline, a running daemon, or the
BigQuery audit tables. Each returns plain data (rows or the daemon's JSON); the views do the rest."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from adapters.ports import AuditRow
from ops.text_input import InputError, open_lines

URL_TIMEOUT_S = 15.0


class SourceError(Exception):
    """The history could not be read; the message says what to do. `unavailable`: worth retrying."""

    def __init__(self, message: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


def timeline_rows(path: Path) -> list[AuditRow]:
    """A timeline written by `cascade replay --out` (JSON lines; `.gz` or `-` for stdin work too)."""
    try:
        with open_lines(path) as lines:
            return [_row(line, path, number) for number, line in enumerate(lines, start=1) if line.strip()]
    except InputError as exc:
        raise SourceError(str(exc)) from exc


def _row(line: str, path: Path, number: int) -> AuditRow:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{path}:{number}:{exc.colno}: invalid JSON: {exc.msg}; "
            "is this a `cascade replay --out` timeline?"
        ) from exc
    if not isinstance(row, dict) or "kind" not in row or "at" not in row:
        raise SourceError(f"{path}:{number}: not a timeline row (needs `kind` and `at`)")
    return row


def fetch_json(base_url: str, path: str, query: dict[str, str] | None = None) -> Any:
    """GET `base_url` + `path` from a running daemon; 404 and connection errors become clear messages."""
    url = base_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = _error_text(exc)
        raise SourceError(f"{url}: HTTP {exc.code}: {detail}", unavailable=exc.code >= 500) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(
            f"cannot reach the router at {base_url} ({reason}); is `cascade run` up? On Cloud Run use "
            "`gcloud run services proxy cascade-router --port 8080` and --url http://localhost:8080",
            unavailable=True,
        ) from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"{url}: the answer is not JSON: is this a cascade router?") from exc


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode("utf-8"))
        return str(body.get("error", body))
    except (ValueError, AttributeError):
        return str(exc.reason)


async def bigquery_rows(first: date, last: date) -> list[AuditRow]:
    """Audit rows of game dates [first, last] from BigQuery; project and dataset from the settings."""
    from adapters.bigquery_history import BigQueryHistory
    from adapters.errors import CascadeError, TransientError
    from ops.settings import load_settings

    try:
        settings = load_settings(dict(os.environ))
        host = settings.bigquery_emulator_host
        root = f"http://{host}/bigquery/v2" if host else None
        history = BigQueryHistory(settings.project, settings.bigquery_dataset, api_root=root)
        try:
            rows: list[AuditRow] = await history.rows(first, last)
            return rows
        finally:
            await history.close()
    except TransientError as exc:
        raise SourceError(f"BigQuery did not answer: {exc}", unavailable=True) from exc
    except CascadeError as exc:
        raise SourceError(f"BigQuery: {exc}") from exc


def dates_in(rows: list[AuditRow]) -> Iterator[str]:
    return iter(sorted({str(r["game_date"]) for r in rows if r.get("game_date")}))
