"""Fixtures of the browser tests: Debian's Chromium, the suite's demo world, the services."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_INSTALL = "apt-get install -y chromium chromium-driver (make test does it as root)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the web UIs with a headless Chromium (slow)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium and chromedriver, which `make test` installs when missing (the Makefile's
    system-packages): a test installs nothing itself."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"Chromium or chromedriver is not installed: {CHROMIUM_INSTALL}")
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def timings(artifacts: Path) -> Iterator[dict[str, float]]:
    spent: dict[str, float] = {}
    yield spent
    (ARTIFACTS / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in spent.items()}, indent=2))


@pytest.fixture(scope="module")
def ports(demo_world) -> dict[str, int]:
    """The ports the world's `report` tasks linked to: the services must serve there."""
    return demo_world.ports


@pytest.fixture(scope="module")
def world(demo_world):
    """The suite's demo world (tests/conftest.py): `campaign-loop demo` ran the DAG once per cycle."""
    assert demo_world.returncode == 0, f"the demo world failed:\n{demo_world.stdout[-3000:]}\n{demo_world.stderr[-3000:]}"
    return demo_world.settings


@pytest.fixture(scope="module")
def services(world, timings: dict[str, float], ports: dict[str, int]):
    from campaign_loop.cycle_report import write_report
    from campaign_loop.ui import start_services

    t0 = time.monotonic()
    for cycle in range(world.cycles):  # as the DAG's report task does: before anyone looks
        write_report(world, cycle, airflow_url=f"http://127.0.0.1:{ports['airflow']}",
                     mlflow_url=f"http://127.0.0.1:{ports['mlflow']}")
    timings["reports"] = time.monotonic() - t0
    t0 = time.monotonic()
    with start_services(world, ports["airflow"], ports["mlflow"], ports["site"]) as running:
        timings["services"] = time.monotonic() - t0
        yield running
        t0 = time.monotonic()
    timings["stop"] = time.monotonic() - t0


@pytest.fixture(scope="module")
def browser(chromium: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="campaign-loop-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
