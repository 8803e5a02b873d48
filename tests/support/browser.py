"""Driving Debian's chromium through chromedriver (selenium) for the dashboard tests, and what a person reads
on the board of the day whose critical input never reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.support.emulators import wait_until

ROOT = Path(__file__).resolve().parents[2]
CRITICAL = ROOT / "examples" / "critical_never_reports.jsonl"
ARTIFACTS = ROOT / ".artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, no sandbox (containers, root), and nothing that phones home or updates itself during a test.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)
DESKTOP_WIDTH, PHONE_WIDTH = 1280, 390
LOAD_TIMEOUT_S = 30.0


def start_browser(profile: Path) -> WebDriver:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(
            "chromium + chromedriver not found: apt-get install chromium chromium-driver (Debian); "
            ".ci/run installs them when run as root"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    # A Service with the driver's path: selenium-manager is never asked to find or download anything.
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(LOAD_TIMEOUT_S)
    return browser


def assert_board_shows_critical_wait(
    driver: WebDriver, url: str, game_date: str = "2026-02-03"
) -> WebElement:
    """Open `url` (a date page, or a report holding `game_date`) and check the board of the day whose critical
    `nbac_gamebook` never reported: phase 2 waits on it (also after self-heal gave up: the input arriving
    would still trigger it), it is the missing input, and no later phase started. Reloads until phase 2 shows it (a live page may lag), then
    returns the Phase 2 row."""
    phase2_css = f'[data-board="{game_date}"] [data-phase="Phase 2"]'

    def phase2_stuck() -> bool:
        driver.get(url)
        found = driver.find_elements(By.CSS_SELECTOR, phase2_css)
        return bool(found) and found[0].get_attribute("data-status") == "waiting"

    wait_until(phase2_stuck, LOAD_TIMEOUT_S, interval_s=0.5)
    phase2 = driver.find_element(By.CSS_SELECTOR, phase2_css)
    text = phase2.text
    assert "Waiting on a critical input" in text and "waiting on critical nbac_gamebook" in text, text
    assert phase2.find_element(By.CSS_SELECTOR, ".missing").text == "Missing: nbac_gamebook"
    absent = phase2.find_element(By.CSS_SELECTOR, "tr.absent.critical")
    assert absent.text.split() == ["nbac_gamebook", "critical", "not", "arrived", "—", "0%"]
    for label in ("Phase 3", "Phase 4", "Phase 5", "Phase 6"):
        later = driver.find_element(By.CSS_SELECTOR, f'[data-board="{game_date}"] [data-phase="{label}"]')
        assert later.get_attribute("data-status") == "pending", label
        assert "Pending" in later.text, later.text
    return phase2


def save_screenshots(driver: WebDriver, name: str) -> list[Path]:
    """The whole page at desktop and phone width, under .artifacts/ (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    paths = []
    for width, suffix in ((DESKTOP_WIDTH, ""), (PHONE_WIDTH, "-phone")):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(height) + 150, 12_000))
        path = ARTIFACTS / f"{name}{suffix}.png"
        assert driver.save_screenshot(str(path)), path
        paths.append(path)
        print(f"screenshot: {path}")
    driver.set_window_size(DESKTOP_WIDTH, 900)
    return paths
