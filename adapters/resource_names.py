"""The names of the Google resources cascade uses besides the policy's own topics, with their defaults.

The one place these defaults are written: `ops.settings.Settings` builds a `ResourceNames` from the
environment (`settings.names`), and `cascade provision`, `cascade run`'s startup check, the engine and the
Pub/Sub admin all take it, so what provision creates is what run checks for and uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceNames:
    # A completion topic T is consumed through the subscription `{subscription_prefix}T`.
    subscription_prefix: str = "cascade-"
    dead_letter_topic: str = "cascade-dead-letter"
    alert_topic: str = "nba-slo-violation"
    status_topic: str = "nba-orchestration-status"
    firestore_collection: str = "cascade_dates"
    bigquery_dataset: str = "cascade_audit"

    @property
    def dead_letter_audit_subscription(self) -> str:
        """Keeps the dead letters: without a subscription, Pub/Sub drops what is published to a topic."""
        return f"{self.dead_letter_topic}-audit"

    @property
    def own_topics(self) -> tuple[str, ...]:
        """The topics cascade publishes to besides the policy's trigger topics."""
        return (self.dead_letter_topic, self.status_topic, self.alert_topic)


DEFAULT_NAMES = ResourceNames()
# Where `cascade provision` creates the audit dataset: what BigQuery itself picks for a dataset inserted
# without a location (the API's documented default).
DEFAULT_BIGQUERY_LOCATION = "US"
