"""What the router will do next for a (game_date, transition), and when: the context every alert carries
and the dashboard shows, so an operator reading "fallback deadline missed" also reads "self-heal at 13:00".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policies.breaker import BreakerState
from policies.model import Policy
from router.state import DateState, Phase
from router.timers import deadlines


@dataclass(frozen=True, slots=True)
class NextStep:
    action: str
    at: datetime | None = None  # None: nothing is scheduled (done, or waiting on an operator)
    kind: str = "none"  # none | recheck | fallback | self_heal | retry | breaker | operator


def next_step(state: DateState, policy: Policy) -> NextStep:
    if state.phase.is_triggered:
        return NextStep("nothing: the trigger is published")
    if state.phase is Phase.PUBLISHING:
        return NextStep("confirm the trigger publish")
    if state.key.transition not in policy.transitions:
        return NextStep("nothing: the transition is no longer in the policy", kind="operator")
    if not policy.modes[state.mode].cascade:
        return NextStep(
            f"nothing automatic: {state.mode.value} records only; an operator triggers", None, "operator"
        )
    if state.phase is Phase.FAILED and state.self_heal_done:
        return NextStep(
            "nothing automatic: manual intervention (force the trigger, or re-run the input)",
            None,
            "operator",
        )
    if state.breaker.state is BreakerState.OPEN:
        return NextStep(
            "breaker half-opens, then one trial check", state.breaker.reopens_at(policy.breaker), "breaker"
        )
    return _earliest(_scheduled(state, policy))


def _scheduled(state: DateState, policy: Policy) -> list[NextStep]:
    steps = []
    if state.retry_at is not None and state.attempt is not None:
        steps.append(NextStep("retry the trigger publish", state.retry_at, "retry"))
    due = deadlines(state, policy)
    if not state.fallback_done and due.fallback_at is not None:
        text = "fallback deadline: trigger degraded if criticals are in and completeness suffices, else alert"
        steps.append(NextStep(text, due.fallback_at, "fallback"))
    if not state.self_heal_done and due.self_heal_at is not None:
        text = "self-heal deadline: trigger if the critical inputs are in, else fail for manual intervention"
        steps.append(NextStep(text, due.self_heal_at, "self_heal"))
    if state.phase is not Phase.FAILED and state.next_check_at is not None:
        steps.append(NextStep("re-check the inputs", state.next_check_at, "recheck"))
    return steps


def _earliest(steps: list[NextStep]) -> NextStep:
    """The earliest step that changes something by itself (retry, deadline); a periodic re-check only when
    nothing else is scheduled: it changes the outcome only once a new input has arrived."""
    consequential = [s for s in steps if s.kind != "recheck"] or steps
    if not consequential:
        return NextStep("wait for the next input (no deadline in this mode)")
    return min(consequential, key=_at)


def _at(step: NextStep) -> datetime:
    assert step.at is not None  # every scheduled step has a time
    return step.at
