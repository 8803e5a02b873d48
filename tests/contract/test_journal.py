"""The `Journal` contract (the outage journal, `ops.store_outage`): one suite for the file on local disk and the
in-memory one replay and unit tests use."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import TransientError
from adapters.journal import FileJournal
from adapters.memory import MemoryJournal
from adapters.ports import Journal
from policies.breaker import Breaker, BreakerState
from policies.model import Mode
from router import shared as records
from router.shared import ClaimState, SharedKey
from tests.support.builders import key, utc

NOW = utc("2025-12-31T06:00")
KEY = key("phase2_to_phase3", "2025-12-30")
OTHER = key("phase3_to_phase4", "2025-12-30")


@pytest.fixture(params=["memory", "file"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Journal:
    return MemoryJournal() if request.param == "memory" else FileJournal(tmp_path / "outage.journal.jsonl")


def recorded(*numbers: int) -> SharedKey:
    record = SharedKey(mode=Mode.OVERNIGHT)
    for n in numbers:
        document = {"message_id": f"m-{n}", "timestamp": utc("2025-12-31T05:00"), "counts": {"rows": n}}
        record, _ = records.record(record, f"gamebook__m-{n}", document)
    return record


def test_an_empty_journal_loads_nothing(journal: Journal) -> None:
    assert journal.load() == {}


def test_the_latest_record_of_each_key_is_kept_with_every_body(journal: Journal) -> None:
    journal.append(KEY, recorded(1), {"gamebook__m-1": '{"a": 1}'})
    journal.append(OTHER, recorded(7), {})
    latest = records.mark(recorded(1, 2), KEY.trigger_id, "a", NOW)
    journal.append(KEY, latest, {"gamebook__m-2": '{"a": 2}'})
    loaded = journal.load()
    assert loaded[KEY].record == latest  # datetimes, nested documents and the claim come back as written
    assert loaded[KEY].record.claim_state is ClaimState.PUBLISHED
    assert loaded[KEY].bodies == {"gamebook__m-1": '{"a": 1}', "gamebook__m-2": '{"a": 2}'}
    assert loaded[OTHER].record == recorded(7)


def test_a_breaker_round_trips(journal: Journal) -> None:
    breaker = Breaker(BreakerState.OPEN, 5, NOW, NOW)
    journal.append(KEY, SharedKey(breaker=breaker), {})
    assert journal.load()[KEY].record.breaker == breaker


def test_clear_forgets_everything(journal: Journal) -> None:
    journal.append(KEY, recorded(1), {})
    journal.clear()
    assert journal.load() == {}
    journal.append(OTHER, recorded(2), {})
    assert list(journal.load()) == [OTHER]


def test_a_line_torn_by_a_crash_is_skipped_and_the_rest_loads(tmp_path: Path) -> None:
    path = tmp_path / "outage.journal.jsonl"
    FileJournal(path).append(KEY, recorded(1), {"gamebook__m-1": "{}"})
    with path.open("ab") as journal:
        journal.write(b'{"game_date": "2025-12-30", "transition": "phase2_to_ph')  # killed mid-write
    assert FileJournal(path).load()[KEY].record == recorded(1)


def test_appending_after_a_torn_line_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "outage.journal.jsonl"
    path.write_bytes(b'{"game_date": "2025-12-30", "tr')
    FileJournal(path).append(OTHER, recorded(3), {})
    assert list(FileJournal(path).load()) == [OTHER]


def test_a_journal_that_cannot_be_written_is_a_transient_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(TransientError, match="not writable"):
        FileJournal(blocker / "outage.journal.jsonl").append(KEY, recorded(1), {})
