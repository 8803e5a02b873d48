"""The views as JSON (what the daemon serves) and as terminal text (what the command line prints).

The text is always rendered from the JSON, whatever the source (a daemon, a timeline, BigQuery), so one
history reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from policies.model import Policy
from views.board import DayBoard, PhaseStatus, day_board
from views.eta import DurationBook
from views.history import DayHistory, zulu_seconds
from views.pulse import pulses
from views.slo import Compliance, compliance, outcome

Json = dict[str, Any]


def board_json(board: DayBoard) -> Json:
    return {
        "game_date": board.game_date.isoformat(),
        "mode": board.mode.value if board.mode else None,
        "state": board.state,
        "overall_pct": board.overall_pct,
        "eta": zulu_seconds(board.eta.at),
        "eta_local": board.eta_local,
        "eta_basis": board.eta.basis,
        "done": board.eta.done,
        "slo_deadline": zulu_seconds(board.slo_deadline),
        "slo_deadline_local": board.slo_deadline_local,
        "at_risk": board.at_risk,
        "generated_at": zulu_seconds(board.generated_at),
        "phases": [
            {
                "phase": line.spec.label,
                "role": line.spec.role,
                "transition": line.spec.transition,
                "status": line.status.value,
                "symbol": line.status.symbol,
                "heading": line.status.heading,
                "detail": line.detail,
                "arrived": line.arrived,
                "expected": len(line.expected),
                "completeness": line.completeness,
                "quality": line.quality,
                "missing": list(line.missing),
                "critical_missing": [
                    e.processor for e in line.expected if e.critical and e.arrived_at is None
                ],
                "trigger_id": line.trigger.trigger_id if line.trigger else None,
                "next_deadline": (
                    {
                        "kind": line.next_deadline.kind,
                        "at": zulu_seconds(line.next_deadline.at),
                        "local": line.next_deadline.local,
                    }
                    if line.next_deadline
                    else None
                ),
            }
            for line in board.phases
        ],
    }


def board_text(data: Mapping[str, Any]) -> list[str]:
    """The seed's board: `Game Date: ... (Same-Day Mode)`, one line per phase, overall and ETA."""
    mode = (data["mode"] or "unknown").replace("_", "-").title()
    out = [f"Game Date: {data['game_date']} ({mode} Mode)"]
    for phase in data["phases"]:
        status = PhaseStatus(phase["status"])
        counts = ""
        if phase["expected"] and status is not PhaseStatus.PENDING:
            pct = round(100 * phase["arrived"] / phase["expected"])
            counts = f" ({phase['arrived']}/{phase['expected']}, {pct}%)"
        line = f"{phase['phase']}: {phase['symbol']} {phase['heading']}{counts}"
        if status in (
            PhaseStatus.WAITING,
            PhaseStatus.FAILED,
            PhaseStatus.IN_PROGRESS,
            PhaseStatus.BREAKER_OPEN,
        ):
            line += f" — {phase['detail']}"
        nxt = phase["next_deadline"]
        if nxt and status not in (PhaseStatus.COMPLETE, PhaseStatus.DEGRADED, PhaseStatus.PENDING):
            line += f"; next: {nxt['kind'].replace('_', '-')} {nxt['local']}"
        out.append(line)
    eta = data["eta_local"] or data["eta_basis"]
    if data["done"]:
        eta = f"done, last trigger {data['eta_local']}"
    risk = "   ⚠️ SLO at risk" if data["at_risk"] else ""
    out.append(f"Overall: {data['overall_pct']}% complete      ETA: {eta}{risk}")
    if data["slo_deadline_local"] and data["eta"] and not data["done"]:
        out.append(f"SLO deadline: {data['slo_deadline_local']}   ({data['eta_basis']})")
    return out


def slo_report(days: Iterable[DayHistory], policy: Policy, until: date, window_days: int) -> Json:
    """Per-date SLO outcomes (dates that ended) and compliance over `window_days` up to `until`."""
    rows = []
    for day in days:
        pulse = pulses(day.rows()).get(day.game_date)
        row = outcome(pulse, policy) if pulse is not None else None
        if row is not None:
            rows.append(row)
    return slo_report_of(rows, policy, until, window_days)


def slo_report_of(rows: Iterable[Mapping[str, Any]], policy: Policy, until: date, window_days: int) -> Json:
    """The same report from `slo` rows already computed (the daemon keeps them as dates end)."""
    in_window = [r for r in rows if 0 <= (until - date.fromisoformat(r["game_date"])).days < window_days]
    in_window.sort(key=lambda r: str(r["game_date"]))
    windowed = policy.model_copy(update={"slo": policy.slo.model_copy(update={"window_days": window_days})})
    return {
        "until": until.isoformat(),
        "window_days": window_days,
        "compliance": [_compliance_json(c) for c in compliance(in_window, windowed, until)],
        "dates": in_window,
    }


def _compliance_json(c: Compliance) -> Json:
    return {
        "slo": c.slo,
        "target": c.target,
        "met": c.met,
        "total": c.total,
        "ratio": c.ratio,
        "ok": c.ok,
        "kind": c.kind,
    }


def slo_text(data: Mapping[str, Any]) -> list[str]:
    out = [f"SLO compliance, {data['window_days']} days up to {data['until']}", ""]
    out.append(f"{'SLO':<22} {'target':>8} {'actual':>8} {'measured':>14}  status")
    for c in data["compliance"]:
        actual = "-" if c["ratio"] is None else f"{c['ratio']:.1%}"
        target = f"{'≤' if c['slo'] == 'self_heal_share' else '≥'}{c['target']:.0%}"
        status = "n/a" if c["ratio"] is None else ("OK" if c["ok"] else "MISSED")
        measured = f"{c['met']}/{c['total']} {'dates' if c['kind'] == 'dates met' else 'trig.'}"
        out.append(f"{c['slo']:<22} {target:>8} {actual:>8} {measured:>14}  {status}")
    out += [
        "",
        f"{'date':<11} {'mode':<9} {'outcome':<9} {'end-to-end':>10} {'compl.':>7} {'quality':>7}  missed",
    ]
    for row in data["dates"]:
        e2e = "-" if row["end_to_end_s"] is None else f"{row['end_to_end_s'] / 60:.0f} min"
        comp = "-" if row["completeness"] is None else f"{row['completeness']:.2f}"
        qual = "-" if row["quality"] is None else f"{row['quality']:.2f}"
        missed = ", ".join(r["slo"] for r in row["results"] if not r["met"]) or "-"
        head = f"{row['game_date']:<11} {row['mode']:<9} {row['outcome']:<9}"
        out.append(f"{head} {e2e:>10} {comp:>7} {qual:>7}  {missed}")
    if not data["dates"]:
        out.append("(no date ended in the window)")
    return out


def boards(days: Sequence[DayHistory], policy: Policy, now: datetime) -> list[DayBoard]:
    """Boards of `days`, each with the durations known from the days before it (all of `days` feed it)."""
    book = DurationBook.for_policy(policy, (row for day in days for row in day.rows()))
    return [day_board(day, policy, now, book) for day in days]
