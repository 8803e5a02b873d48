"""The 1,000-date synthetic log replays to a byte-identical timeline and summary.

The golden files were written by `cascade replay` before the engine was reshaped for speed (issue 7); any
change in what the router decides, publishes, alerts or dead-letters shows up here as the first line that
differs. Regenerate them only for an intended change of behaviour, and say so in the commit:

    python -m bench.synthetic 1000 /tmp/s.jsonl && gzip -9 -c /tmp/s.jsonl > tests/golden/synthetic-1000.jsonl.gz
    cascade replay /tmp/s.jsonl --out /tmp/t.jsonl --quiet > /tmp/summary.txt
    gzip -9 -c /tmp/t.jsonl > tests/golden/timeline-1000.jsonl.gz
    gzip -9 -c /tmp/summary.txt > tests/golden/summary-1000.txt.gz
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ops.cli import main

GOLDEN = Path(__file__).parent.parent / "golden"


def _first_difference(expected: list[str], actual: list[str]) -> str:
    for number, (want, got) in enumerate(zip(expected, actual, strict=False), start=1):
        if want != got:
            return f"line {number} differs:\n  golden: {want[:400]}\n  now:    {got[:400]}"
    return f"same first lines, but {len(expected)} golden lines vs {len(actual)} now"


@pytest.mark.timeout(120)
def test_the_1000_date_log_replays_to_the_golden_timeline_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "synthetic-1000.jsonl"
    events.write_bytes(gzip.decompress((GOLDEN / "synthetic-1000.jsonl.gz").read_bytes()))
    timeline = tmp_path / "timeline.jsonl"

    assert main(["replay", str(events), "--out", str(timeline), "--quiet"]) == 0

    golden_timeline = gzip.decompress((GOLDEN / "timeline-1000.jsonl.gz").read_bytes()).decode()
    replayed = timeline.read_text(encoding="utf-8")
    if replayed != golden_timeline:
        pytest.fail(_first_difference(golden_timeline.splitlines(), replayed.splitlines()))
    golden_summary = gzip.decompress((GOLDEN / "summary-1000.txt.gz").read_bytes()).decode()
    # The last stdout line names the temporary output path; everything before it is the summary.
    printed = capsys.readouterr().out.splitlines()
    expected = golden_summary.splitlines()
    assert printed[:-1] == expected[:-1], _first_difference(expected[:-1], printed[:-1])
    assert printed[-1].endswith(f"({len(golden_timeline.splitlines())} records)")
