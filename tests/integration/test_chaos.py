"""The short version of `make chaos` (issue 9, section 6): one seeded trial through the same code path
(`bench.chaos_trial.run_trial`) on the session's emulators — three daemons, three recorded days with
duplicates in a shuffled order, kill -9 of one instance and its restart, a Firestore stall and a BigQuery
outage — then the trial's checks.

Seed 79 was chosen because its plan has all three faults, with a Firestore stall long enough for the
outage mode: Firestore stopped 3.2 s .. 28 s (the chaos policy enters the outage mode after 5 s of
failure), BigQuery stopped 3.1 s .. 15.2 s, kill -9 at 8.6 s (back 2.9 s later). The wall clock decides
how they fall against the daemons' work, so the counts are asserted, not the interleaving.
"""

from __future__ import annotations

import anyio
import pytest

from bench.chaos_stack import Backends, chaos_policy_path
from bench.chaos_trial import TrialResult, plan_trial, run_trial, today_utc
from ops.policy_file import load_policy
from tests.support.emulators import Emulator

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(150)]

SEED = 79
INSTANCES = 3
DATES = 3


@pytest.fixture(scope="module")
def trial(
    pubsub_server: Emulator,
    firestore_server: Emulator,
    bigquery_server: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> TrialResult:
    workdir = tmp_path_factory.mktemp("chaos")
    policy_path = chaos_policy_path(workdir)
    plan = plan_trial(SEED, load_policy(policy_path), INSTANCES, DATES, today_utc())
    stall = plan.faults.firestore_stall
    assert stall and stall.for_s > 20 and plan.faults.bigquery_outage and plan.faults.victim is not None
    backends = Backends(pubsub_server, firestore_server, bigquery_server)
    trial_dir = workdir / "trial"
    trial_dir.mkdir()
    return anyio.run(run_trial, backends, policy_path, trial_dir, plan, INSTANCES)


def _details(trial: TrialResult) -> str:
    return "\n".join([*trial.counts.details, f"logs and spools: {trial.workdir}"])


def test_under_kill_9_and_stalls_every_transition_triggers_once_and_every_completion_is_recorded(
    trial: TrialResult,
) -> None:
    c = trial.counts
    assert c.transitions == DATES * 4
    found = (c.conflicting, c.missing, c.incomplete_fanouts, c.lost_completions, c.unexpected_exits)
    assert found == (0, 0, 0, 0, 0), _details(trial)


def test_under_kill_9_and_stalls_no_audit_row_is_lost(trial: TrialResult) -> None:
    assert trial.counts.lost_audit_rows == 0, _details(trial)
