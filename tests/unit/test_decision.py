"""The dependency decision table of `policies.decision.check` under the default NBA policy.

Unless a test says otherwise it evaluates at NOW (2025-12-31 03:00 ET) with reports one hour old, and pairs a
transition's expectation with a mode exactly as the policy does (`check_in_mode`).
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from policies import decision, reports
from policies.decision import Decision, check
from policies.model import Expectation, Mode, Policy, Status
from policies.reports import Report, coverage, quality_score
from tests.support.builders import default_policy
from tests.unit.policy_fixtures import FRESH, NOW, all_present, check_in_mode, healthy, report

TRANSITIONS = tuple(default_policy().transitions)
EVERY_PAIR = [pytest.param(t, m, id=f"{t}-{m.value}") for t in TRANSITIONS for m in Mode]


# -- the happy path ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("transition", "mode"), EVERY_PAIR)
def test_every_expected_input_present_and_complete_proceeds(
    policy: Policy, transition: str, mode: Mode
) -> None:
    expected = policy.transitions[transition].expectation(mode).all
    result = check_in_mode(policy, transition, mode, all_present(policy, expected))

    assert result.decision is Decision.PROCEED
    assert (result.completeness, result.quality_score) == (1.0, 1.0)
    assert result.missing == () and result.stale == ()


# -- critical inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("transition", "mode"), EVERY_PAIR)
def test_a_missing_critical_input_waits_in_every_mode(policy: Policy, transition: str, mode: Mode) -> None:
    expectation = policy.transitions[transition].expectation(mode)
    absent = expectation.critical[0]
    reports = all_present(policy, [n for n in expectation.all if n != absent])

    result = check_in_mode(policy, transition, mode, reports)

    assert result.decision is Decision.WAIT
    assert result.missing_critical == (absent,)
    assert "critical processor(s) missing" in result.reasons[0] and absent in result.reasons[0]


@pytest.mark.parametrize(("transition", "mode"), EVERY_PAIR)
def test_a_failed_critical_input_fails_in_every_mode(policy: Policy, transition: str, mode: Mode) -> None:
    expectation = policy.transitions[transition].expectation(mode)
    broken = expectation.critical[0]
    reports = all_present(policy, expectation.all, replace=[report(broken, Status.FAILED)])

    result = check_in_mode(policy, transition, mode, reports)

    assert result.decision is Decision.FAIL
    assert result.failed_critical == (broken,)
    assert broken in result.reasons[0]


def test_ten_of_eleven_games_waits_overnight_but_proceeds_degraded_same_day(policy: Policy) -> None:
    short = report("upcoming_player_game_context", games_expected=11, games_processed=10)
    default_names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all

    overnight = check_in_mode(
        policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, default_names, replace=[short])
    )
    # same_day expects only upcoming_player_game_context for this transition.
    same_day = check_in_mode(
        policy, "phase3_to_phase4", Mode.SAME_DAY, {"upcoming_player_game_context": short}
    )

    assert overnight.decision is Decision.WAIT
    assert overnight.completeness == pytest.approx((4 + 10 / 11) / 5, abs=1e-6)
    assert "does not allow degraded runs" in overnight.reasons[0]
    assert same_day.decision is Decision.PROCEED_DEGRADED
    assert same_day.completeness == pytest.approx(10 / 11, abs=1e-6)
    assert same_day.coverage == {"upcoming_player_game_context": pytest.approx(10 / 11)}


# -- the newest report wins ----------------------------------------------------------------------------

FAILURE = report("player_game_summary", Status.FAILED, at=FRESH - timedelta(minutes=30))
RETRY_SUCCESS = report("player_game_summary", Status.SUCCESS, at=FRESH)


def test_a_later_success_supersedes_an_earlier_failure_and_not_the_reverse() -> None:
    assert RETRY_SUCCESS.supersedes(FAILURE)
    assert not FAILURE.supersedes(RETRY_SUCCESS)


@pytest.mark.parametrize(
    "arrival_order",
    [
        pytest.param((FAILURE, RETRY_SUCCESS), id="failure-then-retry"),
        pytest.param((RETRY_SUCCESS, FAILURE), id="retry-then-late-delivered-failure"),
    ],
)
def test_the_newest_report_decides_whatever_order_they_arrive_in(
    policy: Policy, arrival_order: tuple[Report, Report]
) -> None:
    kept = arrival_order[0]
    for incoming in arrival_order[1:]:
        if incoming.supersedes(kept):
            kept = incoming
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all

    result = check_in_mode(
        policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, names, replace=[kept])
    )

    assert kept is RETRY_SUCCESS
    assert result.decision is Decision.PROCEED


def test_the_superseded_failure_alone_would_have_failed(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all
    reports = all_present(policy, names, replace=[FAILURE])

    assert check_in_mode(policy, "phase3_to_phase4", Mode.OVERNIGHT, reports).decision is Decision.FAIL


# -- optional inputs and completeness --------------------------------------------------------------------


def test_a_missing_optional_input_waits_overnight(policy: Policy) -> None:
    expectation = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT)
    absent = expectation.optional[0]
    reports = all_present(policy, [n for n in expectation.all if n != absent])

    result = check_in_mode(policy, "phase3_to_phase4", Mode.OVERNIGHT, reports)

    assert result.decision is Decision.WAIT
    assert result.missing == (absent,) and result.missing_critical == ()
    assert result.completeness == pytest.approx(4 / 5)


@pytest.mark.parametrize(
    ("absent", "expected_decision", "expected_completeness"),
    [
        pytest.param((), Decision.PROCEED, 1.0, id="none-missing"),
        # 4/5 = 0.8 meets the same_day minimum of 0.8 exactly.
        pytest.param(("odds_player_props",), Decision.PROCEED_DEGRADED, 0.8, id="one-missing-meets-0.8"),
        pytest.param(
            ("bigdataball_pbp", "odds_player_props"), Decision.WAIT, 0.6, id="two-missing-below-0.8"
        ),
    ],
)
def test_missing_optionals_count_toward_same_day_completeness(
    policy: Policy, absent: tuple[str, ...], expected_decision: Decision, expected_completeness: float
) -> None:
    # The full phase 2 expectation (3 critical + 2 optional) judged with the same_day thresholds.
    expectation = policy.transitions["phase2_to_phase3"].expectation(Mode.OVERNIGHT)
    reports = all_present(policy, [n for n in expectation.all if n not in absent])

    result = check(reports, expectation, policy.modes[Mode.SAME_DAY], policy, NOW)

    assert result.decision is expected_decision
    assert result.completeness == pytest.approx(expected_completeness)
    assert result.missing == absent
    if expected_decision is Decision.PROCEED_DEGRADED:
        assert "missing: odds_player_props" in result.reasons[0]
    if expected_decision is Decision.WAIT:
        assert "below minimum 0.800" in result.reasons[0]


def test_manual_runs_proceed_degraded_without_the_phase2_optionals(policy: Policy) -> None:
    expectation = policy.transitions["phase2_to_phase3"].expectation(Mode.MANUAL)
    reports = all_present(policy, expectation.critical)

    result = check_in_mode(policy, "phase2_to_phase3", Mode.MANUAL, reports)

    assert result.decision is Decision.PROCEED_DEGRADED
    assert result.completeness == pytest.approx(3 / 5)


def test_completeness_is_a_mean_over_expected_processors_one_report_each(policy: Policy) -> None:
    expectation = policy.transitions["phase2_to_phase3"].expectation(Mode.OVERNIGHT)
    only = expectation.critical[0]
    # One entry per processor: a repeated report for `only` replaces, never adds; an unexpected processor
    # (a phase 3 one) is ignored.
    reports = {only: report(only), "player_game_summary": report("player_game_summary")}
    reports[only] = report(only, at=FRESH + timedelta(minutes=1))

    result = check(reports, expectation, policy.modes[Mode.OVERNIGHT], policy, NOW)

    assert result.completeness == pytest.approx(1 / len(expectation.all))
    assert set(result.coverage) == set(expectation.all)
    assert "player_game_summary" not in result.coverage


# -- quality -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "record_count", "expected_score"),
    [
        pytest.param(Status.SUCCESS, 100, 1.0, id="success"),
        pytest.param(Status.SUCCESS, 0, 0.5, id="success-with-zero-records-is-suspect"),
        pytest.param(Status.SUCCESS, None, 1.0, id="success-without-a-count"),
        pytest.param(Status.PARTIAL, 100, 0.7, id="partial"),
        pytest.param(Status.NO_DATA, 0, 1.0, id="no-data-with-zero-records-is-expected"),
        pytest.param(Status.FAILED, 100, 0.0, id="failed"),
    ],
)
def test_quality_score_per_status_and_record_count(
    policy: Policy, status: Status, record_count: int | None, expected_score: float
) -> None:
    spec = policy.processors["player_game_summary"]
    scored = quality_score(
        report("player_game_summary", status, record_count=record_count), spec, policy.quality
    )
    assert scored == expected_score


def test_low_quality_waits_overnight_even_at_full_completeness(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all
    # Partial, but every game is covered: completeness stays 1.0, quality drops to (4 + 0.7) / 5 = 0.94.
    partial = report("team_defense_game_summary", Status.PARTIAL, games_expected=11, games_processed=11)

    result = check_in_mode(
        policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, names, replace=[partial])
    )

    assert result.completeness == 1.0
    assert result.quality_score == pytest.approx(0.94)
    assert result.decision is Decision.WAIT
    assert result.reasons[0].startswith("quality 0.940 below 0.950")


def test_a_success_that_wrote_zero_records_lowers_quality_enough_to_wait(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all
    empty = report("player_game_summary", Status.SUCCESS, record_count=0)

    result = check_in_mode(
        policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, names, replace=[empty])
    )

    assert result.quality_score == pytest.approx((4 + 0.5) / 5)
    assert result.decision is Decision.WAIT
    assert "quality" in result.reasons[0]


# -- prediction_coordinator: coverage from completion_pct, quality from completed_predictions ------------


@pytest.mark.parametrize(
    ("completion_pct", "expected_coverage"),
    [
        pytest.param(96, 0.96, id="96-percent"),
        pytest.param(100, 1.0, id="100-percent"),
        pytest.param(0, 0.0, id="0-percent"),
        pytest.param(130, 1.0, id="over-100-clamped"),
    ],
)
def test_prediction_coverage_comes_from_completion_pct(
    policy: Policy, completion_pct: float, expected_coverage: float
) -> None:
    spec = policy.processors["prediction_coordinator"]
    got = coverage(report("prediction_coordinator", completion_pct=completion_pct), spec, policy.quality)
    assert got == pytest.approx(expected_coverage)


def _predictions(completed: int | None, completion_pct: float = 96) -> dict[str, Report]:
    counts = {} if completed is None else {"completed_predictions": completed}
    return {
        "prediction_coordinator": report(
            "prediction_coordinator", completion_pct=completion_pct, counts=counts
        )
    }


@pytest.mark.parametrize(
    ("mode", "expected_decision"),
    [
        pytest.param(Mode.OVERNIGHT, Decision.WAIT, id="overnight-needs-100-percent"),
        pytest.param(Mode.SAME_DAY, Decision.PROCEED_DEGRADED, id="same-day-accepts-96-percent"),
    ],
)
def test_96_percent_of_predictions_is_completeness_096(
    policy: Policy, mode: Mode, expected_decision: Decision
) -> None:
    result = check_in_mode(policy, "phase5_to_phase6", mode, _predictions(completed=500))

    assert result.completeness == pytest.approx(0.96)
    assert result.quality_score == 1.0
    assert result.decision is expected_decision


@pytest.mark.parametrize(
    ("completed", "expected_quality"),
    [
        pytest.param(9, 0.0, id="9-below-min-records"),
        pytest.param(0, 0.0, id="none-completed"),
        pytest.param(None, 0.0, id="count-not-reported"),
        pytest.param(10, 1.0, id="exactly-min-records"),
    ],
)
def test_too_few_completed_predictions_zeroes_quality(
    policy: Policy, completed: int | None, expected_quality: float
) -> None:
    spec = policy.processors["prediction_coordinator"]
    assert (
        quality_score(_predictions(completed)["prediction_coordinator"], spec, policy.quality)
        == expected_quality
    )


@pytest.mark.parametrize("mode", [Mode.OVERNIGHT, Mode.SAME_DAY, Mode.MANUAL])
def test_fewer_than_ten_completed_predictions_waits_on_quality(policy: Policy, mode: Mode) -> None:
    result = check_in_mode(policy, "phase5_to_phase6", mode, _predictions(completed=9, completion_pct=100))

    assert result.completeness == 1.0
    assert result.quality_score == 0.0
    assert result.decision is Decision.WAIT
    assert result.reasons[0].startswith("quality 0.000 below")


# -- staleness -----------------------------------------------------------------------------------------

MAX_AGE = timedelta(seconds=43200)  # the default policy's max_input_age_s


def test_inputs_older_than_max_age_wait_overnight_with_a_stale_reason(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all
    old = NOW - MAX_AGE - timedelta(seconds=1)

    result = check_in_mode(policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, names, at=old))

    assert result.decision is Decision.WAIT
    assert result.stale == names
    assert result.reasons[0].startswith("inputs stale")


def test_stale_inputs_still_proceed_same_day_and_are_reported(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.SAME_DAY).all
    old = NOW - MAX_AGE - timedelta(seconds=1)

    result = check_in_mode(policy, "phase3_to_phase4", Mode.SAME_DAY, all_present(policy, names, at=old))

    assert result.decision is Decision.PROCEED
    assert result.stale == names


def test_one_fresh_input_means_the_newest_report_is_not_stale(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all
    old = NOW - MAX_AGE - timedelta(seconds=1)
    fresh = healthy(policy, names[0], at=FRESH)

    result = check_in_mode(
        policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, names, at=old, replace=[fresh])
    )

    assert result.decision is Decision.PROCEED
    assert result.stale == names[1:]


def test_an_input_exactly_max_age_old_is_not_stale(policy: Policy) -> None:
    names = policy.transitions["phase3_to_phase4"].expectation(Mode.OVERNIGHT).all

    result = check_in_mode(
        policy, "phase3_to_phase4", Mode.OVERNIGHT, all_present(policy, names, at=NOW - MAX_AGE)
    )

    assert result.decision is Decision.PROCEED
    assert result.stale == ()


# -- fail closed ---------------------------------------------------------------------------------------


def test_a_check_that_cannot_be_evaluated_waits_with_the_reason(policy: Policy) -> None:
    # Built by hand, bypassing validation: the policy declares no processor called "ghost".
    expectation = Expectation.model_construct(critical=("ghost",), optional=())

    result = check({"ghost": report("ghost")}, expectation, policy.modes[Mode.OVERNIGHT], policy, NOW)

    assert result.decision is Decision.WAIT
    assert result.reasons[0].startswith("check could not be evaluated")
    assert "KeyError" in result.reasons[0]
    assert result.missing == ("ghost",)


def test_an_error_inside_an_otherwise_passing_check_waits_instead_of_proceeding(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_coverage(*_args: object) -> float:
        raise RuntimeError("coverage exploded")

    monkeypatch.setattr(decision, "coverage", broken_coverage)
    expectation = policy.transitions["phase3_to_phase4"].expectation(Mode.SAME_DAY)

    result = check(
        all_present(policy, expectation.all), expectation, policy.modes[Mode.SAME_DAY], policy, NOW
    )

    assert result.decision is Decision.WAIT
    assert not result.decision.proceeds
    assert result.reasons == ("check could not be evaluated: RuntimeError: coverage exploded",)
    assert (result.completeness, result.quality_score) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("value", "clamped"), [(-0.0, 0.0), (-1.0, 0.0), (0.25, 0.25), (1.0, 1.0), (2.0, 1.0)]
)
def test_coverage_is_clamped_to_0_and_1_with_a_positive_zero(value: float, clamped: float) -> None:
    got = reports._clamp(value)
    assert got == clamped and math.copysign(1.0, got) == 1.0


def test_a_nan_coverage_clamps_to_1_as_max_min_did() -> None:
    assert reports._clamp(float("nan")) == 1.0
