from __future__ import annotations

from collections.abc import Iterator

import pytest

from policies.model import Policy
from tests.support.bigquery_emulator import bigquery_emulator
from tests.support.builders import default_policy
from tests.support.emulators import Emulator, firestore_emulator, pubsub_emulator


@pytest.fixture(scope="session")
def policy() -> Policy:
    return default_policy()


def _running(emulator: Emulator) -> Iterator[Emulator]:
    # Started on first use, stopped when the session ends, also when tests failed.
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def pubsub_server() -> Iterator[Emulator]:
    """The official Pub/Sub emulator on a free port (PUBSUB_EMULATOR_HOST is `.host_port`)."""
    yield from _running(pubsub_emulator())


@pytest.fixture(scope="session")
def firestore_server() -> Iterator[Emulator]:
    """The official Firestore emulator on a free port (FIRESTORE_EMULATOR_HOST is `.host_port`)."""
    yield from _running(firestore_emulator())


@pytest.fixture(scope="session")
def bigquery_server() -> Iterator[Emulator]:
    """bqemulator (in-memory, offline) on a free port (BIGQUERY_EMULATOR_HOST is `.host_port`)."""
    yield from _running(bigquery_emulator())
