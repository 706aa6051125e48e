"""Run a cycle the way the DAG orders its tasks, and snapshot what users and the next campaign see."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from campaign_loop import pipeline
from campaign_loop.config import Settings
from campaign_loop.dbt import run_dbt
from expectations import GateFailed
from ingest import LandingError

MODELS = ("churn", "propensity", "clv", "uplift")
# The DAG's order: simulate >> ingest >> validate_raw >> dbt >> validate_marts >> publish >> (kpi_alerts,
# measure, train >> design). "publish" here runs publish, kpi_alerts and measure; "design" everything.
STEPS = ("simulate", "ingest", "validate_raw", "dbt", "validate_marts", "publish", "train", "design")


@dataclass
class CycleRun:
    ran: list[str] = field(default_factory=list)
    failed_at: str | None = None  # the gate task that raised GateFailed, or ingest refusing the landing folder
    error: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


def configure_mlflow(settings: Settings) -> None:
    """Point this process's MLflow client at this home (each test works on its own copy)."""
    from ml import tracking

    tracking.configure(settings)


def run_cycle(settings: Settings, cycle: int, through: str = "design") -> CycleRun:
    """Run ``cycle`` step by step; a gate's GateFailed stops it there, like a failed task in the DAG."""
    configure_mlflow(settings)
    run = CycleRun()
    out = run.outputs
    for step in STEPS[: STEPS.index(through) + 1]:
        try:
            if step == "simulate":
                out[step] = pipeline.simulate(settings, cycle)
            elif step == "ingest":
                out[step] = pipeline.ingest(settings, cycle)
            elif step == "validate_raw":
                out[step] = pipeline.validate(settings, cycle, "raw")
            elif step == "dbt":
                result = run_dbt(settings, "build", target_path=settings.root / "dbt-target")
                assert result.returncode == 0, result.stdout[-4000:]
            elif step == "validate_marts":
                invocation = pipeline.record_dbt_invocation(settings, cycle)
                out[step] = pipeline.validate(settings, cycle, "marts") | {"dbt_invocation_id": invocation}
            elif step == "publish":
                audit = out["validate_marts"]
                out[step] = pipeline.publish(settings, cycle, audit["validation_result_id"])
                out["kpi_alerts"] = pipeline.kpi_alerts(settings, cycle)
                out["measure"] = pipeline.measure(settings, cycle)
            elif step == "train":
                audit = out["validate_marts"]
                out[step] = pipeline.train(settings, cycle, {k: audit[k] for k in ("dbt_invocation_id",
                                                                                   "validation_result_id")})
            elif step == "design":
                out[step] = pipeline.design(settings, cycle)
        except (GateFailed, LandingError) as failure:
            # LandingError: ingest stops the run before loading anything (a missing required column), as
            # the DAG's ingest task fails; nothing of the batch is loaded, the files stay for a person.
            run.failed_at, run.error = step, str(failure)
            return run
        run.ran.append(step)
    return run


@dataclass(frozen=True)
class Snapshot:
    published: dict[str, str]  # table -> checksum of its rows
    publications: int
    champions: dict[str, str | None]  # model -> champion version
    registered: dict[str, int]  # model -> versions registered (a retrain registers one, promoted or not)
    plans: dict[str, str]  # plan file -> sha256 of its bytes


def _table_checksum(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    frame = con.execute(f'select * from {schema}."{table}"').df()
    rows = sorted(frame.astype(str).itertuples(index=False, name=None))
    return hashlib.sha256(repr((list(frame.columns), rows)).encode()).hexdigest()


def snapshot(settings: Settings) -> Snapshot:
    from ml.registry import champion_version

    configure_mlflow(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'published' order by 1").fetchall()]
        published = {t: _table_checksum(con, "published", t) for t in tables}
        publications = con.execute("select count(*) from audit.publications").fetchone()[0]
    import mlflow

    client = mlflow.MlflowClient()
    champions, registered = {}, {}
    for model in MODELS:
        version = champion_version(model, client)
        champions[model] = None if version is None else str(version.version)
        registered[model] = len(client.search_model_versions(f"name = '{model}'"))
    plans = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((settings.exports_dir / "plans").glob("*")) if p.is_file()}
    return Snapshot(published, int(publications), champions, registered, plans)


def validation_rows(settings: Settings, cycle_id: str, stage: str | None = None) -> list[dict[str, Any]]:
    """Rows of audit.validation_results for the cycle (and stage)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frame = con.execute(
            'select stage, "check", "table", "column", severity, success, observed, threshold, details '
            "from audit.validation_results where cycle_id = ? and (? is null or stage = ?)",
            [cycle_id, stage, stage]).df()
    return frame.to_dict("records")


def failed(rows: list[dict[str, Any]], check: str, severity: str, table: str | None = None) -> list[dict[str, Any]]:
    return [r for r in rows if r["check"] == check and r["severity"] == severity and not r["success"]
            and (table is None or r["table"] == table)]


def landing_files(settings: Settings, cycle_id: str) -> list[Path]:
    return sorted(p for p in settings.landing_dir.rglob("*") if p.is_file() and cycle_id in p.as_posix())
