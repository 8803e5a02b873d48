"""`make chaos`: the fault suite (issue 9, section 6). `python -m bench.chaos --trials N --seed S`.

Starts the three emulators once, then runs N independent trials (`bench.chaos_trial`), trial i with seed
S + i: so `--seed S+i --trials 1` re-runs one trial alone. Prints one line per trial (its seed, plan and
counts; what failed, in detail) and one summary line at the end; exits 1 when any count that must be 0 is
not. Each trial's work directory (policy, per-instance daemon logs, spools) is kept when the trial failed
and removed when it passed (`--keep` keeps them all).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from bench.chaos_checks import Counts
from bench.chaos_stack import Backends, chaos_policy_path, running_backends
from bench.chaos_trial import TrialResult, plan_trial, run_trial, today_utc
from ops.policy_file import load_policy

ROOT = Path(__file__).resolve().parents[1]
# Faults end by ~25 s and a message held by a killed instance is back after its 30 s lease: a trial whose
# last trigger comes later is kept for a look, although no check fails.
SLOW_S = 45.0


@dataclass
class Run:
    """What the summary line adds up."""

    counts: Counts = field(default_factory=Counts)
    kills: int = 0
    firestore_stalls: int = 0
    bigquery_outages: int = 0
    broken: list[str] = field(default_factory=list)  # trials that could not run (the harness failed)

    def add(self, result: TrialResult) -> None:
        self.counts.add(result.counts)
        self.kills += result.plan.faults.victim is not None
        self.firestore_stalls += result.plan.faults.firestore_stall is not None
        self.bigquery_outages += result.plan.faults.bigquery_outage is not None

    @property
    def ok(self) -> bool:
        return self.counts.ok and not self.broken

    def summary(self) -> str:
        c = self.counts
        line = (
            f"chaos: {c.trials} trials, {c.dates} dates, {c.transitions} transitions, {c.messages} messages: "
            f"{c.conflicting} conflicting, {c.missing} missing triggers, {c.incomplete_fanouts} incomplete "
            f"fan-outs, {c.lost_completions} lost completions, {c.lost_audit_rows} lost audit rows, "
            f"{c.unexpected_exits} unexpected exits; {c.republished} republished, "
            f"{c.store_outages} instances in the Firestore-outage mode; "
            f"faults: {self.kills} kill -9, {self.firestore_stalls} firestore stalls, "
            f"{self.bigquery_outages} bigquery outages"
        )
        if self.broken:
            line += f"; {len(self.broken)} trials could not run (seeds {', '.join(self.broken)})"
        return line


def trial_line(index: int, total: int, result: TrialResult) -> str:
    c, plan = result.counts, result.plan
    verdict = "ok" if c.ok else "FAILED"
    triggers = "never" if result.triggers_in_s is None else f"{result.triggers_in_s:.1f}s"
    return (
        f"trial {index + 1}/{total} seed {plan.seed}: {verdict} in {result.seconds:.0f}s "
        f"(all triggers after {triggers}); "
        f"{c.dates} dates, {c.messages} messages; {plan.faults.describe()}; "
        f"conflicting {c.conflicting}, missing {c.missing}, incomplete fan-outs {c.incomplete_fanouts}, "
        f"lost completions {c.lost_completions}, lost audit rows {c.lost_audit_rows}, "
        f"unexpected exits {c.unexpected_exits}, republished {c.republished}, "
        f"in the outage mode {c.store_outages}"
    )


def run_trials(
    trials: int, seed: int, instances: int, dates: int, workdir: Path, keep: bool, kill: bool
) -> Run:
    run = Run()
    workdir.mkdir(parents=True, exist_ok=True)
    policy_path = chaos_policy_path(workdir)
    policy = load_policy(policy_path)
    with running_backends() as backends:
        for index in range(trials):
            backends.ensure_bigquery()
            plan = plan_trial(seed + index, policy, instances, dates, today_utc(), kill)
            trial_dir = workdir / f"trial-seed-{plan.seed}"
            trial_dir.mkdir(parents=True, exist_ok=True)
            try:
                result = anyio.run(run_trial, backends, policy_path, trial_dir, plan, instances)
            except Exception as exc:  # the harness itself failed: say so, keep the logs, go on
                run.broken.append(str(plan.seed))
                print(f"trial {index + 1}/{trials} seed {plan.seed}: COULD NOT RUN: {exc!r}", flush=True)
                continue
            finally:
                _forget_firestore(backends, trial_dir)
            run.add(result)
            print(trial_line(index, trials, result), flush=True)
            for detail in result.counts.details:
                print(f"    {detail}", flush=True)
            slow = result.triggers_in_s is None or result.triggers_in_s > SLOW_S
            if result.counts.ok and not slow and not keep:
                shutil.rmtree(trial_dir, ignore_errors=True)
            else:
                _save_observations(trial_dir, result)
            if not result.counts.ok or slow:
                what = "failed" if not result.counts.ok else f"slow (triggers after more than {SLOW_S:.0f}s)"
                print(f"    {what}: logs, spools, published/triggers/keys.jsonl in {trial_dir}", flush=True)
    return run


def _save_observations(trial_dir: Path, result: TrialResult) -> None:
    """What was published (message ids) and what came out on the trigger topics: to diagnose a failure."""
    with (trial_dir / "published.jsonl").open("w") as out:
        for item in result.published:
            c = item.completion
            entry = {"message_id": item.message_id, "at": item.at, "topic": c.topic, "duplicate": c.duplicate}
            out.write(json.dumps({**entry, "data": json.loads(c.data)}) + "\n")
    with (trial_dir / "keys.jsonl").open("w") as out:
        for record in result.keys:
            out.write(json.dumps(record, default=str) + "\n")
    with (trial_dir / "triggers.jsonl").open("w") as out:
        for m in result.seen:
            entry = {
                "message_id": m.message_id,
                "topic": m.topic,
                "publish_time": str(m.publish_time),
                "attributes": dict(m.attributes),
            }
            out.write(json.dumps({**entry, "data": json.loads(m.data)}) + "\n")


def _forget_firestore(backends: Backends, trial_dir: Path) -> None:
    """Delete the trial's documents: the emulator slows down as data accumulates (EMULATORS.md)."""
    for project_file in trial_dir.glob("project"):
        project = project_file.read_text().strip()
        url = f"http://{backends.firestore.host_port}/emulator/v1/projects/{project}/databases/(default)/documents"
        request = urllib.request.Request(url, method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=10).close()  # loopback only
        except OSError as exc:
            print(f"    (could not clear Firestore project {project}: {exc})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--dates", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--workdir", type=Path, default=ROOT / ".venv" / "chaos")
    parser.add_argument("--keep", action="store_true", help="keep every trial's work directory")
    parser.add_argument(
        "--no-kill", action="store_true", help="a control run: the stalls and outages only, no kill -9"
    )
    args = parser.parse_args(argv)
    print(
        f"chaos: {args.trials} trials from seed {args.seed}, {args.instances} instances, {args.dates} dates "
        f"(re-run one trial: --seed <its seed> --trials 1)",
        flush=True,
    )
    run = run_trials(
        args.trials, args.seed, args.instances, args.dates, args.workdir, args.keep, not args.no_kill
    )
    print(run.summary(), flush=True)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
