"""Fixtures of the browser tests: system Chromium (installed with apt if absent), a tiny world, the services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
# Uplift trains only on finished randomised campaigns with >= 10 conversions per arm (ml/train.py), and the
# control arm converts ~1.5 %: the default business as usual (10 % of 3,000 customers contacted, half held
# out) gave 4-8 control conversions, so uplift was skipped. A business-as-usual test of every consenting
# customer (half held out) of 5,000 gives ~20 in training from cycle 0, and the gate decides as it would.
WORLD = {"customers": 5000, "cycles": 2, "history_weeks": 52, "bau_contact_share": 1.0}
PORTS_FILE = "ui-test-ports.json"  # in a reused world's home: the ports its tasks' links point at


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


def _reused_home() -> Path | None:
    """A world built before (local runs: ``CAMPAIGN_LOOP_UI_TEST_HOME``), if that home holds one."""
    home = os.environ.get("CAMPAIGN_LOOP_UI_TEST_HOME")
    if home and (Path(home) / "airflow" / "airflow.db").exists():
        return Path(home)
    return None


def _port_below_ephemeral_range() -> int:
    """A free port outside Linux's ephemeral range (32768-60999): the site's port is chosen before the world
    is built, and minutes of client connections there could otherwise take it as their local port."""
    import random
    import socket

    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    """Chosen before the world is built: its `report` tasks store links to the site on ``ports["site"]``."""
    from campaign_loop.runner import free_port

    home = _reused_home()
    if home is not None and (home / PORTS_FILE).exists():
        return {k: int(v) for k, v in json.loads((home / PORTS_FILE).read_text()).items()}
    return {"airflow": free_port(), "mlflow": free_port(), "site": _port_below_ephemeral_range()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float], ports: dict[str, int]):
    """A real world: `campaign_loop.demo.run_demo` runs the DAG once per cycle; then one report per cycle."""
    from campaign_loop.config import Settings
    from campaign_loop.ui import HOST, SITE_URL_ENV

    t0 = time.monotonic()
    home = _reused_home()
    if home is not None:
        settings = Settings(home=home, **WORLD)
    else:
        home = Path(os.environ.get("CAMPAIGN_LOOP_UI_TEST_HOME") or tmp_path_factory.mktemp("ui-world"))
        # Its own process: the demo runs Airflow in-process, and Airflow takes its home once per process.
        # The tasks' "Cycle report" links point where the services fixture will serve the site.
        built = subprocess.run(
            [sys.executable, "-m", "tests.ui.world", str(home), *(f"{k}={v}" for k, v in WORLD.items())],
            cwd=REPO_ROOT, env=os.environ | {SITE_URL_ENV: f"http://{HOST}:{ports['site']}"},
            capture_output=True, text=True, timeout=1800,
        )
        if built.returncode != 0:
            raise RuntimeError(f"the UI world failed to build:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
        settings = Settings(home=home, **WORLD)
        (settings.root / PORTS_FILE).write_text(json.dumps(ports))
    timings["world"] = time.monotonic() - t0
    return settings


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
