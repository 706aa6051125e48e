"""
### Campaign feedback loop

One run is one campaign cycle (a week by default). It collects what customers did on every channel
during the cycle that just ended, builds and audits the warehouse, retrains the models, and designs
the next campaign; the next run measures that campaign against its randomised holdout.

**Tasks**
1. `simulate`: demo mode only: the simulated retailer lives through the cycle, executing the last plan.
2. `ingest`: every new landing file is loaded exactly once; bad rows go to `raw._quarantine`.
3. `validate_raw`: the landing contract's expectations on this cycle's batch (Great Expectations).
4. `dbt`: the dbt project, one task per model (Cosmos watcher mode: one `dbt build` writes the
   warehouse, one watcher task per model shows it). Under the scheduler each model's data tests
   have a watcher task too; under `airflow dags test` (`make demo`) they run in one `dbt test` task
   after the models. A failing data test stops the cycle before the marts audit.
5. `validate_marts`: keys, reconciliation, freshness, anomalies, drift, randomisation health.
   A critical failure stops the cycle here: the published marts, the champions and the last plan stay.
6. `publish`: the audited marts become the `published` schema that models and analysts read.
7. `train`: churn, propensity, CLV and uplift retrained, logged to MLflow, promoted only past the gate.
8. `measure`: lift of the campaign that ran this cycle, treatment vs holdout, with its interval;
   `kpi_alerts`: the cycle's KPIs against the thresholds in `expectations/kpi_alerts.yaml`.
9. `media_mix` (with `media_mix` on): the media mix model over `kpi_media_daily`: each channel's
   contribution and ROAS with intervals, and budgets of the same total (MLflow model `mmm`).
   `design`: the next campaign from the champions' scores, exported per channel for sending (with
   `media_budgets` on, capped per channel by the media mix's budgets).
10. `report`: the cycle's summary and its HTML report, `<home>/reports/<cycle_id>/index.html`; the task's
    **Cycle report** button opens that page.
11. `retain_raw_pii`: raw e-mails, phones and names older than `raw_pii_retention_days` are replaced by
    their keyed pseudonyms (`audit.raw_pii_retention`); the marts do not change. Last, so it never writes
    the warehouse while another task of the cycle reads it.

**Where to look** (`campaign-loop ui` serves all of them on 127.0.0.1; see docs/ui.md)
- The cycle report: KPI trends, lift with intervals by action and segment, model metrics across cycles,
  the next plan, the validation verdict: http://127.0.0.1:8090/reports/ (one page per `cycle_id`,
  the lineage key: the ISO date the cycle starts; the `report` task's log prints the page's URL and its
  **Cycle report** button links to it).
- Analysts: the dbt docs, http://127.0.0.1:8090/dbt_docs/index.html (customer 360: `dim_customers`).
- Reviewers: the MLflow registry, http://127.0.0.1:5000/#/models (aliases `champion`, `challenger`;
  runs and versions tagged `cycle_id`).
- Data quality: Great Expectations Data Docs, http://127.0.0.1:8090/validation/gx/uncommitted/data_docs/local_site/index.html

**Params**: the cycle's knobs; defaults come from `campaign_loop.config.Settings`
(environment `CAMPAIGN_LOOP_*`), each Param named like its setting and bound by its rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from campaign_loop import pipeline
from campaign_loop.airflow_links import with_report_link
from campaign_loop.config import Settings, load_settings, param_schema
from campaign_loop.dbt import (
    DAG_TARGET,
    DBT_TASK_GROUP,
    MANIFEST_PATH,
    PROFILE_NAME,
    PROJECT_DIR,
    dbt_env,
    dbt_executable,
)
from campaign_loop.pipeline import RUN_PARAMS, cycle_of_logical_date, settings_for_run
from campaign_loop.trigger_journeys import PLAN_ASSET_URI

_defaults = load_settings()  # environment and the home's settings file: no database, no network


def _form_default(key: str) -> Any:
    value = getattr(_defaults, key)
    return list(value) if isinstance(value, tuple) else value  # a form's array field holds a list


def _gate(stage: str) -> dict[str, Any]:
    """A failed audit is final for this data: fail the task without retrying, so the cycle stops at once."""
    from airflow.sdk.exceptions import AirflowFailException

    from expectations import GateFailed

    try:
        return pipeline.validate(*_run(), stage)
    except GateFailed as failure:
        raise AirflowFailException(str(failure)) from failure


def _run() -> tuple[Settings, int]:
    from campaign_loop.dbt_duckdb_plugin import uses_dev_key

    context = get_current_context()
    settings = settings_for_run(dict(context["params"]))
    uses_dev_key(settings.demo)  # every task of a retailer's run fails here without its own PII key
    return settings, cycle_of_logical_date(settings, context["logical_date"])


def _dbt_task_group() -> DbtTaskGroup:
    """Cosmos's task group of the cycle's dbt models (selector ``cycle``); called inside the DAG's context."""
    return DbtTaskGroup(
        group_id=DBT_TASK_GROUP,
        project_config=ProjectConfig(
            PROJECT_DIR, manifest_path=MANIFEST_PATH if MANIFEST_PATH.exists() else None,
            install_dbt_deps=False, env_vars=dbt_env(_defaults),
        ),
        profile_config=ProfileConfig(
            profile_name=PROFILE_NAME, target_name=DAG_TARGET, profiles_yml_filepath=PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            # A subprocess, not dbt in-process: its DuckDB connection must close before later tasks read.
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(dbt_executable()),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if MANIFEST_PATH.exists() else LoadMode.DBT_LS,
            selector="cycle",
            emit_datasets=False,
            # `airflow dags test` runs the watchers one after another once the producer is done: per-model
            # test watchers made a demo cycle's dbt tasks take 61 s instead of 24 s, so there the data tests
            # run in one `dbt test` task after the models. Not NONE: Cosmos then drops the tests from the
            # producer's `dbt build` (`--resource-type model ...`), and no data test ran in a cycle.
            test_behavior=TestBehavior.AFTER_ALL if _defaults.airflow_runner == "dags_test" else TestBehavior.AFTER_EACH,
        ),
        operator_args=(
            # `airflow dags test` runs one task at a time: a deferred watcher would block it before the
            # producer ran, so the watchers reschedule instead and free the runner between pokes.
            {"deferrable": False, "mode": "reschedule", "poke_interval": 5, "timeout": 30 * 60}
            if _defaults.airflow_runner == "dags_test"
            # Under the scheduler, a watcher rescheduled every few seconds can be re-queued before the
            # executor reports its previous try, which Airflow takes for a failure; its retry then runs
            # the model itself, beside the producer, and loses DuckDB's write lock. Deferred to the
            # triggerer, it waits without either.
            else {"deferrable": True, "poke_interval": 5, "timeout": 30 * 60}
        ),
    )


@dag(
    dag_id="campaign_feedback_loop",
    doc_md=__doc__,
    # Weekly cycles run Mondays 06:00 UTC; other lengths every cycle_days from the first run.
    schedule="0 6 * * 1" if _defaults.cycle_days == 7 else pendulum.duration(days=_defaults.cycle_days),
    # The first run is the one after cycle 0 ends (a run works on the cycle that ended at its logical date),
    # so the retailer's own calendar (start_date) decides which dates Airflow will run; none is hard-coded.
    start_date=pendulum.instance(
        datetime.combine(_defaults.cycle_start(1), time(6), tzinfo=UTC)
    ),
    catchup=False,
    max_active_runs=1,
    tags=["campaign-loop", "marketing"],
    default_args={"owner": "campaign-loop", "retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    # Each trigger-form field is the Settings key of its name, with its default, bounds and description.
    params={key: Param(_form_default(key), **param_schema(key)) for key in RUN_PARAMS},
)
def campaign_feedback_loop() -> None:

    @task
    def simulate() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        settings, cycle = _run()
        if not settings.demo:
            raise AirflowSkipException("not in demo mode: landing files come from the retailer")
        try:
            return pipeline.simulate(settings, cycle)
        except pipeline.CycleOutOfOrder as error:  # a retry cannot help: fail at once, say which run to trigger
            raise AirflowFailException(str(error)) from error

    @task(trigger_rule="none_failed")
    def ingest() -> dict[str, Any]:
        return pipeline.ingest(*_run())

    @task
    def validate_raw() -> dict[str, Any]:
        return _gate("raw")

    dbt = _dbt_task_group()

    @task
    def validate_marts() -> dict[str, Any]:
        dbt_invocation_id = pipeline.record_dbt_invocation(*_run())
        return _gate("marts") | {"dbt_invocation_id": dbt_invocation_id}

    @task
    def publish(audit: dict[str, Any]) -> dict[str, Any]:
        return pipeline.publish(*_run(), audit["validation_result_id"]) | audit

    @task
    def kpi_alerts(published: dict[str, Any]) -> dict[str, Any]:
        return pipeline.kpi_alerts(*_run())

    @task
    def train(published: dict[str, Any]) -> dict[str, Any]:
        lineage = {k: published[k] for k in ("dbt_invocation_id", "validation_result_id")}
        return pipeline.train(*_run(), lineage)

    @task
    def measure(published: dict[str, Any]) -> dict[str, Any]:
        return pipeline.measure(*_run())

    @task
    def media_mix(published: dict[str, Any]) -> dict[str, Any]:
        lineage = {k: published[k] for k in ("dbt_invocation_id", "validation_result_id")}
        return pipeline.media_mix(*_run(), lineage)

    # A new plan starts the trigger journeys' next run (dags/trigger_journeys.py), which leave its members alone.
    @task(outlets=[Asset(PLAN_ASSET_URI)])
    def design(trained: dict[str, Any], media: dict[str, Any]) -> dict[str, Any]:
        return pipeline.design(*_run())

    @task
    def report(plan: dict[str, Any], lift: dict[str, Any], kpis: dict[str, Any]) -> dict[str, Any]:
        outcomes = {"plan": plan["summary"], "lift": lift, "kpis": kpis}
        return pipeline.report(*_run(), get_current_context()["dag_run"].run_id, outcomes)

    @task
    def retain_raw_pii(reported: dict[str, Any]) -> dict[str, Any]:
        from ingest.retention import apply_retention

        return apply_retention(*_run())

    audited = validate_marts()
    simulate() >> ingest() >> validate_raw() >> dbt >> audited
    published = publish(audited)
    retain_raw_pii(with_report_link(report(design(train(published), media_mix(published)), measure(published), kpi_alerts(published))))


campaign_feedback_loop()
