"""Creating the audit dataset and tables (`cascade provision`). Idempotent: 409 means already there.

A dataset's location is fixed when it is created and cannot be changed afterwards, so an existing dataset in
another location than the one asked for is a `ConfigurationError` (move the data, or ask for its location),
not something provisioning could converge.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from gcloud.aio.bigquery import Dataset, Table

from adapters.bigquery_http import describe, gcloud_session
from adapters.bigquery_schema import TABLES
from adapters.connection import connection_failure
from adapters.errors import ConfigurationError, TransientError
from adapters.resource_names import DEFAULT_BIGQUERY_LOCATION


async def provision_bigquery(
    project: str,
    dataset: str,
    session: aiohttp.ClientSession | None = None,
    api_root: str | None = None,
    location: str = DEFAULT_BIGQUERY_LOCATION,
) -> dict[str, bool]:
    """Create the dataset (in `location`) and the audit tables unless they exist.

    Returns `{"dataset P.D": created, "table P.D.T": created, ...}`."""
    own_session = session is None
    client = session or aiohttp.ClientSession()
    try:
        return await _provision(project, dataset, gcloud_session(client), api_root, location)
    except (aiohttp.ClientError, TimeoutError) as exc:
        unreachable = connection_failure("BigQuery", exc)
        raise TransientError(
            unreachable or f"provisioning BigQuery {project}.{dataset} failed: {describe(exc)}"
        ) from exc
    finally:
        if own_session:
            await client.close()


async def _provision(
    project: str, dataset: str, session: Any, api_root: str | None, location: str
) -> dict[str, bool]:
    datasets = Dataset(dataset, project=project, session=session, api_root=api_root)
    body = {"datasetReference": {"projectId": project, "datasetId": dataset}, "location": location}
    dataset_created = await _unless_exists(datasets.insert(body))
    if not dataset_created:
        _check_location(f"{project}.{dataset}", (await datasets.get()).get("location"), location)
    created = {f"dataset {project}.{dataset}": dataset_created}
    for spec in TABLES:
        table = Table(dataset, spec.name, project=project, session=session, api_root=api_root)
        created[f"table {project}.{dataset}.{spec.name}"] = await _unless_exists(table.create(spec.to_api()))
    return created


def _check_location(name: str, found: object, wanted: str) -> None:
    if isinstance(found, str) and found.lower() != wanted.lower():
        raise ConfigurationError(
            f"dataset {name} exists in location {found}, not {wanted} (a dataset cannot move: "
            f"pass --location {found} or use another dataset)"
        )


async def _unless_exists(request: Any) -> bool:
    """True when the request created the resource, False when it existed (409)."""
    try:
        await request
    except aiohttp.ClientResponseError as exc:
        if exc.status != 409:
            raise
        return False
    return True
