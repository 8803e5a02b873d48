"""Instants in the timeline and in a parsed recording: one text per instant, whatever tzinfo carried it."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ops.audit_rows import iso_z
from ops.replay import read_recording

LINE = '{"at": "%s", "topic": "t", "message_id": "m", "data": "x"}'


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (datetime(2025, 12, 31, 6, 12, 10, tzinfo=UTC), "2025-12-31T06:12:10Z"),
        (datetime(2025, 12, 31, 6, 12, 10, 500000, tzinfo=UTC), "2025-12-31T06:12:10.5Z"),
        (datetime(2025, 12, 31, 6, 12, 10, 123, tzinfo=UTC), "2025-12-31T06:12:10.000123Z"),
        (datetime(2025, 12, 31, 1, 12, 10, tzinfo=timezone(timedelta(hours=-5))), "2025-12-31T06:12:10Z"),
        (
            datetime(2025, 12, 31, 11, 42, 10, 250000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2025-12-31T06:12:10.25Z",
        ),
    ],
)
def test_iso_z_writes_the_utc_instant_with_z_and_fractions_only_when_present(at: datetime, text: str) -> None:
    assert iso_z(at) == text


def test_a_recorded_z_instant_is_read_with_the_stdlib_utc_and_other_offsets_are_kept() -> None:
    zulu, offset = read_recording([LINE % "2025-12-31T06:12:10Z", LINE % "2025-12-31T12:12:11+05:00"])

    assert zulu.at.tzinfo is UTC
    assert offset.at.utcoffset() == timedelta(hours=5)
    # Same instant, same text, whatever tzinfo pydantic gave it before.
    assert iso_z(zulu.at) == "2025-12-31T06:12:10Z"


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_a_recording_leaves_the_cyclic_gc_as_it_found_it(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        read_recording([LINE % "2025-12-31T06:12:10Z"])
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
