"""Service level objectives: each date's outcome when it ends, and compliance over a rolling window.

Per date (targets per mode, `policy.slo.modes`): end-to-end latency (first phase-2 input → the last
transition's trigger), the lowest completeness and quality at any of its triggers. Over the window: the
cascade success rate (triggers with source=cascade / all triggers) and the self-heal share.
A date ends when its last transition triggered, or when a transition failed (only an operator moves it on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from policies.model import Policy
from views.phases import chain
from views.pulse import DatePulse

Json = dict[str, Any]
SOURCES = ("cascade", "fallback", "self_heal", "manual")
PER_DATE = ("end_to_end", "completeness", "quality")
ROLLING = ("cascade_success_rate", "self_heal_share")


def ended_at(pulse: DatePulse, policy: Policy) -> datetime | None:
    order = chain(policy)
    last = pulse.transitions.get(order[-1]) if order else None
    if last is not None and last.triggered_at is not None:
        return last.triggered_at
    failed = [p.failed_at for p in pulse.transitions.values() if p.failed_at and not p.triggered_at]
    return min(failed) if failed else None


def outcome(pulse: DatePulse, policy: Policy) -> Json | None:
    """The date's `slo` audit row once it ended (None before): targets, actuals, met or not."""
    end = ended_at(pulse, policy)
    if end is None or pulse.mode is None:
        return None
    triggers = [p for p in pulse.transitions.values() if p.triggered_at is not None]
    complete = bool(chain(policy)) and pulse.triggered(chain(policy)[-1])
    order = chain(policy)
    started = pulse.started_at(order[0] if order else None)
    e2e = (end - started).total_seconds() if complete and started else None
    at_trigger = [p.at_trigger for p in triggers if p.at_trigger is not None]
    completeness = min((c for c, _ in at_trigger), default=None)
    quality = min((q for _, q in at_trigger), default=None)
    by_source = {s: sum(1 for p in triggers if p.source == s) for s in SOURCES}
    return {
        "at": _z(end),
        "kind": "slo",
        "game_date": pulse.game_date.isoformat(),
        "mode": pulse.mode.value,
        "outcome": "complete" if complete else "failed",
        "first_input_at": _z(started) if started else None,
        "ended_at": _z(end),
        "end_to_end_s": e2e,
        "completeness": completeness,
        "quality": quality,
        "triggered": len(triggers),
        "by_source": by_source,
        "results": _results(pulse, policy, complete, e2e, completeness, quality),
    }


def _results(
    pulse: DatePulse,
    policy: Policy,
    complete: bool,
    e2e: float | None,
    completeness: float | None,
    quality: float | None,
) -> list[Json]:
    assert pulse.mode is not None
    targets = policy.slo.for_mode(pulse.mode)
    out = []
    if targets.end_to_end_s is not None:
        met = complete and e2e is not None and e2e <= targets.end_to_end_s
        out.append(_result("end_to_end", float(targets.end_to_end_s), e2e, met))
    # Completeness and quality are of the triggers that went out; a date without any has nothing to judge
    # (its failure is the end-to-end miss, counted once).
    if targets.completeness is not None and completeness is not None:
        out.append(
            _result("completeness", targets.completeness, completeness, completeness >= targets.completeness)
        )
    if targets.quality is not None and quality is not None:
        out.append(_result("quality", targets.quality, quality, quality >= targets.quality))
    return out


def _result(name: str, target: float, actual: float | None, met: bool) -> Json:
    return {"slo": name, "target": target, "actual": actual, "met": met}


def missed(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in row["results"] if not r["met"]]


@dataclass(frozen=True, slots=True)
class Compliance:
    slo: str
    target: float
    met: int
    total: int
    ratio: float | None  # None: nothing to measure in the window
    ok: bool
    kind: str  # "dates met" | "of triggers"


def compliance(rows: Iterable[Mapping[str, Any]], policy: Policy, until: date) -> list[Compliance]:
    """Per SLO, over the `slo.window_days` game dates up to `until`: per-date objectives as the share of
    dates that met them (the objective itself: every date), rolling ones as their ratio vs the target."""
    spec = policy.slo
    window = [r for r in rows if 0 <= (until - date.fromisoformat(r["game_date"])).days < spec.window_days]
    out = []
    for name in PER_DATE:
        judged = [res for r in window for res in r["results"] if res["slo"] == name]
        met = sum(1 for res in judged if res["met"])
        ratio = met / len(judged) if judged else None
        ok = ratio is None or ratio >= spec.dates_met_target
        out.append(Compliance(name, spec.dates_met_target, met, len(judged), ratio, ok, "dates met"))
    triggered = sum(int(r["triggered"]) for r in window)
    cascade = sum(int(r["by_source"].get("cascade", 0)) for r in window)
    healed = sum(int(r["by_source"].get("self_heal", 0)) for r in window)
    rate = cascade / triggered if triggered else None
    share = healed / triggered if triggered else None
    target_rate, target_share = spec.cascade_success_rate, spec.self_heal_share_max
    out.append(
        Compliance(
            "cascade_success_rate",
            target_rate,
            cascade,
            triggered,
            rate,
            rate is None or rate >= target_rate,
            "of triggers",
        )
    )
    out.append(
        Compliance(
            "self_heal_share",
            target_share,
            healed,
            triggered,
            share,
            share is None or share <= target_share,
            "of triggers",
        )
    )
    return out


def _z(at: datetime) -> str:
    """The audit rows' form: seconds, and the fraction only when there is one (so an `slo` row never sorts
    before the trigger that ended its date)."""
    text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{at.microsecond:06d}".rstrip("0") if at.microsecond else "") + "Z"
