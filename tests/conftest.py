from __future__ import annotations

import pytest

from policies.model import Policy
from tests.support.builders import default_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return default_policy()
