"""What the BigQuery adapters share about calling gcloud-aio-bigquery over an aiohttp session."""

from __future__ import annotations

from typing import Any

import aiohttp

from adapters.connection import connection_failure


def gcloud_session(session: aiohttp.ClientSession) -> Any:
    """gcloud-aio annotates `session` as `requests.Session` for type checkers; at run time it is aiohttp's."""
    return session


def describe(exc: BaseException) -> str:
    """A short cause for log lines and error messages: the HTTP status, or the exception's type and text."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if unreachable := connection_failure("BigQuery", exc):
        return unreachable
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
