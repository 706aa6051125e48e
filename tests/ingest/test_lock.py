"""Concurrent writers: a second one is told who holds the warehouse and loads nothing, never a lock traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from ingest import ingest
from ingest.lock import LOCK_HOLDER_ENV, WarehouseBusy, holding_for_children, writer_lock

from .conftest import Land, Query

REPO = Path(__file__).resolve().parents[2]
EVENTS = "event_id,event_type,occurred_at,cookie_id\ne1,page_view,2026-01-05T10:00:00Z,c1\n"
# A writer in another process: holds until its stdin closes.
HOLD_LOCK = (
    "import sys; from pathlib import Path; from ingest.lock import writer_lock\n"
    "with writer_lock(Path(sys.argv[1]), sys.argv[2]):\n    print('held', flush=True); sys.stdin.read()\n"
)
HOLD_DUCKDB = (
    "import sys, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('held', flush=True); sys.stdin.read()\n"
)


def _holder(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", script, *args], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def other_ingest(settings: Settings) -> Iterator[subprocess.Popen[str]]:
    process = _holder(HOLD_LOCK, str(settings.warehouse_path), "ingest")
    yield process
    process.kill()
    process.wait()


def test_a_second_ingest_is_told_who_holds_the_warehouse_and_loads_nothing(
    settings: Settings, land: Land, query: Query, other_ingest: subprocess.Popen[str]
) -> None:
    land("events/2026-01-05.csv", EVENTS)

    with pytest.raises(WarehouseBusy) as busy:
        ingest(settings)

    message = str(busy.value)
    assert message.startswith(f"the warehouse {settings.warehouse_path} is in use by ingest since ")
    assert re.search(rf"since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(pid {other_ingest.pid}\); wait for it", message)
    assert not settings.warehouse_path.exists()  # nothing was opened, let alone loaded

    other_ingest.kill()  # even a holder that dies without cleaning up releases the lock
    other_ingest.wait()
    report = ingest(settings)

    assert report.rows_loaded == 1 and query("SELECT event_id FROM raw.events") == [("e1",)]


def test_a_cycle_holding_the_lock_is_named_and_its_own_tasks_run_under_it(
    settings: Settings, land: Land, query: Query
) -> None:
    land("events/2026-01-05.csv", EVENTS)

    with holding_for_children(settings.warehouse_path, "cycle 2026-01-05"):
        # The cycle's own ingest, in this process or a child of it (Airflow's task, dbt), is not blocked.
        assert ingest(settings).rows_loaded == 1
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; from ingest.lock import writer_lock\n"
             "with writer_lock(Path(sys.argv[1]), 'publish'): print('ran')", str(settings.warehouse_path)],
            cwd=REPO, capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "ran"
        # Anyone else is told which cycle runs.
        outsider = {k: v for k, v in os.environ.items() if k != LOCK_HOLDER_ENV}
        other = subprocess.run(
            [sys.executable, "-m", "campaign_loop.cli", "ingest", "--home", str(settings.root)],
            cwd=REPO, capture_output=True, text=True, env=outsider)
        assert other.returncode == 2
        assert "is in use by cycle 2026-01-05 since " in other.stderr and f"(pid {os.getpid()})" in other.stderr
        assert "Traceback" not in other.stderr

    assert LOCK_HOLDER_ENV not in os.environ
    with writer_lock(settings.warehouse_path, "ingest"):  # released when the cycle ends
        pass
    assert query("SELECT count(*) FROM raw._load_log") == [(1,)]


def test_duckdbs_own_lock_error_becomes_the_same_message(settings: Settings, land: Land) -> None:
    """A writer that took no advisory lock (a dbt build started by hand) is named from DuckDB's error."""
    from expectations.publish import publish

    land("events/2026-01-05.csv", EVENTS)
    ingest(settings)
    process = _holder(HOLD_DUCKDB, str(settings.warehouse_path))
    try:
        with pytest.raises(WarehouseBusy, match=rf"in use by another process \(python\S*\) \(pid {process.pid}\); wait"):
            ingest(settings)
        with pytest.raises(WarehouseBusy, match=rf"\(pid {process.pid}\)"):
            publish(settings, "2026-01-05")
    finally:
        process.kill()
        process.wait()


def test_a_second_run_of_a_cycle_does_not_start(settings: Settings, other_ingest: subprocess.Popen[str]) -> None:
    from campaign_loop.runner import CycleFailed, run_cycle

    with pytest.raises(CycleFailed, match=r"cycle 2026-01-05 did not start: the warehouse .* is in use by ingest"):
        run_cycle(settings, 0, settings.root / "airflow.log")


# A stand-in for the dbt executable that reports whether the warehouse's writer lock is held while it runs.
PROBE_DBT = """#!{python}
import fcntl, os, sys
fd = os.open({lock!r}, os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("lock free")
except BlockingIOError:
    print("lock held")
print(" ".join(sys.argv[1:2]))
"""


@pytest.fixture
def probe_dbt(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from campaign_loop import dbt
    from ingest.lock import lock_path

    lock = lock_path(settings.warehouse_path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    script = tmp_path / "dbt"
    script.write_text(PROBE_DBT.format(python=sys.executable, lock=str(lock)))
    script.chmod(0o755)
    monkeypatch.setattr(dbt, "dbt_executable", lambda: script)


def test_dbt_holds_the_writer_lock_while_it_builds(settings: Settings, probe_dbt: None) -> None:
    from campaign_loop.dbt import run_dbt

    assert run_dbt(settings, "build", "--select", "dim_customers").stdout.split("\n")[:2] == ["lock held", "build"]
    # Commands that never open the warehouse run beside a cycle (the DAG's manifest is parsed while one runs),
    # and so does a build on another target.
    assert run_dbt(settings, "parse").stdout.startswith("lock free")
    assert run_dbt(settings, "build", "--target", "postgres").stdout.startswith("lock free")
    with writer_lock(settings.warehouse_path, "ingest"):  # released after each command
        pass


def test_dbt_inside_a_cycle_runs_under_its_lock(settings: Settings, probe_dbt: None) -> None:
    from campaign_loop.dbt import run_dbt

    with holding_for_children(settings.warehouse_path, "cycle 2026-01-05"):
        assert run_dbt(settings, "build").stdout.startswith("lock held")


def test_a_build_by_hand_during_a_cycle_is_told_which_cycle_runs(settings: Settings) -> None:
    """The real `campaign-loop dbt build`: refused before dbt starts, with the cycle's name, not DuckDB's traceback."""
    from campaign_loop.dbt import run_dbt

    cycle = _holder(HOLD_LOCK, str(settings.warehouse_path), "cycle 2026-01-05")
    try:
        with pytest.raises(WarehouseBusy, match=rf"in use by cycle 2026-01-05 since .* \(pid {cycle.pid}\)"):
            run_dbt(settings, "build")
        by_hand = subprocess.run(
            [sys.executable, "-m", "campaign_loop.cli", "dbt", "--home", str(settings.root), "build"],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert by_hand.returncode == 2, by_hand.stderr
        assert "is in use by cycle 2026-01-05 since " in by_hand.stderr and "Traceback" not in by_hand.stderr
        assert not settings.warehouse_path.exists()  # dbt never started
    finally:
        cycle.kill()
        cycle.wait()
