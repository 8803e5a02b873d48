"""The game-day calendar: which dates are expected, when a silent one opens, when a silence alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ops.expected_days import ExpectedDays
from policies.calendar import expected_game_days, first_transitions, is_game_day, opens_at, silence_alert_at
from policies.loader import PolicyError, parse_policy
from policies.model import CalendarSpec, DateRange, Policy

D = date.fromisoformat


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# A small calendar with every feature: two ranges with a gap, a one-day holiday, a multi-day break.
SMALL = CalendarSpec(
    game_days={
        "regular_season": DateRange(first=D("2026-02-01"), last=D("2026-02-20")),
        "play_in": DateRange(first=D("2026-02-23"), last=D("2026-02-24")),
    },
    off_days={
        "holiday": DateRange(first=D("2026-02-05"), last=D("2026-02-05")),
        "break": DateRange(first=D("2026-02-13"), last=D("2026-02-18")),
    },
    silence_alert_after_s=30 * 3600,
)
TZ = "America/New_York"


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        pytest.param("2026-02-02", "2026-02-04", ["2026-02-02", "2026-02-03", "2026-02-04"], id="plain-run"),
        pytest.param("2026-02-04", "2026-02-06", ["2026-02-04", "2026-02-06"], id="holiday-skipped"),
        pytest.param("2026-02-12", "2026-02-19", ["2026-02-12", "2026-02-19"], id="break-skipped"),
        pytest.param("2026-02-20", "2026-02-23", ["2026-02-20", "2026-02-23"], id="gap-between-ranges"),
        pytest.param("2026-01-01", "2026-02-01", ["2026-02-01"], id="before-the-season"),
        pytest.param("2026-02-24", "2026-12-31", ["2026-02-24"], id="after-the-season"),
        pytest.param("2000-01-01", "2002-12-31", [], id="another-era"),
        pytest.param("2026-02-03", "2026-02-03", ["2026-02-03"], id="one-day"),
        pytest.param("2026-02-05", "2026-02-05", [], id="one-off-day"),
        pytest.param("2026-02-04", "2026-02-02", [], id="reversed-span"),
    ],
)
def test_expected_game_days_are_the_season_days_minus_off_days(
    first: str, last: str, expected: list[str]
) -> None:
    assert expected_game_days(SMALL, D(first), D(last)) == [D(day) for day in expected]


@pytest.mark.parametrize(
    ("day", "game_day"),
    [
        ("2026-02-01", True),
        ("2026-02-05", False),
        ("2026-02-15", False),
        ("2026-02-21", False),
        ("2026-02-24", True),
    ],
)
def test_a_day_is_a_game_day_inside_a_range_and_outside_every_off_day(day: str, game_day: bool) -> None:
    assert is_game_day(SMALL, D(day)) is game_day


@pytest.mark.parametrize(
    ("game_date", "opens"),
    [
        # 05:00 ET the morning after the game date: EST is UTC-5, EDT UTC-4.
        pytest.param("2026-02-03", "2026-02-04T10:00", id="winter"),
        pytest.param("2026-03-07", "2026-03-08T09:00", id="the-night-dst-starts"),
        pytest.param("2026-04-20", "2026-04-21T09:00", id="summer"),
    ],
)
def test_an_expected_day_opens_an_hour_before_the_overnight_fallback(game_date: str, opens: str) -> None:
    assert opens_at(SMALL, D(game_date), TZ) == at(opens)


@pytest.mark.parametrize(
    ("heard_at", "last", "alert_at"),
    [
        # Heard 04:00 ET Feb 3: 20 h of Feb 3 + 10 h of Feb 4 -> 10:00 ET Feb 4.
        pytest.param("2026-02-03T09:00", None, "2026-02-04T15:00", id="two-game-days"),
        # Feb 5 is a holiday: its hours do not count; Feb 6 takes over from midnight.
        pytest.param("2026-02-04T09:00", None, "2026-02-06T15:00", id="over-a-holiday"),
        # Heard in the break: the count starts at midnight of Feb 19, the first game day after it.
        pytest.param("2026-02-13T09:00", None, "2026-02-20T11:00", id="from-the-end-of-the-break"),
        # Before the season: from its first day's midnight.
        pytest.param("2026-01-10T12:00", None, "2026-02-02T11:00", id="before-the-season"),
        # Not enough game-day hours left this season: never.
        pytest.param("2026-02-24T09:00", None, None, id="season-over"),
        # Replay: only hours up to the recording's last game date count.
        pytest.param("2026-02-03T09:00", "2026-02-03", None, id="span-ends-first"),
        pytest.param("2026-02-03T09:00", "2026-02-04", "2026-02-04T15:00", id="span-long-enough"),
    ],
)
def test_a_silence_alerts_after_its_hours_of_game_days(
    heard_at: str, last: str | None, alert_at: str | None
) -> None:
    due = silence_alert_at(SMALL, at(heard_at), 30 * 3600, TZ, D(last) if last else None)
    assert due == (at(alert_at) if alert_at else None)


def test_the_calendar_opens_the_transition_no_other_one_opens(policy: Policy) -> None:
    assert first_transitions(policy) == ("phase2_to_phase3",)


# -- the shipped season ----------------------------------------------------------------------------------


def test_the_nba_policy_ships_the_2025_26_season(policy: Policy) -> None:
    calendar = policy.calendar
    assert calendar is not None
    assert [(name, s.first, s.last) for name, s in calendar.game_days.items()][:2] == [
        ("regular_season", D("2025-10-21"), D("2026-04-12")),
        ("play_in", D("2026-04-14"), D("2026-04-17")),
    ]
    assert calendar.game_days["playoffs"].first == D("2026-04-18")
    not_played = ["2025-11-27", "2025-12-24", "2026-02-13", "2026-02-18", "2026-04-13", "2025-10-20"]
    assert [day for day in not_played if is_game_day(calendar, D(day))] == []
    assert all(
        is_game_day(calendar, D(day)) for day in ["2025-10-21", "2025-12-25", "2026-02-19", "2026-06-01"]
    )


# -- validation ------------------------------------------------------------------------------------------

NBA_TEXT = (__import__("pathlib").Path(__file__).parents[2] / "policies" / "nba.yaml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        pytest.param(
            "play_in: {first: 2026-04-14, last: 2026-04-17}",
            "play_in: {first: 2026-04-14, last: 2026-04-13}",
            "calendar.game_days.play_in.last",
            "before first",
            id="range-backwards",
        ),
        pytest.param(
            "play_in: {first: 2026-04-14, last: 2026-04-17}",
            "play_in: {first: 2026-04-10, last: 2026-04-17}",
            "calendar.game_days.play_in.first",
            "not after regular_season",
            id="ranges-overlap",
        ),
        pytest.param(
            "thanksgiving: {first: 2025-11-27, last: 2025-11-27}",
            "thanksgiving: {first: 2025-10-01, last: 2025-10-01}",
            "calendar.off_days.thanksgiving",
            "outside the season",
            id="off-day-outside-the-season",
        ),
        pytest.param(
            'open_at: {day_offset: 1, at: "05:00"}',
            'open_at: {day_offset: 0, at: "08:00"}',
            "calendar.open_at",
            "overnight cut-over",
            id="opening-would-pin-same-day",
        ),
        pytest.param(
            'open_at: {day_offset: 1, at: "05:00"}',
            'open_at: {day_offset: 2, at: "05:00"}',
            "calendar.open_at",
            "backfill",
            id="opening-would-pin-backfill",
        ),
        pytest.param(
            "silence_alert_after_s: 108000",
            "silence_alert_after_s: 0",
            "calendar.silence_alert_after_s",
            "greater than 0",
            id="silence-not-positive",
        ),
    ],
)
def test_an_invalid_calendar_is_rejected_naming_the_field(old: str, new: str, field: str, words: str) -> None:
    assert NBA_TEXT.count(old) == 1
    with pytest.raises(PolicyError) as caught:
        parse_policy(NBA_TEXT.replace(old, new))
    problems = caught.value.problems
    assert [p.field for p in problems] == [field]
    assert words in problems[0].message
    assert problems[0].line is not None


# -- the engine's cursor ---------------------------------------------------------------------------------


def _with(calendar: CalendarSpec, policy: Policy) -> Policy:
    return policy.model_copy(update={"calendar": calendar})


@pytest.mark.parametrize(
    ("first", "last", "looks", "opened"),
    [
        # Following the clock from yesterday (the daemon): each day once, when its 05:00 ET came.
        pytest.param(
            None,
            None,
            ["2026-02-03T12:00", "2026-02-03T13:00", "2026-02-04T09:59", "2026-02-04T10:00"],
            [["2026-02-02"], [], [], ["2026-02-03"]],
            id="daemon-from-yesterday",
        ),
        # Replay: the span's days, including those already due when it begins; nothing past the span.
        pytest.param(
            "2026-02-02",
            "2026-02-04",
            ["2026-02-04T10:00", "2026-02-06T12:00"],
            [["2026-02-02", "2026-02-03"], ["2026-02-04"]],
            id="replay-span",
        ),
        # Off days are never opened.
        pytest.param(
            "2026-02-12",
            "2026-02-19",
            ["2026-02-21T00:00"],
            [["2026-02-12", "2026-02-19"]],
            id="break-skipped",
        ),
    ],
)
def test_expected_days_open_once_each_when_due(
    policy: Policy, first: str | None, last: str | None, looks: list[str], opened: list[list[str]]
) -> None:
    days = ExpectedDays(D(first) if first else None, D(last) if last else None)
    with_small = _with(SMALL, policy)
    assert [days.due(at(look), with_small) for look in looks] == [[D(d) for d in o] for o in opened]


def test_a_silence_alerts_once_until_a_completion_arrives(policy: Policy) -> None:
    days, small = ExpectedDays(), _with(SMALL, policy)
    days.heard(at("2026-02-03T09:00"))
    assert days.silence_alert(at("2026-02-04T14:59"), small) is None
    first = days.silence_alert(at("2026-02-04T15:00"), small)
    assert first is not None and first.alert == "no_completions" and "2026-02-03T09:00" in first.message
    assert days.silence_alert(at("2026-02-10T15:00"), small) is None  # once per silence
    days.heard(at("2026-02-10T16:00"))
    assert days.silence_alert(at("2026-02-11T22:00"), small) is not None  # a new silence alerts again
