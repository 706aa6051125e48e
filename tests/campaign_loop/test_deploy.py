"""The deploy profile's pieces that need no running stack: its policy, its settings checks, its commands.
The stack itself runs in tests/deploy/test_celery_stack.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_loop.config import Settings
from campaign_loop.deploy import (
    WAREHOUSE_POOL,
    WORKER_NAME_ENV,
    DeployError,
    airflow_commands,
    deploy_env,
    deploy_settings,
    mlflow_command,
    task_policy,
    worker_hostname,
)

PG = "postgresql+psycopg2://airflow@127.0.0.1:5432/airflow"


def _dag_tasks(dag_id: str) -> tuple[object, object]:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, BaseSensorOperator

    class Waits(BaseSensorOperator):
        def poke(self, context: object) -> bool:
            return True

    with DAG(dag_id, schedule=None):
        return EmptyOperator(task_id="works"), Waits(task_id="waits")


@pytest.fixture(autouse=True)
def _fresh_policy_settings() -> None:
    """The policy reads the settings once per process (one DAG parse under Airflow); here, once per test."""
    from campaign_loop import deploy

    deploy._policy_settings.cache_clear()


def test_the_policy_pools_the_dag_s_tasks_but_not_its_sensors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGN_LOOP_TASK_RETRY_DELAY_SECONDS", "5")
    works, waits = _dag_tasks("campaign_feedback_loop")
    task_policy(works)
    task_policy(waits)
    assert works.pool == WAREHOUSE_POOL and waits.pool != WAREHOUSE_POOL
    assert works.retry_delay.total_seconds() == 5


def test_the_policy_leaves_other_dags_alone() -> None:
    works, _ = _dag_tasks("someone_else")
    task_policy(works)
    assert works.pool != WAREHOUSE_POOL


@pytest.mark.parametrize("url", [None, "sqlite:////tmp/airflow.db"])
def test_the_profile_needs_a_database_server(url: str | None, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="airflow_database_url"):
        deploy_settings(Settings(home=tmp_path, airflow_database_url=url))


def test_the_scheduler_runs_the_dag_on_celery_with_the_profile_s_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, airflow_runner="dags_test", airflow_database_url=PG,
                        celery_broker_url="redis://:pw@127.0.0.1:6390/0", task_heartbeat_timeout_seconds=20)
    env = deploy_env(settings, 8080, "http://127.0.0.1:5000", "http://127.0.0.1:8090")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == PG
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:pw@127.0.0.1:6390/0"
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "20"
    assert env["CAMPAIGN_LOOP_AIRFLOW_RUNNER"] == "scheduler"  # not `airflow dags test`'s watchers
    assert (Path(env["PYTHONPATH"].split(":")[0]) / "airflow_local_settings.py").is_file()
    names = list(airflow_commands(settings.model_copy(update={"celery_workers": 3}), 8080, "127.0.0.1"))
    assert [n for n in names if n.startswith("celery-worker-")] == ["celery-worker-1", "celery-worker-2",
                                                                     "celery-worker-3"]


def test_mlflow_s_backend_store_is_the_database_server_and_artifacts_stay_files(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://mlflow@127.0.0.1:5432/mlflow"
    command = mlflow_command(Settings(home=tmp_path, mlflow_database_url=url), 5000, "127.0.0.1")
    assert command[command.index("--backend-store-uri") + 1] == url
    assert command[command.index("--artifacts-destination") + 1].startswith("file://")
    sqlite = mlflow_command(Settings(home=tmp_path), 5000, "127.0.0.1")
    assert sqlite[sqlite.index("--backend-store-uri") + 1].startswith("sqlite:///")


def test_a_worker_reports_its_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_NAME_ENV, "worker-2@host")
    assert worker_hostname() == "worker-2@host"
    monkeypatch.delenv(WORKER_NAME_ENV)
    assert worker_hostname()
