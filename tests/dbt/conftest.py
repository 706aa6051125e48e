"""A small simulated world (2,000 people, cycles 0-1) loaded by ingest and built by dbt, once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")


@dataclass(frozen=True)
class BuiltWorld:
    home: Path
    warehouse: Path
    truth_dir: Path
    landing_dir: Path
    target_dir: Path
    build: subprocess.CompletedProcess
    docs: subprocess.CompletedProcess
    first_build: subprocess.CompletedProcess
    resolved_after_cycle_0: pd.DataFrame


def run_dbt(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = os.environ | {
        "CAMPAIGN_LOOP_HOME": str(home),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_TARGET_PATH": str(home / "dbt" / "target"),
        "DBT_LOG_PATH": str(home / "dbt" / "logs"),
    }
    env.pop("CAMPAIGN_LOOP_DBT_TARGET", None)
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def built_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWorld]:
    from campaign_loop.config import Settings
    from ingest import ingest
    from sim import simulate_period

    home = tmp_path_factory.mktemp("world")
    settings = Settings(home=home, customers=2000)
    # Two builds, one per cycle, as the weekly loop runs them: the second must keep customer IDs stable.
    simulate_period(settings, 0)
    ingest(settings)
    first_build = run_dbt(home, "build")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        resolved_after_cycle_0 = con.sql(
            "select identifier_type, identifier_value, customer_id from intermediate.int_identity_resolved"
        ).df()
    simulate_period(settings, 1)
    ingest(settings)
    build = run_dbt(home, "build")
    docs = run_dbt(home, "docs", "generate")
    yield BuiltWorld(
        home=home, warehouse=settings.warehouse_path, truth_dir=settings.truth_dir,
        landing_dir=settings.landing_dir, target_dir=home / "dbt" / "target", build=build, docs=docs,
        first_build=first_build, resolved_after_cycle_0=resolved_after_cycle_0,
    )


def run_results(world: BuiltWorld) -> list[dict]:
    return json.loads((world.target_dir / "run_results.json").read_text())["results"]
