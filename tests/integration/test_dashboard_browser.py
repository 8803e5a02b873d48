"""The dashboard in a real browser: Debian's chromium, driven through chromedriver by selenium, reading what
a person reads (visible text only: a folded `<details>` is not read).

The report and a date page are opened as files; the daemon's own HTTP app (`ops.http.make_app` with its
operator view, the routes `GET /` and `GET /dates/{date}`) is served from this process on a free port, over a
date watch seeded with the replayed rows as the daemon seeds it from the audit tables. A test against a
daemon running elsewhere only needs its URL:

    assert_board_shows_critical_wait(driver, f"{base_url}/dates/2026-02-03")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from ops.replay import ReplayResult, read_recording, replay
from ops.report import date_boards, write_report
from ops.web import render_date
from policies.model import Policy
from tests.support.browser import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    ROOT,
    assert_board_shows_critical_wait,
    save_screenshots,
)
from tests.support.emulators import free_port
from tests.support.operator_app import daemon_app

CRITICAL = ROOT / "examples" / "critical_never_reports.jsonl"

pytestmark = pytest.mark.timeout(120)


def replay_critical(policy: Policy, until: datetime | None = None) -> ReplayResult:
    with CRITICAL.open() as lines:
        return anyio.run(replay, read_recording(lines, CRITICAL.name), policy, until)


def test_the_report_shows_phase_2_stuck_on_nbac_gamebook_and_its_missed_fallback(
    driver: WebDriver, policy: Policy, tmp_path: Path
) -> None:
    result = replay_critical(policy)
    report = tmp_path / "report.html"
    write_report(result.rows, policy, report, result.until)

    phase2 = assert_board_shows_critical_wait(driver, report.as_uri())

    fallback = phase2.find_element(By.XPATH, './/li[strong[normalize-space()="Fallback"]]')
    assert fallback.text == "Fallback 06:00 AM ET, Wed Feb 4: missed: not enough to trigger, alert sent"
    assert fallback.find_element(By.TAG_NAME, "time").get_attribute("title") == "2026-02-04 11:00:00Z"
    headline = driver.find_element(By.CSS_SELECTOR, '[data-board="2026-02-03"] .headline').text
    assert headline.startswith("Failed"), headline
    save_screenshots(driver, "dashboard-report-critical_never_reports")


def test_the_report_folds_each_history_and_opens_it_on_a_click(
    driver: WebDriver, policy: Policy, tmp_path: Path
) -> None:
    result = replay_critical(policy)
    report = tmp_path / "report.html"
    write_report(result.rows, policy, report, result.until)
    driver.get(report.as_uri())

    history = driver.find_element(By.CSS_SELECTOR, "#d-2026-02-03 table.history")
    assert not history.is_displayed()
    driver.find_element(By.CSS_SELECTOR, "#d-2026-02-03 details.history-box > summary").click()
    assert history.is_displayed()
    rows = history.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == sum(1 for row in result.rows if row["kind"] == "decision")
    assert rows[-1].text.split()[:8] == [
        "08:00:00",
        "AM,",
        "Wed",
        "Feb",
        "4",
        "2026-02-04",
        "13:00:00Z",
        "phase2_to_phase3",
    ]


def test_the_live_date_page_at_4_am_shows_the_wait_and_fits_a_phone_screen(
    driver: WebDriver, policy: Policy, tmp_path: Path
) -> None:
    now = datetime(2026, 2, 4, 9, 0, tzinfo=UTC)  # 04:00 AM ET: all but nbac_gamebook in, no deadline yet
    result = replay_critical(policy, until=now)
    [(board, day)] = date_boards(result.rows, policy, now)
    page = tmp_path / "2026-02-03.html"
    page.write_text(render_date(board, day, refresh_s=60), encoding="utf-8")

    phase2 = assert_board_shows_critical_wait(driver, page.as_uri())
    assert phase2.get_attribute("data-status") == "waiting"
    assert "Waiting on a critical input" in phase2.text
    fallback = phase2.find_element(By.XPATH, './/li[strong[normalize-space()="Fallback"]]')
    assert fallback.text == "Fallback 06:00 AM ET, Wed Feb 4: in 2 h 00 min"

    driver.set_window_size(PHONE_WIDTH, 900)
    try:
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    finally:
        driver.set_window_size(DESKTOP_WIDTH, 900)
    save_screenshots(driver, "dashboard-date-critical_never_reports-4am")


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 from an event loop in a thread (selenium blocks); yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="dashboard-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def test_the_daemon_index_leads_to_the_date_page_showing_the_critical_wait(
    driver: WebDriver, policy: Policy
) -> None:
    result = replay_critical(policy)

    with serving(daemon_app(result.rows, policy)) as base_url:
        driver.get(f"{base_url}/")
        row = driver.find_element(By.CSS_SELECTOR, 'tr[data-date="2026-02-03"]')
        assert row.get_attribute("data-state") == "failed"
        assert "Failed" in row.text and "nbac_gamebook" in row.text, row.text
        row.find_element(By.LINK_TEXT, "2026-02-03").click()  # a relative link: works behind any prefix
        assert driver.current_url == f"{base_url}/dates/2026-02-03"

        assert_board_shows_critical_wait(driver, driver.current_url)
        refresh = driver.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]').get_attribute("content")
        assert refresh == "30"
        save_screenshots(driver, "dashboard-daemon-2026-02-03")
