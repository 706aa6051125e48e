"""Through Airflow: critical faults in cycle 1 of the demo fail the run at the gate, downstream never runs.

One Airflow run carries every decision fault at once (each Airflow demo costs about 100 s of CI); the gate
decides each fault on its own check, so they do not mask one another, and a missing source, the older
critical fault, is tested on the gate itself (test_fault_gate.py)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.e2e


# One run, several faults in the same cycle: each of issue 22's decision checks must be named by the gate.
DECISION_FAULTS = {
    "scale_amounts:orders.total_amount=100@1": ("scale_shift", "raw.orders"),
    "resend_orders:day@1": ("content_duplicates", "raw.orders"),
    "expose_holdout@1": ("holdout_exposure", "raw.campaign_sends"),
    "shift_timestamps:pos_receipts:-240@1": ("restatement", "raw.orders"),  # reported on the revenue's table
    "ignore_consent@1": ("consent_violation", "raw.campaign_sends"),
    "colliding_ids:events@1": ("key_conflicts", "raw.events"),
}


def test_the_decision_checks_each_fail_the_dag_run_at_the_raw_gate(tmp_path: Path) -> None:
    # Given a 2-cycle demo (the fault tests' 1,500 customers: enough orders for the scale check) whose cycle 1
    # lands amounts x100, a day's orders again under new ids, sends to the holdout, receipts dated into the
    # published cycle, sends to members who had opted out and colliding event ids, all at once
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW"))}
    cli = Path(sys.executable).with_name("campaign-loop")
    # When the demo runs it through Airflow
    run = subprocess.run(
        [str(cli), "demo", "--home", str(home), "--customers", "1500", "--cycles", "2", "--history_weeks", "8",
         "--holdout_share", "0.5", "--faults", ",".join(DECISION_FAULTS)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    # Then cycle 1's DAG run failed at validate_raw and nothing after it ran
    assert run.returncode != 0, run.stdout[-3000:]
    assert "Cycle 0: 2026-01-05" in run.stdout and "Cycle 1:" not in run.stdout
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        runs = db.execute("select state from dag_run where dag_id = 'campaign_feedback_loop' "
                          "order by logical_date").fetchall()
        states = dict(db.execute(
            "select t.task_id, t.state from task_instance t join dag_run r on r.run_id = t.run_id "
            "and r.dag_id = t.dag_id where t.dag_id = 'campaign_feedback_loop' "
            "and r.logical_date = (select max(logical_date) from dag_run where dag_id = 'campaign_feedback_loop')"
        ).fetchall())
    assert runs == [("success",), ("failed",)]
    assert states["simulate"] == "success" and states["ingest"] == "success" and states["validate_raw"] == "failed"
    assert states["publish"] == "upstream_failed", states
    for task in ("dbt", "validate_marts", "train", "design", "kpi_alerts", "measure"):
        assert states.get(task) != "success", (task, states.get(task))
    # and the gate's verdict names every fault's check, critically, on its table
    with duckdb.connect(str(home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        failures = set(con.execute(
            'select "check", "table" from audit.validation_results where cycle_id = ? and stage = \'raw\' '
            "and severity = 'critical' and not success", ["2026-01-12"]).fetchall())
    for fault, found in DECISION_FAULTS.items():
        assert found in failures, (fault, sorted(failures))
    # and the reason the failed task raised (the demo's Airflow log) names every fault's check
    log = (home / "logs" / "demo.log").read_text(errors="replace")
    reason = next((line for line in log.splitlines() if "GateFailed: validation gate raw 2026-01-12" in line), "")
    for check, table in DECISION_FAULTS.values():
        assert f"{check} {table}" in reason, (check, reason[:3000])
