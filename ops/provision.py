"""`cascade provision`: create every topic, subscription, dataset and table the policy needs. Idempotent.

Runs against a real project, or against the emulators when PUBSUB_EMULATOR_HOST / BIGQUERY_EMULATOR_HOST
are set (the same variables the Google clients honour). The names come from `ResourceNames`, as `cascade run`
reads them, so what is created here is what run's startup check looks for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.bigquery_provision import provision_bigquery
from adapters.pubsub_admin import provision_pubsub
from adapters.resource_names import DEFAULT_BIGQUERY_LOCATION, DEFAULT_NAMES, ResourceNames
from policies.model import Policy


@dataclass(frozen=True, slots=True)
class Endpoints:
    """REST roots for the Google clients; None means the real Google endpoint."""

    pubsub: str | None
    bigquery: str | None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Endpoints:
        env = os.environ if env is None else env
        pubsub = env.get("PUBSUB_EMULATOR_HOST")
        bigquery = env.get("BIGQUERY_EMULATOR_HOST")
        return cls(
            pubsub=f"http://{pubsub}/v1" if pubsub else None,
            bigquery=f"http://{bigquery}/bigquery/v2" if bigquery else None,
        )


@dataclass
class ProvisionReport:
    """What one `cascade provision` did: resources as `"topic NAME"`, `"subscription NAME"`, `"dataset P.D"`,
    `"table P.D.T"`; `updated`: existing subscriptions changed to never expire; `not_updated`: existing
    subscriptions that may expire and could not be changed, with why. `dataset`: None with --skip-bigquery."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    not_updated: list[str] = field(default_factory=list)
    dataset: str | None = None
    location: str | None = None

    def lines(self) -> list[str]:
        return (
            [f"created {name}" for name in self.created]
            + [f"exists  {name}" for name in self.existing]
            + [f"updated {name}: never expires now" for name in self.updated]
            + [f"warning {problem}" for problem in self.not_updated]
            + ([f"dataset {self.dataset} is in location {self.location}"] if self.dataset else [])
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "existing": self.existing,
            "updated": self.updated,
            "not_updated": self.not_updated,
            "dataset": self.dataset,
            "location": self.location,
        }


async def provision_all(
    project: str,
    policy: Policy,
    endpoints: Endpoints,
    names: ResourceNames = DEFAULT_NAMES,
    location: str = DEFAULT_BIGQUERY_LOCATION,
    with_bigquery: bool = True,
) -> ProvisionReport:
    pubsub = await provision_pubsub(project, policy, names, api_root=endpoints.pubsub)
    report = ProvisionReport(pubsub.created, pubsub.existing, pubsub.updated, pubsub.not_updated)
    if with_bigquery:
        dataset = names.bigquery_dataset
        tables = await provision_bigquery(project, dataset, api_root=endpoints.bigquery, location=location)
        report.created += [name for name, created in tables.items() if created]
        report.existing += [name for name, created in tables.items() if not created]
        report.dataset, report.location = f"{project}.{dataset}", location
    return report
