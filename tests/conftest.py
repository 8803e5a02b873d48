from __future__ import annotations

from collections.abc import Iterator

import pytest

from policies.model import Policy
from tests.support.bigquery_emulator import bigquery_emulator
from tests.support.builders import default_policy
from tests.support.emulators import Emulator, firestore_emulator, pubsub_emulator, running


@pytest.fixture(scope="session")
def policy() -> Policy:
    return default_policy()


@pytest.fixture(scope="session")
def pubsub_server() -> Iterator[Emulator]:
    """The official Pub/Sub emulator on a free port (PUBSUB_EMULATOR_HOST is `.host_port`)."""
    yield from running(pubsub_emulator())


@pytest.fixture(scope="session")
def firestore_server() -> Iterator[Emulator]:
    """The official Firestore emulator on a free port (FIRESTORE_EMULATOR_HOST is `.host_port`)."""
    yield from running(firestore_emulator())


@pytest.fixture(scope="session")
def bigquery_server() -> Iterator[Emulator]:
    """bqemulator (in-memory, offline) on a free port (BIGQUERY_EMULATOR_HOST is `.host_port`)."""
    yield from running(bigquery_emulator())
