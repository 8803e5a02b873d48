"""`cascade provision`: create every topic, subscription, dataset and table the policy needs. Idempotent.

Runs against a real project, or against the emulators when PUBSUB_EMULATOR_HOST / BIGQUERY_EMULATOR_HOST
are set (the same variables the Google clients honour).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.bigquery_audit import provision_bigquery
from adapters.pubsub_admin import DEAD_LETTER_TOPIC, provision_pubsub
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


async def provision_all(
    project: str,
    policy: Policy,
    dataset: str,
    endpoints: Endpoints,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    with_bigquery: bool = True,
) -> list[str]:
    """Returns one line per resource: `created ...` or `exists ...`."""
    pubsub = await provision_pubsub(project, policy, dead_letter_topic, api_root=endpoints.pubsub)
    lines = [f"created {name}" for name in pubsub.created] + [f"exists  {name}" for name in pubsub.existing]
    if with_bigquery:
        await provision_bigquery(project, dataset, api_root=endpoints.bigquery)
        lines.append(f"ensured bigquery dataset {project}.{dataset} and its audit tables")
    return lines
