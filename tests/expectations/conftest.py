from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from campaign_loop.config import Settings

CYCLE = "2026-01-12"  # the second cycle: a plain weekly batch (cycle 0 also carries the history)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small simulated retailer, two cycles landed and ingested, without dirt: the clean reference."""
    from ingest import ingest
    from sim import simulate_period

    settings = Settings(home=tmp_path_factory.mktemp("world"), customers=1500, history_weeks=4, dirt=0.0)
    for cycle in (0, 1):
        simulate_period(settings, cycle)
    ingest(settings)
    return settings


@pytest.fixture
def home(world: Settings, tmp_path: Path) -> Settings:
    """A private copy of the world's warehouse, free to break."""
    settings = Settings(home=tmp_path, customers=world.customers, history_weeks=world.history_weeks, dirt=0.0)
    settings.warehouse_path.parent.mkdir(parents=True)
    shutil.copyfile(world.warehouse_path, settings.warehouse_path)
    return settings


@pytest.fixture
def sql(home: Settings) -> Callable[[str], list[tuple]]:
    def run(statement: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(home.warehouse_path)) as con:
            return con.execute(statement, params or []).fetchall()

    return run
