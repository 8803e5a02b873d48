"""Reading the audit history back from BigQuery: every audit row of a range of game dates, as written.

`orchestration_events` holds every audit row whole (its `payload`), so the reader asks only that table and
returns the payloads: the same dicts `ops/audit_rows.py` wrote, whatever kind. The typed tables
(`dependency_check_log`, `phase_completion_log`, `slo_log`) are for SQL users; reading them back would mean
rebuilding rows from columns, a second mapping to keep in step.

Three things the query takes care of:

- Duplicates. The sink's resend after a crash can store a row twice (`insertId` is best effort, and
  bqemulator ignores it): one row per `insert_id` is kept (`QUALIFY ROW_NUMBER() ...`).
- Order. BigQuery returns rows in no particular order: they are sorted by `at`, then by `insert_id`, so two
  reads of the same rows give the same list.
- Cost. `orchestration_events` is partitioned by `DATE(at)`, not by game date, so a filter on `game_date`
  alone scans all 365 days. The query also bounds `at` (see `WRITTEN_BEFORE_DAYS`).

The emulator's quirks (EMULATORS.md) are avoided rather than decoded: TIMESTAMP cells (int64 microseconds
there, float seconds on BigQuery) are never selected, only sorted on, and the payload is selected as
`TO_JSON_STRING(payload)`, a STRING on both, parsed here.

Errors are translated here: outage, 5xx, 429, rate limits and timeouts → `TransientError`; a missing
dataset or table → `ConfigurationError` saying to run `cascade provision`; anything else BigQuery refuses
(permissions, a table from an incompatible version) → `ConfigurationError` with BigQuery's message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
from gcloud.aio.bigquery import Job

from adapters.bigquery_http import describe, gcloud_session
from adapters.bigquery_schema import ORCHESTRATION_EVENTS
from adapters.errors import CascadeError, ConfigurationError, TransientError
from adapters.ports import AuditRow

# The rows of game date D are written from the day before it (tomorrow mode: a slate prepared the evening
# before, 00:00 local at the earliest, which is D-1 in UTC too) to the morning after it (overnight mode runs
# until ~05:00 UTC on D+2), plus the deadlines, self-heal and the SLO row a few hours after that. Two days
# before and three after cover all of that with a day to spare on each side. A backfill or an operator's
# re-run weeks later is outside this window: its rows are not read (widen the window to see them).
WRITTEN_BEFORE_DAYS = 2
WRITTEN_AFTER_DAYS = 3

_TABLE = ORCHESTRATION_EVENTS.name

# `at` is a reserved word in GoogleSQL (and in DuckDB, which runs the emulator): always quoted.
# The `at` range is on the partitioning column itself, the filter BigQuery documents as pruning partitions;
# it selects the same rows as DATE(`at`) BETWEEN @first - 2 days AND @last + 3 days.
_ROWS_SQL = """
SELECT TO_JSON_STRING(payload) AS payload
FROM `{table}`
WHERE game_date BETWEEN @first AND @last
  AND `at` >= @written_from AND `at` < @written_before
QUALIFY ROW_NUMBER() OVER (PARTITION BY insert_id ORDER BY `at`) = 1
ORDER BY `at`, insert_id
"""

_PHASES_SQL = """
SELECT TO_JSON_STRING(payload) AS payload
FROM `{table}`
WHERE kind = 'phase_completion' AND game_date >= @first
  AND `at` >= @written_from
QUALIFY ROW_NUMBER() OVER (PARTITION BY insert_id ORDER BY `at`) = 1
ORDER BY `at`, insert_id
"""

# ErrorProto reasons that mean "try again later" (BigQuery's error table); HTTP 403 and 400 carry some.
_TRANSIENT_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "jobBackendError",
        "jobInternalError",
        "rateLimitExceeded",
        "quotaExceeded",
        "tableUnavailable",
    }
)
_TRANSIENT_STATUSES = frozenset({408, 429})
# Both ids are spliced into the SQL (a table name cannot be a query parameter): only their own characters
# may pass, never a backtick. Project ids may have hyphens and the legacy "example.com:project" form.
_DATASET_ID = re.compile(r"[A-Za-z0-9_]{1,1024}")
_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}")


class BigQueryHistory:
    """The audit rows stored in BigQuery, read back per game date (see module doc)."""

    def __init__(
        self,
        project: str,
        dataset: str,
        session: aiohttp.ClientSession | None = None,
        api_root: str | None = None,
        *,
        page_rows: int = 5_000,
        request_timeout_s: int = 30,
        query_timeout_s: float = 120.0,
    ) -> None:
        if not _PROJECT_ID.fullmatch(project):
            raise ConfigurationError(f"BigQuery project id {project!r} is not a valid project id")
        if not _DATASET_ID.fullmatch(dataset):
            raise ConfigurationError(f"BigQuery dataset id {dataset!r} is not a valid dataset id")
        if page_rows < 1:
            raise ValueError("page_rows must be at least 1")
        self._project, self._dataset, self._api_root = project, dataset, api_root
        self._page_rows = page_rows
        self._request_timeout_s = request_timeout_s
        # How long BigQuery may hold one request open waiting for the query (below the HTTP timeout).
        self._wait_ms = max(1, request_timeout_s - 5) * 1000
        self._query_timeout_s = query_timeout_s
        self._session, self._owns_session = session, session is None
        self._table = f"{project}.{dataset}.{_TABLE}"

    async def rows(self, first: date, last: date) -> list[AuditRow]:
        """Every audit row whose game_date is in [first, last], once each, by `at` then `insert_id`.

        Rows without a game_date (dead letters, undated alerts) belong to no date and are not returned."""
        if last < first:
            return []
        return await self._payloads(
            _ROWS_SQL,
            [
                _param("first", "DATE", first.isoformat()),
                _param("last", "DATE", last.isoformat()),
                _param("written_from", "TIMESTAMP", _midnight(first - timedelta(days=WRITTEN_BEFORE_DAYS))),
                _param(
                    "written_before", "TIMESTAMP", _midnight(last + timedelta(days=WRITTEN_AFTER_DAYS + 1))
                ),
            ],
        )

    async def phase_durations(self, since: date) -> list[AuditRow]:
        """The `phase_completion` audit rows of game dates from `since` on (ETA history at start-up)."""
        return await self._payloads(
            _PHASES_SQL,
            [
                _param("first", "DATE", since.isoformat()),
                _param("written_from", "TIMESTAMP", _midnight(since - timedelta(days=WRITTEN_BEFORE_DAYS))),
            ],
        )

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # -- The query job --------------------------------------------------------------------------------------

    async def _payloads(self, sql: str, params: list[dict[str, Any]]) -> list[AuditRow]:
        # One column, the payload as JSON text: written by canonical_json, checked by BigQuery's JSON type.
        # Each is a plain dict; typed as the port's AuditRow, the type every consumer of audit rows takes.
        return [
            json.loads(cells[0]["v"]) for cells in await self._query(sql.format(table=self._table), params)
        ]

    async def _query(self, sql: str, params: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Every result row's cells: jobs.query, then getQueryResults until the job is done and paged."""
        body = {
            "query": sql,
            "useLegacySql": False,
            "parameterMode": "NAMED",
            "queryParameters": params,
            "maxResults": self._page_rows,
            "timeoutMs": self._wait_ms,
        }
        response = await self._call(self._job().query(body, timeout=self._request_timeout_s))
        reference = response.get("jobReference") or {}
        job = self._job(reference.get("jobId"), reference.get("location"))
        deadline = time.monotonic() + self._query_timeout_s
        while not response.get("jobComplete"):  # a slow query: BigQuery holds each poll up to timeoutMs
            if time.monotonic() > deadline:
                raise TransientError(
                    f"BigQuery history query did not finish within {self._query_timeout_s} s"
                )
            response = await self._results(job, {"timeoutMs": self._wait_ms})
        self._raise_job_errors(response)
        rows = [row["f"] for row in response.get("rows") or []]
        while token := response.get("pageToken"):
            response = await self._results(job, {"pageToken": token})
            self._raise_job_errors(response)
            rows += [row["f"] for row in response.get("rows") or []]
        return rows

    async def _results(self, job: Job, params: dict[str, Any]) -> dict[str, Any]:
        request = job.get_query_results(
            timeout=self._request_timeout_s, params={"maxResults": self._page_rows, **params}
        )
        return await self._call(request)

    def _job(self, job_id: str | None = None, location: str | None = None) -> Job:
        if self._session is None:  # created lazily: aiohttp wants a running loop
            self._session = aiohttp.ClientSession()
        return Job(
            job_id,
            project=self._project,
            session=gcloud_session(self._session),
            api_root=self._api_root,
            location=location,
        )

    # -- Errors, translated at the edge ---------------------------------------------------------------------

    async def _call(self, request: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        try:
            return await request
        except aiohttp.ContentTypeError as exc:  # an answer that is not JSON: a proxy's page, a cut body
            raise TransientError(f"BigQuery history query failed: {describe(exc)}") from exc
        except aiohttp.ClientResponseError as exc:
            # gcloud-aio puts the response body (BigQuery's error object) in the message.
            raise self._refused(f"HTTP {exc.status}", exc.status, exc.message) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"BigQuery history query failed: {describe(exc)}") from exc

    def _raise_job_errors(self, response: Mapping[str, Any]) -> None:
        """A finished job that failed: bqemulator answers 200 with `errors`, BigQuery mostly an HTTP error."""
        errors = response.get("errors")
        if errors:
            raise self._refused("the query job failed", None, json.dumps(errors))

    def _refused(self, what: str, status: int | None, body: str) -> CascadeError:
        """The error for a refusal; `body` is BigQuery's answer (its ErrorProto reasons decide)."""
        where = f"BigQuery dataset {self._project}.{self._dataset}"
        reasons = set(re.findall(r'"reason"\s*:\s*"(\w+)"', body))  # the body may be cut, or not JSON
        cause = f"{what}: {_message(body)}"
        if status == 404 or "notFound" in reasons:
            return ConfigurationError(
                f"{where}: audit table {_TABLE} not found ({cause}); "
                f"run `cascade provision --project {self._project} --dataset {self._dataset}` first"
            )
        if status in _TRANSIENT_STATUSES or (status or 0) >= 500 or reasons & _TRANSIENT_REASONS:
            return TransientError(f"{where}: history query failed, try again later ({cause})")
        return ConfigurationError(f"{where}: history query refused ({cause})")


def _param(name: str, type_: str, value: str) -> dict[str, Any]:
    return {"name": name, "parameterType": {"type": type_}, "parameterValue": {"value": value}}


def _midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(sep=" ")


def _message(body: str) -> str:
    """BigQuery's own words from an error body: its first `message`, else the body's start."""
    found = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', body)
    text = found.group(1) if found else body
    return " ".join(text.split())[:300] or "no message"
