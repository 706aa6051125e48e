"""Write the cycle's page and its summary, and log them to MLflow."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from campaign_loop.config import Settings
from campaign_loop.cycle_report.data import collect
from campaign_loop.cycle_report.page import render
from ml import tracking

log = logging.getLogger(__name__)

REPORT_EXPERIMENT = "campaign-loop-reports"
AIRFLOW_URL_ENV = "CAMPAIGN_LOOP_UI_AIRFLOW_URL"
MLFLOW_URL_ENV = "CAMPAIGN_LOOP_UI_MLFLOW_URL"
DEFAULT_AIRFLOW_URL = "http://127.0.0.1:8080"
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"


def report_path(settings: Settings, cycle: int) -> Path:
    return settings.reports_dir / settings.cycle_key(cycle) / "index.html"


def write_report(
    settings: Settings,
    cycle: int,
    *,
    airflow_run_id: str | None = None,
    airflow_url: str | None = None,
    mlflow_url: str | None = None,
    log_to_mlflow: bool = False,
) -> Path:
    """Write ``<reports_dir>/<cycle_id>/index.html`` for ``cycle`` and return its path.

    ``log_to_mlflow`` also logs the page as an artifact of a run (experiment ``campaign-loop-reports``,
    tag ``cycle_id``) through the tracking server in ``MLFLOW_TRACKING_URI`` (else the local store).
    """
    import matplotlib

    matplotlib.use("Agg")
    airflow_url = (airflow_url or os.environ.get(AIRFLOW_URL_ENV) or DEFAULT_AIRFLOW_URL).rstrip("/")
    mlflow_url = (mlflow_url or os.environ.get(MLFLOW_URL_ENV) or DEFAULT_MLFLOW_URL).rstrip("/")
    data = collect(settings, cycle, airflow_run_id)
    path = report_path(settings, cycle)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, airflow_url, mlflow_url), encoding="utf-8")
    (path.parent / "summary.json").write_text(json.dumps({
        "cycle_id": data.cycle_id, "next_cycle_id": data.next_cycle_id, "airflow_run_id": data.airflow_run_id,
        "model_versions": data.model_versions, "notes": data.notes,
    }, indent=2, default=str))
    if log_to_mlflow:
        try:
            log_report_to_mlflow(settings, data.cycle_id, path)
        except Exception as error:  # noqa: BLE001 (the page exists; MLflow is a copy)
            log.warning("report not logged to MLflow: %s", error)
    return path


def log_report_to_mlflow(settings: Settings, key: str, path: Path) -> str:
    """Log the report folder as artifacts of run ``report-<cycle_id>`` tagged ``cycle_id``; return the run id."""
    import mlflow

    uri = tracking.uri_for(settings)
    if not uri.startswith("http"):
        tracking.configure(settings)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(REPORT_EXPERIMENT)
    experiment_id = (experiment.experiment_id if experiment is not None else
                     tracking.ensure_experiment(REPORT_EXPERIMENT,
                                                None if uri.startswith("http") else tracking.artifact_root(settings)))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"report-{key}",
                          tags={tracking.TAG_CYCLE_ID: key, "kind": "cycle_report"}) as run:
        mlflow.log_artifacts(str(path.parent), artifact_path="report")
        return run.info.run_id
