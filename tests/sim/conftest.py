"""Shared fixtures: small simulated worlds, built once per session (each test only reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_loop.config import Settings
from sim import PeriodSummary, simulate_period

CUSTOMERS = 2_000


def run_cycles(home: Path, cycles: int = 2, **overrides: object) -> tuple[Settings, list[PeriodSummary]]:
    settings = Settings(home=home, customers=overrides.pop("customers", CUSTOMERS), **overrides)
    return settings, [simulate_period(settings, k) for k in range(cycles)]


@pytest.fixture(scope="session")
def clean_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[PeriodSummary]]:
    return run_cycles(tmp_path_factory.mktemp("clean"), cycles=3, dirt=0.0)


@pytest.fixture(scope="session")
def dirty_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[PeriodSummary]]:
    return run_cycles(tmp_path_factory.mktemp("dirty"), cycles=2, dirt=10.0)


@pytest.fixture(scope="session")
def default_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[PeriodSummary]]:
    return run_cycles(tmp_path_factory.mktemp("default"), cycles=2)
