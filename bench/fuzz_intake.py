"""Hostile-input fuzz of intake at volume: `router.intake.accept` on N generated bodies.

    python -m bench.fuzz_intake [--cases 100000] [--seed 0]

The bodies are the fuzz test's (`tests.support.hostile`: arbitrary bytes, JSON of every shape, completion
messages with hostile fields, huge numbers, nesting to 100k, non-finite numbers, over-size bodies), drawn by
hypothesis with a fixed seed. Every case must be accepted or rejected with a category and a reason, never
raise (the same check as `tests/unit/test_intake.py`); the first failure stops the run with its input.

Prints cases, accepted, rejections by category, and two rates: intake alone (time inside `accept`) and the
whole run (hypothesis drawing the inputs costs far more than intake judging them).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from hypothesis import HealthCheck, given, seed, settings

from router.intake import Rejected
from tests.support.hostile import BODIES, TOPICS
from tests.unit.test_intake import check


def run(cases: int, fixed_seed: int) -> tuple[Counter[str], float, float]:
    tally: Counter[str] = Counter()
    in_accept = 0.0

    @seed(fixed_seed)
    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        phases=("generate",),  # no shrinking: a failure is reported as drawn
        suppress_health_check=list(HealthCheck),
    )
    @given(topic=TOPICS, body=BODIES)
    def one(topic: str, body: bytes) -> None:
        nonlocal in_accept
        began = time.perf_counter()
        outcome = check(topic, body)
        in_accept += time.perf_counter() - began
        tally[outcome.category.value if isinstance(outcome, Rejected) else "accepted"] += 1

    began = time.perf_counter()
    one()
    return tally, in_accept, time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tally, in_accept, wall = run(args.cases, args.seed)
    total = sum(tally.values())
    print(f"cases {total} (asked {args.cases}), seed {args.seed}: none raised")
    print(f"intake alone: {total / in_accept:,.0f} cases/s ({in_accept:.1f} s inside accept)")
    print(f"whole run:    {total / wall:,.0f} cases/s ({wall:.1f} s, mostly hypothesis drawing inputs)")
    for outcome, count in tally.most_common():
        print(f"  {outcome:<14} {count:>8}  {count / total:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
