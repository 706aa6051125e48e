"""The demo hands its settings to Airflow's processes through the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_loop.config import Settings
from campaign_loop.runner import airflow_env
from tests.support.telemetry import outside_ci, telemetry_on


@pytest.mark.parametrize("overrides", [
    {},
    {"channel_budgets": "sms:500,email:2000", "offers": "message,pct10", "faults": "drop_source:orders@1",
     "kpi_alert_callback": "alerts:send", "exploration": "epsilon"},
])
def test_every_setting_survives_the_trip_through_the_environment(
    overrides: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A task's Settings() reads only the environment: a value the demo writes in a form Settings cannot
    # read back (a mapping as "{}") fails every task of the run.
    sent = Settings(home=tmp_path, **overrides)
    for key, value in airflow_env(sent).items():
        if key.startswith("CAMPAIGN_LOOP_"):
            monkeypatch.setenv(key, value)
    received = Settings()
    assert received.model_dump() == sent.model_dump() | {"home": tmp_path.resolve()}


@pytest.mark.parametrize("switched", [True, False], ids=["airflow_env", "without-it"])
def test_a_task_s_mlflow_does_not_phone_home(switched: bool, tmp_path: Path) -> None:
    # Given a task's environment outside any test or CI (a retailer's scheduler)
    env = outside_ci() | (airflow_env(Settings(home=tmp_path)) if switched else {})
    # When MLflow is imported there, then it starts no telemetry client; the control shows the probe can tell
    assert telemetry_on(env) is not switched


def test_a_demo_whose_cycles_are_all_published_runs_nothing_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import duckdb

    from campaign_loop.demo import run_demo

    settings = Settings(home=tmp_path, cycles=2)
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema audit")
        con.execute("create table audit.publications as select ?::date as cycle_id", [settings.cycle_key(1)])
    # Not a success: nothing ran, and no Airflow session was started for nothing.
    assert run_demo(settings) == 2
    err = capsys.readouterr().err
    assert "nothing to run: cycles 0-1 are published and cycles is 2" in err
    assert not settings.airflow_home.exists()
