"""End to end: the demo runs the real DAG through Airflow and leaves a consistent warehouse."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DemoWorld

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(demo_world) -> tuple[Path, DemoWorld]:
    """The suite's demo world (tests/conftest.py): `campaign-loop demo`, 2 cycles, a 30-day raw PII retention."""
    return demo_world.home, demo_world


def test_demo_runs_every_cycle_through_airflow(demo) -> None:
    home, run = demo
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Cycle 0: 2026-01-05" in run.stdout and "Cycle 1: 2026-01-12" in run.stdout
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        runs = db.execute(
            "select state, count(*) from dag_run where dag_id = 'campaign_feedback_loop' group by state"
        ).fetchall()
        tasks = db.execute(
            "select task_id, state from task_instance where dag_id = 'campaign_feedback_loop'"
        ).fetchall()
    assert runs == [("success", 2)]
    assert {task for task, _ in tasks} >= {"simulate", "ingest", "report"}
    assert {state for _, state in tasks} == {"success"}


def test_demo_accounts_for_every_landed_row(demo) -> None:
    home, run = demo
    assert run.returncode == 0
    with duckdb.connect(str(home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        batches = con.execute("select distinct batch from raw._load_log order by 1").fetchall()
        landed, loaded, quarantined = con.execute(
            "select sum(rows_in_file), sum(rows_loaded), sum(rows_quarantined) from raw._load_log"
        ).fetchone()
        orders = con.execute("select count(*) from raw.orders").fetchone()[0]
        receipts = con.execute("select count(*) from raw.pos_receipts").fetchone()[0]
    assert [b for (b,) in batches] == ["2026-01-05", "2026-01-12"]
    assert landed == loaded + quarantined
    assert orders > 0 and receipts > 0


def test_demo_cycles_pseudonymise_raw_pii_past_the_retention(demo) -> None:
    """After each cycle, raw orders older than 30 days before its end hold pseudonyms, newer ones clear PII."""
    home, run = demo
    assert run.returncode == 0
    assert "password in " in run.stdout and "server_credentials.json" in run.stdout  # the MLflow login's place
    with duckdb.connect(str(home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        old_clear, old_pseudonymised, new_clear = con.execute(
            "select count(*) filter (where ordered_at < date '2025-12-20' and email not like 'hmac-sha256:%'), "
            "count(*) filter (where ordered_at < date '2025-12-20' and email like 'hmac-sha256:%'), "
            "count(*) filter (where ordered_at >= date '2025-12-20' and email like '%@%') from raw.orders"
        ).fetchone()
        audit = con.execute("select cycle_id, table_name, rows_pseudonymised from audit.raw_pii_retention "
                            "where table_name = 'raw.orders' order by cycle_id").fetchall()
    assert old_clear == 0 and old_pseudonymised > 0 and new_clear > 0
    assert [cycle for cycle, _, _ in audit] == ["2026-01-05", "2026-01-12"] and audit[0][2] > 0
