"""One exception root, split by what the caller must do. Adapters translate vendor errors at the edge."""

from __future__ import annotations


class CascadeError(Exception):
    """Root of every error cascade raises on purpose."""


class TransientError(CascadeError):
    """Try again later: nack the message, retry the publish, keep the audit row buffered."""


class PublishError(TransientError):
    """A publish did not go through (after the adapter's own retries)."""


class PermanentInputError(CascadeError):
    """The input can never be processed: dead-letter it with the reason and ack."""


class ConfigurationError(CascadeError):
    """Settings or policy are unusable: refuse to start (or keep the previous policy on reload)."""
