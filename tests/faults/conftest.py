"""One baseline world, cycle 0 built through every step once per session; each fault test works on a copy."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from tests.faults.cycle import Snapshot, run_cycle, snapshot

# Small, but big enough that the gate has history to judge (anomaly: 4 cycles) and a campaign to check.
WORLD = {"customers": 1500, "history_weeks": 8, "holdout_share": 0.5}


def world(home: Path, *faults: str) -> Settings:
    return Settings(home=home, faults=faults, **WORLD)


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Snapshot]:
    """Cycle 0 simulated, ingested, validated, built, published, trained and designed: the state to protect."""
    home = tmp_path_factory.mktemp("faults-baseline")
    settings = world(home)
    run = run_cycle(settings, 0)
    assert run.failed_at is None, run.error
    return home, snapshot(settings)


@pytest.fixture
def faulty_world(baseline: tuple[Path, Snapshot], tmp_path: Path) -> Callable[..., tuple[Settings, Snapshot]]:
    """A copy of the baseline home with the given faults switched on, and the baseline's snapshot."""

    def make(*faults: str) -> tuple[Settings, Snapshot]:
        source, before = baseline
        home = tmp_path / "home"
        shutil.copytree(source, home)
        return world(home, *faults), before

    return make
