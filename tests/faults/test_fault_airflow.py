"""Through Airflow: critical faults in the next cycle of the suite's demo world fail the run at the gate,
and downstream never runs.

One Airflow run carries every decision fault at once; the gate decides each fault on its own check, so they
do not mask one another, and a missing source, the older critical fault, is tested on the gate itself
(test_fault_gate.py). The run goes on from a copy of the demo world (tests/conftest.py: 5,000 customers, a
year of history, cycles 0-1 published), as `campaign-loop demo --cycles 3` goes on in a home it ran in: a
demo of its own cost this test about 140 s of CI, its cycle 0 alone most of it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DEMO_WORLD, DemoWorld

pytestmark = pytest.mark.e2e

FAULTY_CYCLE = 2

# One run, several faults in the same cycle: each of issue 22's decision checks must be named by the gate.
DECISION_FAULTS = {
    f"scale_amounts:orders.total_amount=100@{FAULTY_CYCLE}": ("scale_shift", "raw.orders"),
    f"resend_orders:day@{FAULTY_CYCLE}": ("content_duplicates", "raw.orders"),
    f"expose_holdout@{FAULTY_CYCLE}": ("holdout_exposure", "raw.campaign_sends"),
    f"shift_timestamps:pos_receipts:-240@{FAULTY_CYCLE}": ("restatement", "raw.orders"),  # on the revenue's table
    f"ignore_consent@{FAULTY_CYCLE}": ("consent_violation", "raw.campaign_sends"),
    f"colliding_ids:events@{FAULTY_CYCLE}": ("key_conflicts", "raw.events"),
}


def test_the_decision_checks_each_fail_the_dag_run_at_the_raw_gate(demo_world: DemoWorld, tmp_path: Path) -> None:
    assert demo_world.returncode == 0, demo_world.stdout[-3000:] + demo_world.stderr[-3000:]
    # Given the demo world with cycles 0 and 1 published (a copy: the browser tests read the original), whose
    # cycle 2 lands amounts x100, a day's orders again under new ids, sends to the holdout, receipts dated
    # into the published cycle, sends to members who had opted out and colliding event ids, all at once
    home = tmp_path / "home"
    cycle_id = demo_world.settings.cycle_key(FAULTY_CYCLE)
    shutil.copytree(demo_world.home, home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW", "MLFLOW_"))}
    cli = Path(sys.executable).with_name("campaign-loop")
    world = DEMO_WORLD | {"cycles": FAULTY_CYCLE + 1}
    # When the demo goes on through Airflow
    run = subprocess.run(
        [str(cli), "demo", "--home", str(home), *(f"--{k}={v}" for k, v in world.items()),
         "--faults", ",".join(DECISION_FAULTS)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    # Then it went on from cycle 2, whose DAG run failed at validate_raw, and nothing after it ran
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "going on from cycle 2" in run.stdout and "Cycle 2:" not in run.stdout, run.stdout[-3000:]
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        runs = db.execute("select state from dag_run where dag_id = 'campaign_feedback_loop' "
                          "order by logical_date").fetchall()
        states = dict(db.execute(
            "select t.task_id, t.state from task_instance t join dag_run r on r.run_id = t.run_id "
            "and r.dag_id = t.dag_id where t.dag_id = 'campaign_feedback_loop' "
            "and r.logical_date = (select max(logical_date) from dag_run where dag_id = 'campaign_feedback_loop')"
        ).fetchall())
    assert runs == [("success",), ("success",), ("failed",)]
    assert states["simulate"] == "success" and states["ingest"] == "success" and states["validate_raw"] == "failed"
    assert states["publish"] == "upstream_failed", states
    for task in ("dbt", "validate_marts", "train", "design", "kpi_alerts", "measure"):
        assert states.get(task) != "success", (task, states.get(task))
    # and the gate's verdict names every fault's check, critically, on its table
    with duckdb.connect(str(home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        failures = set(con.execute(
            'select "check", "table" from audit.validation_results where cycle_id = ? and stage = \'raw\' '
            "and severity = 'critical' and not success", [cycle_id]).fetchall())
    for fault, found in DECISION_FAULTS.items():
        assert found in failures, (fault, sorted(failures))
    # and the reason the failed task raised (the demo's Airflow log) names every fault's check
    log = (home / "logs" / "demo.log").read_text(errors="replace")
    reason = next((line for line in log.splitlines() if f"GateFailed: validation gate raw {cycle_id}" in line), "")
    for check, table in DECISION_FAULTS.values():
        assert f"{check} {table}" in reason, (check, reason[:3000])
