"""How big and how fast `cascade replay --report` is on a long recording, and how fast a browser opens it.

    python -m bench.report_size [--events tests/golden/synthetic-1000.jsonl.gz] [--out /tmp/report.html]
                                [--browser]

Replays the recording (in-memory, virtual clock), then times grouping the audit rows per date with every
board (`ops.report.date_boards`) and the rendering (`ops.web.render_report`) on their own, and prints the
file's size (and gzipped). `--browser` opens the file in Debian's chromium (headless, as the browser test
does) and prints the navigation timings and the element count.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import anyio

from ops.policy_file import load_policy
from ops.replay import read_recording, replay
from ops.report import date_boards
from ops.web import render_report

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "synthetic-1000.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=GOLDEN)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cascade-report.html")
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()

    policy = load_policy(None)
    opener = gzip.open if args.events.suffix == ".gz" else open
    with opener(args.events, "rt", encoding="utf-8") as lines:
        deliveries = read_recording(lines, str(args.events))
    started = time.perf_counter()
    result = anyio.run(replay, deliveries, policy, None)
    replayed = time.perf_counter()
    assert result.until is not None
    pairs = date_boards(result.rows, policy, result.until)
    boarded = time.perf_counter()
    html = render_report(pairs, f"cascade replay: {args.events.name}")
    rendered = time.perf_counter()
    data = html.encode()
    args.out.write_bytes(data)
    print(f"{len(pairs)} dates, {len(result.rows)} audit rows -> {args.out}")
    steps = {"replay": replayed - started, "boards": boarded - replayed, "render": rendered - boarded}
    print(", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items()))
    print(f"size {len(data) / 1e6:.1f} MB ({len(gzip.compress(data, 6)) / 1e6:.2f} MB gzipped)")
    if args.browser:
        _browser_timings(args.out)


def _browser_timings(path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        try:
            driver.set_window_size(1280, 900)
            driver.get(path.as_uri())
            ready, loaded, elements = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [n.domContentLoadedEventEnd, n.loadEventEnd, document.querySelectorAll('*').length];"
            )
        finally:
            driver.quit()
    print(f"chromium: DOMContentLoaded {ready / 1000:.2f} s, load {loaded / 1000:.2f} s, {elements} elements")


if __name__ == "__main__":
    main()
