"""Every state transition of the per-(game_date, transition) machine, driven with explicit times."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from policies.breaker import BreakerState
from policies.decision import Decision
from policies.model import Mode, Policy, Status
from policies.modes import ModeHints
from router import events as ev
from router.effects import (
    DuplicateIgnored,
    Effect,
    EmitDecision,
    OpenDownstream,
    PinMode,
    PublishTrigger,
    RaiseAlert,
    RecordCompletion,
    SetTimer,
    Source,
    TransitionEnded,
)
from router.keys import Key
from router.machine import step
from router.state import DateState, Phase
from tests.support.builders import arrived, key, utc

PHASE2 = key("phase2_to_phase3", "2025-12-30")
PHASE2_ALL = ["odds_game_lines", "nbac_gamebook", "nbac_boxscores", "bigdataball_pbp", "odds_player_props"]
NIGHT = utc("2025-12-31T06:00")  # 01:00 ET the morning after the games: overnight


class Driver:
    """Feeds events into `step` and keeps the state and every effect, like the shell does."""

    def __init__(self, policy: Policy, key: Key = PHASE2, state: DateState | None = None) -> None:
        self.policy, self.key, self.state = policy, key, state
        self.effects: list[Effect] = []

    def feed(self, event: ev.Event, now: datetime) -> list[Effect]:
        result = step(self.state, self.key, event, now, self.policy)
        self.state = result.state
        self.effects.extend(result.effects)
        return list(result.effects)

    def complete(self, processors: list[str], now: datetime, **fields: object) -> list[Effect]:
        produced: list[Effect] = []
        for offset, name in enumerate(processors):
            at = now + timedelta(seconds=offset)
            produced += self.feed(arrived(name, at, **fields), at)  # type: ignore[arg-type]
        return produced

    def confirm(self, now: datetime) -> list[Effect]:
        assert self.state is not None and self.state.attempt is not None
        return self.feed(ev.PublishSucceeded(self.state.attempt.trigger_id, now), now)

    def tick(self, now: datetime) -> list[Effect]:
        return self.feed(ev.Tick(), now)

    @property
    def s(self) -> DateState:
        assert self.state is not None
        return self.state


def of(effects: list[Effect], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in effects if isinstance(e, kind)]


def alerts(effects: list[Effect]) -> list[str]:
    return [e.alert for e in of(effects, RaiseAlert)]


# --- opening and collecting -----------------------------------------------------------------------------


def test_first_completion_opens_the_key_pins_mode_records_and_waits(policy: Policy) -> None:
    d = Driver(policy)
    effects = d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    assert d.s.mode is Mode.OVERNIGHT and d.s.phase is Phase.COLLECTING
    assert of(effects, PinMode) == [PinMode(PHASE2, Mode.OVERNIGHT, False)]
    assert len(of(effects, RecordCompletion)) == 1
    [decision] = of(effects, EmitDecision)
    assert decision.result.decision is Decision.WAIT and decision.cause == "event"
    [timer] = of(effects, SetTimer)
    assert timer.at == NIGHT + timedelta(seconds=policy.modes[Mode.OVERNIGHT].recheck_every_s or 0)


def test_all_inputs_complete_publishes_but_is_not_triggered_until_confirmed(policy: Policy) -> None:
    d = Driver(policy)
    effects = d.complete(PHASE2_ALL, NIGHT)
    [publish] = of(effects, PublishTrigger)
    assert publish.trigger_id == PHASE2.trigger_id
    assert publish.topic == "nba-phase3-trigger" and publish.source is Source.CASCADE and not publish.degraded
    assert d.s.phase is Phase.PUBLISHING and d.s.published is None
    assert d.s.wake_at is None  # nothing to re-check while the publish is outstanding


def test_confirmed_publish_marks_triggered_and_opens_the_next_transition_in_the_same_mode(
    policy: Policy,
) -> None:
    d = Driver(policy)
    d.complete(PHASE2_ALL, NIGHT)
    effects = d.confirm(NIGHT + timedelta(seconds=9))
    assert d.s.phase is Phase.TRIGGERED
    assert d.s.published is not None and d.s.published.trigger_id == PHASE2.trigger_id
    assert of(effects, OpenDownstream) == [
        OpenDownstream(key("phase3_to_phase4", "2025-12-30"), Mode.OVERNIGHT, None)
    ]
    [ended] = of(effects, TransitionEnded)
    assert ended.outcome == "triggered" and ended.source is Source.CASCADE


def test_redelivered_message_changes_nothing(policy: Policy) -> None:
    d = Driver(policy)
    event = arrived("odds_game_lines", NIGHT, message_id="dup-1")
    d.feed(event, NIGHT)
    before = d.s
    effects = d.feed(event, NIGHT + timedelta(seconds=30))
    assert effects == [DuplicateIgnored(PHASE2, "dup-1")]
    assert d.s == before


def test_input_after_the_trigger_is_recorded_but_never_triggers_again(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(PHASE2_ALL, NIGHT)
    d.confirm(NIGHT + timedelta(seconds=9))
    later = NIGHT + timedelta(minutes=20)
    effects = d.feed(arrived("nbac_gamebook", later), later)
    assert len(of(effects, RecordCompletion)) == 1
    assert of(effects, PublishTrigger) == [] and of(effects, EmitDecision) == []
    assert d.s.phase is Phase.TRIGGERED


def test_unknown_processor_is_recorded_and_alerted_once_but_never_counted(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    first = d.feed(arrived(None, NIGHT, raw_name="NbacInjuryReportProcessor"), NIGHT)
    second = d.feed(arrived(None, NIGHT, raw_name="NbacInjuryReportProcessor"), NIGHT)
    assert alerts(first) == ["unknown_processor"] and alerts(second) == []
    assert d.s.unknown == {"NbacInjuryReportProcessor"}
    assert set(d.s.reports) == {"odds_game_lines"}
    assert d.s.last is not None and d.s.last.completeness == pytest.approx(0.2)


def test_an_older_retry_delivered_late_does_not_replace_the_newer_report(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("nbac_boxscores", NIGHT), NIGHT)
    stale = arrived("nbac_boxscores", NIGHT - timedelta(minutes=10), status=Status.FAILED)
    effects = d.feed(stale, NIGHT + timedelta(minutes=1))
    assert d.s.reports["nbac_boxscores"].status is Status.SUCCESS
    assert d.s.breaker.failures == 0 and "critical_input_failed" not in alerts(effects)


# --- failure, recovery and the breaker ------------------------------------------------------------------


def test_failed_critical_input_fails_and_a_later_success_recovers(policy: Policy) -> None:
    d = Driver(policy)
    effects = d.feed(arrived("nbac_gamebook", NIGHT, status=Status.FAILED), NIGHT)
    assert d.s.phase is Phase.FAILED and alerts(effects) == ["critical_input_failed"]
    retry = NIGHT + timedelta(minutes=15)
    effects = d.complete(PHASE2_ALL, retry)
    assert d.s.phase is Phase.PUBLISHING
    assert len(of(effects, PublishTrigger)) == 1


def test_five_failed_inputs_open_the_breaker_once_and_good_data_closes_it(policy: Policy) -> None:
    d = Driver(policy)
    raised: list[str] = []
    for minute in range(6):
        at = NIGHT + timedelta(minutes=minute)
        raised += alerts(d.feed(arrived("nbac_gamebook", at, status=Status.FAILED), at))
    assert raised.count("circuit_open") == 1
    assert d.s.breaker.state is BreakerState.OPEN and d.s.phase is Phase.BREAKER_OPEN
    assert d.s.wake_at == d.s.breaker.reopens_at(policy.breaker)
    healed = NIGHT + timedelta(minutes=10)
    d.feed(arrived("nbac_gamebook", healed), healed)
    assert d.s.breaker.state is BreakerState.CLOSED and d.s.breaker.failures == 0


def test_failed_publish_is_retried_with_backoff_and_the_same_trigger_id(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(PHASE2_ALL, NIGHT)
    failed_at = NIGHT + timedelta(seconds=10)
    effects = d.feed(ev.PublishFailed(PHASE2.trigger_id, "unavailable"), failed_at)
    assert d.s.phase is Phase.COLLECTING and d.s.published is None
    assert alerts(effects) == ["publish_failed"]
    assert d.s.retry_at == failed_at + timedelta(seconds=policy.publish_retry.initial_s)
    assert d.tick(failed_at + timedelta(seconds=1)) == []  # woken early: nothing due yet
    retried = d.tick(d.s.retry_at)
    [publish] = of(retried, PublishTrigger)
    assert publish.trigger_id == PHASE2.trigger_id and d.s.phase is Phase.PUBLISHING


def test_repeated_publish_failures_open_the_breaker_then_half_open_retries(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(PHASE2_ALL, NIGHT)
    now = NIGHT
    raised: list[str] = []
    for _ in range(policy.breaker.failure_threshold):
        now += timedelta(seconds=1)
        raised += alerts(d.feed(ev.PublishFailed(PHASE2.trigger_id, "unavailable"), now))
        if d.s.phase is Phase.BREAKER_OPEN:
            break
        assert d.s.retry_at is not None
        now = d.s.retry_at
        assert len(of(d.tick(now), PublishTrigger)) == 1
    assert d.s.phase is Phase.BREAKER_OPEN and raised.count("circuit_open") == 1
    reopen = d.s.breaker.reopens_at(policy.breaker)
    assert reopen is not None and d.s.wake_at == reopen
    assert of(d.tick(reopen - timedelta(seconds=1)), PublishTrigger) == []
    trial = d.tick(reopen)
    assert d.s.breaker.state is BreakerState.HALF_OPEN and len(of(trial, PublishTrigger)) == 1
    d.confirm(reopen + timedelta(seconds=1))
    assert d.s.phase is Phase.TRIGGERED and d.s.breaker.state is BreakerState.CLOSED


def test_operator_reset_closes_the_breaker_and_re_evaluates(policy: Policy) -> None:
    d = Driver(policy)
    for minute in range(5):
        at = NIGHT + timedelta(minutes=minute)
        d.feed(arrived("nbac_gamebook", at, status=Status.FAILED), at)
    assert d.s.phase is Phase.BREAKER_OPEN
    effects = d.feed(ev.ResetBreaker("oncall"), NIGHT + timedelta(minutes=6))
    assert d.s.breaker.state is BreakerState.CLOSED
    [decision] = of(effects, EmitDecision)
    assert decision.cause == "operator" and d.s.phase is Phase.FAILED


# --- modes ----------------------------------------------------------------------------------------------


def test_same_day_mode_stays_pinned_after_midnight(policy: Policy) -> None:
    same_day = key("phase3_to_phase4", "2026-01-15")
    d = Driver(policy, same_day)
    morning = utc("2026-01-15T15:00")  # 10:00 ET on the game date
    d.feed(arrived("team_defense_game_summary", morning), morning)
    assert d.s.mode is Mode.SAME_DAY
    after_midnight = utc("2026-01-16T05:30")  # 00:30 ET the next day: fresh detection would say overnight
    d.feed(arrived("team_offense_game_summary", after_midnight), after_midnight)
    assert d.s.mode is Mode.SAME_DAY


def test_explicit_mode_in_a_later_message_overrides_the_pin(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    effects = d.feed(arrived("nbac_gamebook", NIGHT, hints=ModeHints(processing_mode="same_day")), NIGHT)
    assert d.s.mode is Mode.SAME_DAY and d.s.mode_explicit
    assert PinMode(PHASE2, Mode.SAME_DAY, True) in effects


def test_mode_pinned_in_the_shared_record_replaces_the_local_guess(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    d.feed(ev.Synced((), mode=Mode.MANUAL), NIGHT)
    assert d.s.mode is Mode.MANUAL


def test_a_key_opened_elsewhere_opens_here_in_the_shared_mode(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(ev.Synced((), mode=Mode.TOMORROW), NIGHT)
    assert d.s.mode is Mode.TOMORROW


def test_backfill_records_and_evaluates_but_never_cascades(policy: Policy) -> None:
    d = Driver(policy)
    hints = ModeHints(skip_downstream_trigger=True)
    effects: list[Effect] = []
    for name in PHASE2_ALL:
        effects += d.feed(arrived(name, NIGHT, hints=hints), NIGHT)
    assert d.s.mode is Mode.BACKFILL and d.s.phase is Phase.RECORDING
    assert of(effects, PublishTrigger) == []
    assert of(effects, EmitDecision)[-1].result.decision is Decision.PROCEED
    assert d.s.wake_at is None
    assert d.tick(NIGHT + timedelta(days=2)) == []


def test_manual_mode_is_one_shot_without_periodic_rechecks(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT, hints=ModeHints(trigger_source="manual")), NIGHT)
    assert d.s.mode is Mode.MANUAL and d.s.wake_at is None


# --- timers and deadlines -------------------------------------------------------------------------------


def test_recheck_runs_on_the_mode_cadence_without_messages(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    wake = d.s.wake_at
    assert wake == NIGHT + timedelta(minutes=10)
    effects = d.tick(wake)
    [decision] = of(effects, EmitDecision)
    assert decision.cause == "timer" and d.s.wake_at == wake + timedelta(minutes=10)


def test_fallback_deadline_without_critical_inputs_alerts_and_keeps_waiting(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(["odds_game_lines", "nbac_boxscores", "bigdataball_pbp", "odds_player_props"], NIGHT)
    fallback = utc("2025-12-31T11:00")  # 06:00 ET
    effects = d.tick(fallback)
    [alert] = of(effects, RaiseAlert)
    assert alert.alert == "fallback_deadline_missed" and alert.severity.value == "CRITICAL"
    assert of(effects, PublishTrigger) == [] and d.s.fallback_done and d.s.phase is Phase.COLLECTING


def test_fallback_deadline_proceeds_degraded_when_criticals_are_present(policy: Policy) -> None:
    same_day = key("phase3_to_phase4", "2026-01-15")
    d = Driver(policy, same_day)
    morning = utc("2026-01-15T15:00")
    # Complete coverage but poor quality: the normal check waits, the fallback deadline lets it through.
    d.feed(arrived("upcoming_player_game_context", morning, status=Status.PARTIAL, games_expected=10,
                   games_processed=10), morning)  # fmt: skip
    assert d.s.last is not None and d.s.last.decision is Decision.WAIT
    effects = d.tick(utc("2026-01-15T16:30") + timedelta(seconds=1800))  # 11:30 ET + the 30 min offset
    [publish] = of(effects, PublishTrigger)
    assert publish.source is Source.FALLBACK and publish.degraded


def test_self_heal_proceeds_degraded_when_only_optional_inputs_are_missing(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(["odds_game_lines", "nbac_gamebook", "nbac_boxscores"], NIGHT)
    assert alerts(d.tick(utc("2025-12-31T11:00"))) == ["fallback_deadline_missed"]
    effects = d.tick(utc("2025-12-31T13:00"))  # 08:00 ET
    assert alerts(effects) == ["self_heal"]
    [publish] = of(effects, PublishTrigger)
    assert publish.source is Source.SELF_HEAL and publish.degraded
    d.confirm(utc("2025-12-31T13:00:01"))
    assert d.s.phase is Phase.TRIGGERED_DEGRADED


def test_self_heal_without_critical_inputs_fails_and_asks_for_a_human(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(["odds_game_lines", "nbac_boxscores"], NIGHT)
    effects = d.tick(utc("2025-12-31T13:00"))
    assert alerts(effects) == ["self_heal", "manual_intervention_required"]
    assert of(effects, PublishTrigger) == []
    [ended] = of(effects, TransitionEnded)
    assert ended.outcome == "failed" and d.s.phase is Phase.FAILED
    assert d.s.wake_at is None  # nothing left to do until new input arrives


def test_downstream_opened_by_upstream_fires_its_deadlines_with_no_messages_at_all(policy: Policy) -> None:
    downstream = key("phase3_to_phase4", "2025-12-30")
    d = Driver(policy, downstream)
    d.feed(ev.OpenedByUpstream(Mode.OVERNIGHT, "c-1"), NIGHT)
    assert d.s.mode is Mode.OVERNIGHT and d.s.correlation_id == "c-1"
    raised: list[str] = []
    while d.s.wake_at is not None:
        raised += alerts(d.tick(d.s.wake_at))
    assert raised == ["fallback_deadline_missed", "self_heal", "manual_intervention_required"]
    assert d.s.phase is Phase.FAILED


# --- claims and operators -------------------------------------------------------------------------------


def test_claim_held_by_another_instance_waits_for_its_lease(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(PHASE2_ALL, NIGHT)
    lease_until = NIGHT + timedelta(seconds=60)
    d.feed(ev.ClaimHeldElsewhere(PHASE2.trigger_id, lease_until), NIGHT + timedelta(seconds=5))
    assert d.s.phase is Phase.COLLECTING and d.s.wake_at == lease_until
    assert len(of(d.tick(lease_until), PublishTrigger)) == 1


def test_trigger_published_by_another_instance_is_adopted_without_publishing(policy: Policy) -> None:
    d = Driver(policy)
    effects = d.complete(PHASE2_ALL, NIGHT)
    effects = d.feed(ev.AlreadyPublished(PHASE2.trigger_id, NIGHT), NIGHT + timedelta(seconds=5))
    assert d.s.phase is Phase.TRIGGERED and of(effects, PublishTrigger) == []
    assert len(of(effects, OpenDownstream)) == 1


def test_operator_force_triggers_with_source_manual_once(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    effects = d.feed(ev.ForceTrigger("oncall", "scraper down"), NIGHT)
    [publish] = of(effects, PublishTrigger)
    assert publish.source is Source.MANUAL and publish.degraded
    d.confirm(NIGHT)
    again = d.feed(ev.ForceTrigger("oncall", "again"), NIGHT)
    assert alerts(again) == ["force_ignored"] and of(again, PublishTrigger) == []


def test_a_transition_removed_by_reload_keeps_its_record_and_stops_its_timers(policy: Policy) -> None:
    d = Driver(policy)
    d.feed(arrived("odds_game_lines", NIGHT), NIGHT)
    d.policy = policy.model_copy(update={"transitions": {}})
    before = d.s
    assert d.tick(NIGHT + timedelta(hours=1)) == [SetTimer(PHASE2, None)]
    assert d.s.reports == before.reports and d.s.phase is before.phase and d.s.wake_at is None


def test_stale_publish_confirmation_is_ignored(policy: Policy) -> None:
    d = Driver(policy)
    d.complete(PHASE2_ALL, NIGHT)
    d.feed(ev.PublishSucceeded("trg-someone-else", NIGHT), NIGHT)
    assert d.s.phase is Phase.PUBLISHING and d.s.published is None


# --- restart ---------------------------------------------------------------------------------------------


def test_a_restored_key_whose_inputs_are_complete_publishes_at_once(policy: Policy) -> None:
    completions = tuple(arrived(name, NIGHT) for name in PHASE2_ALL)
    d = Driver(policy)
    effects = d.feed(ev.Restored(Mode.OVERNIGHT, completions, None), NIGHT + timedelta(minutes=5))
    [publish] = of(effects, PublishTrigger)
    assert publish.trigger_id == PHASE2.trigger_id and publish.source is Source.CASCADE
    assert d.s.phase is Phase.PUBLISHING


def test_a_restored_key_still_missing_inputs_is_evaluated_and_waits(policy: Policy) -> None:
    completions = tuple(arrived(name, NIGHT) for name in PHASE2_ALL[:2])
    d = Driver(policy)
    effects = d.feed(ev.Restored(Mode.OVERNIGHT, completions, None), NIGHT + timedelta(minutes=5))
    [decision] = of(effects, EmitDecision)
    assert decision.result.decision is Decision.WAIT and decision.cause == "timer"
    assert not of(effects, PublishTrigger) and d.s.phase is Phase.COLLECTING


def test_a_restored_key_published_by_an_earlier_run_is_not_evaluated_again(policy: Policy) -> None:
    completions = tuple(arrived(name, NIGHT) for name in PHASE2_ALL)
    d = Driver(policy)
    effects = d.feed(ev.Restored(Mode.OVERNIGHT, completions, NIGHT), NIGHT + timedelta(minutes=5))
    assert not of(effects, PublishTrigger) and not of(effects, EmitDecision)
    assert d.s.phase is Phase.TRIGGERED
