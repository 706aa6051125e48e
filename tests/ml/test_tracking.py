"""Tracking helpers: URIs under settings.mlflow_dir, the server command line, lineage tags."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from ml import tracking


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_tracking_uri_is_sqlite_under_mlflow_dir(settings: Settings) -> None:
    uri = tracking.tracking_uri(settings)
    assert uri == f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}"
    assert uri.startswith("sqlite:////")  # absolute path: four slashes
    assert tracking.artifact_root(settings) == settings.mlflow_dir / "artifacts"
    assert not settings.mlflow_dir.exists()  # deriving a URI creates nothing


def test_server_command_uses_the_317_flags(settings: Settings) -> None:
    cmd = tracking.server_command(settings, port=5055)
    assert cmd[1:4] == ["-m", "mlflow", "server"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == tracking.tracking_uri(settings)
    assert cmd[cmd.index("--artifacts-destination") + 1].startswith("file:///")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5055"


def test_lineage_tags_are_strings_and_skip_missing_values() -> None:
    tags = tracking.lineage_tags(
        cycle_id="2026-01-05",
        dbt_invocation_id="inv-1",
        train_start=date(2025, 1, 6),
        train_end=date(2026, 1, 4),
        row_counts={"mart_customer_features": 20_000},
    )
    assert tags == {
        "cycle_id": "2026-01-05",
        "dbt_invocation_id": "inv-1",
        "train_window_start": "2025-01-06",
        "train_window_end": "2026-01-04",
        "rows.mart_customer_features": "20000",
    }


def test_log_lineage_tags_the_run(tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = tracking.ensure_experiment("lineage", tmp_path / "artifacts")
        assert tracking.ensure_experiment("lineage") == experiment
        with mlflow.start_run(experiment_id=experiment) as run:
            tracking.log_lineage(cycle_id="2026-01-12", validation_result_id="gx-7", row_counts={"orders": 5})
        other = mlflow.MlflowClient().create_run(experiment).info.run_id
        tracking.log_lineage(cycle_id="2026-01-19", run_id=other)
        client = mlflow.MlflowClient()
        assert client.get_run(run.info.run_id).data.tags["validation_result_id"] == "gx-7"
        assert client.get_run(run.info.run_id).data.tags["rows.orders"] == "5"
        assert client.get_run(other).data.tags["cycle_id"] == "2026-01-19"
        assert mlflow.get_experiment(experiment).artifact_location.startswith("file://")
    finally:
        mlflow.set_tracking_uri(None)


def test_log_lineage_without_a_run_fails() -> None:
    with pytest.raises(RuntimeError, match="active run"):
        tracking.log_lineage(cycle_id="2026-01-05")


def test_a_server_env_overrides_an_inherited_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a demo's Airflow tasks inherit after anything in this process called mlflow.set_registry_uri:
    # the child's MLflow must still register models on the server it tracks to.
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere/mlflow.db")
    probe = "import mlflow; print(mlflow.get_tracking_uri()); print(mlflow.get_registry_uri())"
    child = subprocess.run([sys.executable, "-c", probe], env=os.environ | tracking.server_env("http://127.0.0.1:5000"),
                           capture_output=True, text=True, check=True)
    assert child.stdout.split() == ["http://127.0.0.1:5000", "http://127.0.0.1:5000"]


def test_a_store_of_another_home_in_the_environment_is_not_this_homes(tmp_path, monkeypatch) -> None:
    from campaign_loop.config import Settings
    from ml.tracking import tracking_uri, uri_for

    settings = Settings(home=tmp_path / "mine")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}")
    assert uri_for(settings) == tracking_uri(settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")  # a DAG task's server
    assert uri_for(settings) == "http://127.0.0.1:5999"
