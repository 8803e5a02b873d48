"""The HTML pages (ops/web) rendered from real replays of the example days: what a person reads on them,
the attributes the browser test relies on, escaping, and the one-file report."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from ops.replay import ReplayResult, read_recording, replay
from ops.report import date_boards, write_report
from ops.web import render_date, render_index, render_report
from ops.web.present import relative, zone_of
from policies.model import Policy
from tests.support.html_text import Element, parse
from views.board import DayBoard, PhaseStatus, zone_label
from views.history import DayHistory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRITICAL, SAME_DAY, OVERNIGHT, DUPLICATES = (
    "critical_never_reports.jsonl",
    "same_day_upcoming_only.jsonl",
    "overnight_full_cascade.jsonl",
    "duplicates_out_of_order_unknown.jsonl",
)
HOSTILE = '<script>alert("pwned")</script>&<b>'


def replayed(
    policy: Policy, *names: str, swap: tuple[str, str] | None = None, until: datetime | None = None
) -> ReplayResult:
    lines = [line for name in names for line in (EXAMPLES / name).read_text().splitlines()]
    if swap is not None:
        old, new = swap
        lines = [line.replace(old, new) for line in lines]
    return anyio.run(replay, read_recording(lines, "+".join(names)), policy, until)


def pages(policy: Policy, *names: str) -> list[tuple[DayBoard, DayHistory]]:
    result = replayed(policy, *names)
    assert result.until is not None
    return date_boards(result.rows, policy, result.until)


def date_page(policy: Policy, name: str) -> Element:
    [(board, day)] = pages(policy, name)
    return parse(render_date(board, day, refresh_s=None))


def rows_of(result: ReplayResult, kind: str, game_date: str) -> list[Mapping[str, Any]]:
    return [r for r in result.rows if r["kind"] == kind and r.get("game_date") == game_date]


def test_a_missing_critical_input_shows_phase_2_waiting_on_it_and_every_later_phase_pending(
    policy: Policy,
) -> None:
    page = date_page(policy, CRITICAL)

    # Self-heal gave up, yet the phase still waits on it: the input arriving now would trigger it.
    phase2 = page.one("section", data_phase="Phase 2")
    assert phase2.attrs["data-status"] == "waiting"
    assert "Waiting on a critical input" in phase2.text
    assert "waiting on critical nbac_gamebook; self-heal gave up: needs an operator" in phase2.text
    absent = phase2.one("tr", **{"class": "absent critical"})
    assert absent.text.startswith("nbac_gamebook critical not arrived")
    for label in ("Phase 3", "Phase 4", "Phase 5", "Phase 6"):
        later = page.one("section", data_phase=label)
        assert later.attrs["data-status"] == "pending"
        assert "Pending" in later.text
    summary = page.one("div", **{"class": "summary st-failed s-waiting"})
    assert "Phase 2 raw · 4/5 inputs · waiting on critical nbac_gamebook; self-heal gave up" in summary.text


def test_a_live_page_before_the_fallback_shows_the_wait_and_how_long_until_each_deadline(
    policy: Policy,
) -> None:
    now = datetime(2026, 2, 4, 9, 0, tzinfo=UTC)  # 04:00 AM ET: every input but nbac_gamebook is in
    result = replayed(policy, CRITICAL, until=now)
    [(board, day)] = date_boards(result.rows, policy, now)
    page = parse(render_date(board, day, refresh_s=30))

    phase2 = page.one("section", data_phase="Phase 2")
    assert phase2.attrs["data-status"] == "waiting"
    assert "Waiting on a critical input" in phase2.text
    assert [li.text for li in phase2.find_all("li")] == [
        "Fallback 06:00 AM ET, Wed Feb 4: in 2 h 00 min",
        "Self-heal 08:00 AM ET, Wed Feb 4: in 4 h 00 min",
    ]
    headline = page.one("p", **{"class": "headline"}).text
    assert headline == "In progress Phase 2 raw · 4/5 inputs · waiting on critical nbac_gamebook"
    eta = page.one("dl", **{"class": "facts"}).find_all("div")[1].text
    assert eta.startswith("ETA 05:30 AM ET, Wed Feb 4 (in 1 h 30 min)")


@pytest.mark.parametrize(
    "zone", ["America/New_York", "America/Chicago", "America/Los_Angeles", "UTC", "Europe/Paris"]
)
def test_the_zone_behind_a_board_label_is_the_policy_zone(zone: str) -> None:
    assert zone_of(zone_label(zone)) == zone


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "in 0 min"), (59, "in 59 min"), (60, "in 1 h 00 min"), (125, "in 2 h 05 min"), (-35, "35 min ago")],
)
def test_times_relative_to_now_read_in_hours_and_minutes(minutes: int, text: str) -> None:
    now = datetime(2026, 2, 4, 9, 0, tzinfo=UTC)
    assert relative(now + timedelta(minutes=minutes), now) == text


def test_deadlines_show_eastern_time_their_outcome_and_the_utc_instant(policy: Policy) -> None:
    phase2 = date_page(policy, CRITICAL).one("section", data_phase="Phase 2")

    fallback, self_heal = phase2.find_all("li")
    assert fallback.text == "Fallback 06:00 AM ET, Wed Feb 4: missed: not enough to trigger, alert sent"
    assert self_heal.text.startswith(
        "Self-heal 08:00 AM ET, Wed Feb 4: failed: a critical input is still missing"
    )
    arrived = phase2.find_all("td", title="2026-02-04 06:02:42Z")
    assert [cell.text for cell in arrived] == ["01:02:42 AM, Wed Feb 4"]  # odds_game_lines, in ET


def test_the_date_page_lists_every_evaluation_with_time_cause_decision_and_reasons(policy: Policy) -> None:
    result = replayed(policy, CRITICAL)
    assert result.until is not None
    [(board, day)] = date_boards(result.rows, policy, result.until)
    page = parse(render_date(board, day, refresh_s=None))

    decisions = rows_of(result, "decision", "2026-02-03")
    history = page.one("table", **{"class": "history"}).one("tbody").find_all("tr")
    assert len(history) == len(decisions) == 44
    first = [cell.text for cell in history[0].find_all("td")]
    assert first == [
        "01:02:42 AM, Wed Feb 4 2026-02-04 06:02:42Z",
        "phase2_to_phase3",
        "event",
        "WAIT",
        "20%",
        "1.00",
        "nbac_gamebook, nbac_boxscores, bigdataball_pbp, odds_player_props",
        "critical processor(s) missing: nbac_gamebook, nbac_boxscores",
    ]
    assert {row.find_all("td")[2].text for row in history} == {"event", "timer"}


def test_the_date_page_lists_every_alert_with_severity_and_what_comes_next(policy: Policy) -> None:
    result = replayed(policy, CRITICAL)
    assert result.until is not None
    [(board, day)] = date_boards(result.rows, policy, result.until)
    page = parse(render_date(board, day, refresh_s=None))

    alerts = page.one("table", **{"class": "alerts"}).one("tbody").find_all("tr")
    shown = [row.find_all("td")[2].text for row in alerts]
    assert sorted(shown) == sorted(r["alert"] for r in rows_of(result, "alert", "2026-02-03"))
    assert shown[0] == "fallback_deadline_missed"  # in time order
    fallback = next(row for row in alerts if "fallback_deadline_missed" in row.text)
    assert fallback.find_all("td")[0].text == "06:00:00 AM, Wed Feb 4"
    assert "CRITICAL" in fallback.text
    assert "self-heal deadline: trigger if the critical inputs are in" in fallback.text
    assert "(08:00 AM ET, Wed Feb 4)" in fallback.text


def test_a_degraded_day_says_which_phase_went_out_degraded(policy: Policy) -> None:
    page = date_page(policy, SAME_DAY)

    phase5 = page.one("section", data_phase="Phase 5")
    assert phase5.attrs["data-status"] == "degraded"
    assert "Complete (degraded)" in phase5.text
    assert "degraded" in phase5.one("p", **{"class": "trigger"}).text
    assert (
        "every phase triggered; degraded: Phase 5 predictions" in page.one("p", **{"class": "headline"}).text
    )


def without_calendar(policy: Policy) -> Policy:
    """Several example days replayed together span weeks of the season: with the calendar, every silent game
    day between them would be opened too (tests/unit/test_silent_days.py). These tests are about the pages."""
    return policy.model_copy(update={"calendar": None})


def test_the_index_has_one_row_per_date_newest_first_linking_relative_to_the_page(policy: Policy) -> None:
    boards = [board for board, _ in pages(without_calendar(policy), OVERNIGHT, CRITICAL, SAME_DAY)]
    page = parse(render_index(boards, boards[0].generated_at, refresh_s=None))

    rows = page.one("table").one("tbody").find_all("tr")
    assert [row.attrs["data-date"] for row in rows] == ["2026-02-03", "2026-01-15", "2025-12-30"]
    assert [row.one("a").attrs["href"] for row in rows] == [
        "dates/2026-02-03",
        "dates/2026-01-15",
        "dates/2025-12-30",
    ]
    failed = rows[0]
    assert failed.attrs["data-state"] == "failed"
    assert "Failed Phase 2 raw · 4/5 inputs · waiting on critical nbac_gamebook" in failed.text
    assert "14%" in failed.text
    strip = failed.one("span", **{"class": "strip"}).find_all("span")
    assert [chip.attrs["title"] for chip in strip] == [
        "Phase 2 raw: Waiting on a critical input",
        "Phase 3 analytics: Pending",
        "Phase 4 precompute: Pending",
        "Phase 5 predictions: Pending",
        "Phase 6 export: Pending",
    ]
    assert "100%" in rows[2].text and "Complete" in rows[2].text


def test_every_phase_row_carries_its_label_and_one_of_the_board_statuses(policy: Policy) -> None:
    statuses = {s.value for s in PhaseStatus}
    for name in (CRITICAL, SAME_DAY, OVERNIGHT, DUPLICATES):
        phases = [s for s in date_page(policy, name).find_all("section") if "data-phase" in s.attrs]
        assert [s.attrs["data-phase"] for s in phases] == [
            "Phase 2",
            "Phase 3",
            "Phase 4",
            "Phase 5",
            "Phase 6",
        ]
        assert {s.attrs["data-status"] for s in phases} <= statuses, name


def test_live_pages_refresh_only_when_asked_and_the_report_never(policy: Policy) -> None:
    pairs = pages(policy, CRITICAL)
    board, day = pairs[0]

    def refresh(html: str) -> list[str]:
        return [m.attrs["content"] for m in parse(html).find_all("meta", **{"http-equiv": "refresh"})]

    assert refresh(render_date(board, day, refresh_s=30)) == ["30"]
    assert refresh(render_index([board], board.generated_at, refresh_s=15)) == ["15"]
    assert refresh(render_date(board, day, refresh_s=None)) == []
    assert refresh(render_report(pairs, "t")) == []


def test_a_hostile_processor_name_stays_text_on_every_page(policy: Policy) -> None:
    result = replayed(policy, DUPLICATES, swap=("NbacInjuryReportProcessor", HOSTILE.replace('"', '\\"')))
    assert result.until is not None
    [(board, day)] = date_boards(result.rows, policy, result.until)

    for html in (
        render_date(board, day, refresh_s=None),
        render_index([board], board.generated_at, refresh_s=None),
        render_report([(board, day)], HOSTILE),
    ):
        assert "<script" not in html.lower()
        assert "<b>" not in html
        page = parse(html)
        assert not page.find_all("script") and not page.find_all("b")
        if "data-board" in html:
            unknown = page.one("p", **{"class": "unknown"})
            assert unknown.text == f"Not counted (matches no policy name): {HOSTILE}"
            assert (
                f"processor '{HOSTILE}' on phase2_to_phase3" in page.one("table", **{"class": "alerts"}).text
            )


def test_the_report_is_one_self_contained_file_with_an_anchor_per_date(
    policy: Policy, tmp_path: Path
) -> None:
    policy = without_calendar(policy)
    result = replayed(policy, OVERNIGHT, SAME_DAY, CRITICAL, DUPLICATES)
    path = tmp_path / "report.html"

    assert write_report(result.rows, policy, path, result.until) == 4
    html = path.read_text(encoding="utf-8")
    page = parse(html)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not page.find_all("script") and not page.find_all("link") and not page.find_all("img")
    assert "@import" not in html and "url(" not in html
    links = [a.attrs["href"] for a in page.one("table", **{"class": "dates"}).find_all("a")]
    anchors = [article.attrs["id"] for article in page.find_all("article")]
    assert links == ["#" + anchor for anchor in anchors]
    assert anchors == ["d-2025-12-30", "d-2026-01-15", "d-2026-02-03", "d-2026-03-07"]
    assert page.one("title").text == "cascade replay: 2025-12-30 to 2026-03-07 (4 dates)"
    assert "Not complete: 2026-02-03 (failed)" in page.one("nav").text
    for article in page.find_all("article"):
        history = article.one("details", **{"class": "history-box"})
        assert "open" not in history.attrs  # collapsed: a 1,000-date report stays light


def test_the_report_shows_state_as_of_the_end_of_the_replay(policy: Policy, tmp_path: Path) -> None:
    result = replayed(policy, CRITICAL)
    path = tmp_path / "r.html"
    assert result.until is not None

    write_report(result.rows, policy, path, result.until)

    footer = parse(path.read_text(encoding="utf-8")).one("footer")
    assert footer.text == "Replay report, state as of 01:41 PM ET, Thu Feb 5 (the end of the replay)"


def test_no_page_offers_an_action_that_changes_anything(policy: Policy) -> None:
    pairs = pages(policy, CRITICAL, SAME_DAY)
    board, day = pairs[0]
    for html in (
        render_index([b for b, _ in pairs], board.generated_at, refresh_s=30),
        render_date(board, day, refresh_s=30),
        render_report(pairs, "r"),
    ):
        page = parse(html)
        assert not page.find_all("form") and not page.find_all("button") and not page.find_all("input")
        assert not re.search(r"\smethod\s*=|\sformaction\s*=", html, re.IGNORECASE)


def test_an_index_without_dates_says_so() -> None:
    page = parse(render_index([], now=datetime(2026, 2, 4, 6, tzinfo=UTC), refresh_s=None))

    assert page.one("main").text == "Recent dates No date has any input yet."
    assert page.one("footer").text == "Updated 06:00:00 AM UTC, Wed Feb 4"
