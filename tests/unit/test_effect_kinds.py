"""Every effect the machine can ask for is carried out in exactly one way: durable, outbound or local."""

from __future__ import annotations

from typing import get_args

from router.effects import DURABLE, LOCAL, OUTBOUND, Effect


def test_every_effect_type_is_durable_outbound_or_local_and_only_one_of_them() -> None:
    groups = [set(DURABLE), set(OUTBOUND), set(LOCAL)]
    assert set().union(*groups) == set(get_args(Effect))
    assert sum(len(group) for group in groups) == len(get_args(Effect))
