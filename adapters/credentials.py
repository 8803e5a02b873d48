"""Are there Google credentials? Asked before a command starts: a missing one is a sentence, not a traceback.

The Firestore client finds credentials with `google.auth.default()`; gcloud-aio (Pub/Sub, BigQuery) follows
the same order (`gcloud.aio.auth.token.get_service_data`): GOOGLE_APPLICATION_CREDENTIALS, then gcloud's
application-default file (`$CLOUDSDK_CONFIG` or `~/.config/gcloud/application_default_credentials.json`),
then the metadata server. Without any of them `cascade run` used to die in a 44-line
`DefaultCredentialsError` traceback, and `cascade publish` retried the metadata server for 37 s.

On Cloud Run (K_SERVICE or CLOUD_RUN_JOB set) or with GCE_METADATA_HOST set, the metadata server provides
the credentials: that is trusted without asking it. Elsewhere `google.auth.default()` may probe the metadata
server (GCE, GKE); the probe here is capped at `PROBE_TIMEOUT_S` per attempt instead of google.auth's 3 s, so
a network that swallows the probe costs a few seconds, not half a minute.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import google.auth
import google.auth.transport.requests
from google.auth.exceptions import DefaultCredentialsError

PROBE_TIMEOUT_S = 0.5
# Set where the metadata server answers for the workload: Cloud Run services and jobs, or told explicitly.
METADATA_SERVER_VARIABLES = ("K_SERVICE", "CLOUD_RUN_JOB", "GCE_METADATA_HOST", "GCE_METADATA_ROOT")
Service = Literal["Pub/Sub", "Firestore", "BigQuery"]
EMULATOR_VARIABLES: dict[Service, str] = {
    "Pub/Sub": "PUBSUB_EMULATOR_HOST",
    "Firestore": "FIRESTORE_EMULATOR_HOST",
    "BigQuery": "BIGQUERY_EMULATOR_HOST",
}


def credentials_problem(services: Sequence[Service], environ: Mapping[str, str] | None = None) -> str | None:
    """Why the Google clients for `services` would find no credentials; None when they will (or when every
    one of them is on its emulator, which needs none).

    `environ` is where the emulator and metadata variables are looked up; google.auth itself reads the
    process environment (GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_CONFIG, HOME)."""
    environ = os.environ if environ is None else environ
    real = [
        EMULATOR_VARIABLES[service] for service in services if not environ.get(EMULATOR_VARIABLES[service])
    ]
    if not real or any(environ.get(name) for name in METADATA_SERVER_VARIABLES):
        return None
    try:
        with _quiet("google.auth"):
            google.auth.default(request=_QuickRequest())
    except DefaultCredentialsError as exc:
        if environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return f"GOOGLE_APPLICATION_CREDENTIALS is set but unusable: {exc}"
        return _none_found(real)
    return None


def _none_found(emulator_variables: Sequence[str]) -> str:
    *others, last = emulator_variables
    listed = f"{', '.join(others)} and {last}" if others else last
    return (
        "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS or run "
        f"`gcloud auth application-default login`, or point {listed} at the emulator{'s' if others else ''}"
    )


class _QuickRequest(google.auth.transport.requests.Request):
    """google.auth's HTTP transport with every timeout capped: only the metadata server probe uses it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        timeout = kwargs.get("timeout")
        kwargs["timeout"] = PROBE_TIMEOUT_S if timeout is None else min(timeout, PROBE_TIMEOUT_S)
        return super().__call__(*args, **kwargs)  # type: ignore[no-untyped-call]  # google.auth is untyped


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """google.auth logs a warning per failed probe; before logging is configured those go to stderr raw."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
