"""Through Airflow: a critical fault in cycle 1 of the demo fails the run at the gate, downstream never runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_a_critical_fault_fails_the_dag_run_at_the_raw_gate(tmp_path: Path) -> None:
    # Given a 2-cycle demo whose cycle 1 delivers no orders and no store receipts
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW"))}
    cli = Path(sys.executable).with_name("campaign-loop")
    # When the demo runs it through Airflow
    run = subprocess.run(
        [str(cli), "demo", "--home", str(home), "--customers", "600", "--cycles", "2", "--history_weeks", "8",
         "--faults", "drop_source:orders,drop_source:pos_receipts"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    # Then the demo exits non-zero, cycle 0 succeeded, and cycle 1 stopped at validate_raw
    assert run.returncode != 0, run.stdout[-3000:]
    assert "Cycle 0: 2026-01-05" in run.stdout and "Cycle 1:" not in run.stdout
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        runs = dict(db.execute(
            "select logical_date, state from dag_run where dag_id = 'campaign_feedback_loop' order by logical_date"
        ).fetchall())
        states = dict(db.execute(
            "select t.task_id, t.state from task_instance t join dag_run r on r.run_id = t.run_id "
            "and r.dag_id = t.dag_id where t.dag_id = 'campaign_feedback_loop' "
            "and r.logical_date = (select max(logical_date) from dag_run where dag_id = 'campaign_feedback_loop')"
        ).fetchall())
    assert sorted(runs.values()) == ["failed", "success"]
    assert states["simulate"] == "success" and states["ingest"] == "success"
    assert states["validate_raw"] == "failed"
    for task in ("validate_marts", "publish", "train", "design", "kpi_alerts", "measure"):
        assert states.get(task) != "success", (task, states.get(task))
    assert states["publish"] == "upstream_failed", states
