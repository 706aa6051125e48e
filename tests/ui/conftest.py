"""Fixtures of the browser tests: system Chromium (installed with apt if absent), a tiny world, the services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The world: 2 cycles, so cycle 1 measures a designed campaign; a year of history, so CLV and propensity train.
WORLD = {"customers": 3000, "cycles": 2, "history_weeks": 52}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the web UIs with a headless Chromium (slow)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """System Chromium + chromedriver; installed with apt (as root) when absent, as CI needs."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.geteuid() != 0:
            pytest.skip("chromium is not installed and installing it needs root")
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
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
def world(tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float]):
    """A real world: `campaign_loop.demo.run_demo` runs the DAG once per cycle; then one report per cycle."""
    from tests.ui.world import build_world

    home = Path(os.environ["CAMPAIGN_LOOP_UI_TEST_HOME"]) if os.environ.get("CAMPAIGN_LOOP_UI_TEST_HOME") else None
    t0 = time.monotonic()
    if home is not None and (home / "airflow" / "airflow.db").exists():  # reuse a world built before (local runs)
        from campaign_loop.config import Settings

        settings = Settings(home=home, **WORLD)
    else:
        settings = build_world(home or tmp_path_factory.mktemp("ui-world"), **WORLD)
    timings["world"] = time.monotonic() - t0
    return settings


@pytest.fixture(scope="module")
def services(world, timings: dict[str, float]):
    from campaign_loop.cycle_report import write_report
    from campaign_loop.demo import free_port
    from campaign_loop.ui import start_services

    ports = {"airflow": free_port(), "mlflow": free_port(), "site": free_port()}
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
