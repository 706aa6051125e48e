"""What the cycle report shows, read from the published marts, the audit tables, MLflow, Airflow's metadata and
the plan summary; a source that cannot be read leaves a note on the page instead of failing the report.

Lineage note: a run for cycle K trains the models and designs the plan *for* cycle K+1, so the MLflow runs
and model versions it creates carry ``cycle_id`` = K+1's key (and K's as ``lineage.data_cycle_id``); the
report lists both keys.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from campaign_loop.config import Settings, logical_date_of_cycle
from campaign_loop.dbt_duckdb_plugin import MissingPiiKeyError, uses_dev_key
from campaign_loop.trigger_journeys import delays
from ml.ab import two_proportion_test
from ml.mmm import recommendation_path
from ml.tracking import db_path, uri_for

DAG_ID = "campaign_feedback_loop"
EXPERIMENT = "campaign-loop"
MODELS = ("churn", "propensity", "clv", "uplift")


@dataclass
class ReportData:
    cycle: int
    cycle_id: str
    next_cycle_id: str
    start: str
    end: str
    kpi_daily: Any = None  # DataFrame
    arms: Any = None
    triggers: Any = None  # this cycle's trigger journeys, each against its own holdout
    segments: Any = None
    validation: Any = None
    validation_failures: Any = None
    model_runs: list[dict[str, Any]] = field(default_factory=list)
    model_versions: list[dict[str, Any]] = field(default_factory=list)
    experiment_id: str | None = None
    plan: dict[str, Any] | None = None
    attribution: Any = None  # kpi_attribution_vs_incrementality
    media_mix: dict[str, Any] | None = None  # ml.mmm.media_mix_cycle's output for the next cycle, if it ran
    airflow_run_id: str | None = None
    airflow_state: str | None = None
    notes: list[str] = field(default_factory=list)
    dev_pii_key: bool = False  # pseudonymised with the public development key (a demo without CAMPAIGN_LOOP_PII_KEY)


def _read_warehouse(settings: Settings, data: ReportData) -> None:
    import duckdb
    import pandas as pd

    if not settings.warehouse_path.exists():
        data.notes.append(f"no warehouse at {settings.warehouse_path}")
        return
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        def query(sql: str, params: Sequence[Any] = ()) -> pd.DataFrame | None:
            try:
                return con.execute(sql, list(params)).df()
            except duckdb.Error as error:
                data.notes.append(f"query failed: {str(error).splitlines()[0]}")
                return None

        data.kpi_daily = query(
            "select order_date, orders, revenue, margin, active_customers, average_order_value "
            "from published.kpi_daily where order_date < ? order by order_date", [data.end])
        # The lift ml.ab inferred from the warehouse's per-arm sums at publication (campaign_loop/lift.py).
        data.arms = query(
            "select campaign_id, arm, n_arm as assigned, mean_arm as conversion_rate, "
            "mean_control as control_conversion_rate, lift as conversion_lift, lift_ci_low as conversion_lift_ci_low, "
            "lift_ci_high as conversion_lift_ci_high, p_value as conversion_lift_p_value, p_value_holm, "
            "seq_ci_low, seq_ci_high, cuped, lift_unadjusted, roi, method, correction, sequential_method "
            "from published.kpi_campaign_lift where metric = 'converted' and campaign_id like ? "
            "order by campaign_id, arm", [f"{data.cycle_id}-%"])
        # Each channel's attributed conversions beside its holdouts' measurement (campaign_loop/attribution.py).
        data.attribution = query(
            "select channel, journeys, converting_journeys, last_touch_conversions, linear_conversions, "
            "markov_conversions, removal_effect, experiments, incremental_conversions, incremental_ci_low, "
            "incremental_ci_high, last_touch_to_incremental, markov_to_incremental, markov_within_incremental_ci "
            "from published.kpi_attribution_vs_incrementality order by channel")
        data.triggers = query(
            "select campaign_id, n_arm as n_treatment, n_control, mean_arm as conversion_rate, "
            "mean_control as control_conversion_rate, lift as conversion_lift, lift_ci_low as conversion_lift_ci_low, "
            "lift_ci_high as conversion_lift_ci_high, p_value as conversion_lift_p_value, roi "
            "from published.kpi_campaign_lift where metric = 'converted' and campaign_id like ? "
            "order by campaign_id", [f"trigger-%-{data.cycle_id}-%"])
        sent = query("select campaign_id, member_id, sent_at from published.fct_campaign_sends "
                     "where campaign_id like ? and sent_at is not null", [f"trigger-%-{data.cycle_id}-%"])
        data.segments = query(
            """
            select coalesce(f.rfm_segment, 'unknown') as segment,
                   count(*) filter (where s.arm = 'treatment') as n_treatment,
                   count(*) filter (where s.arm = 'control') as n_control,
                   count(*) filter (where s.arm = 'treatment' and s.is_converted) as converted_treatment,
                   count(*) filter (where s.arm = 'control' and s.is_converted) as converted_control,
                   avg(cast(s.is_converted as double)) filter (where s.arm = 'treatment') as p_treatment,
                   avg(cast(s.is_converted as double)) filter (where s.arm = 'control') as p_control
            from published.fct_campaign_sends s
            left join published.fct_customer_features f
              on f.customer_id = s.customer_id and f.cycle_id = s.cycle_id
            where s.cycle_id = ? and s.arm in ('treatment', 'control')
            group by 1 order by 1
            """, [data.cycle_id])
        data.validation = query(
            "select stage, severity, count(*) as checks, count(*) filter (where not success) as failed, "
            "max(validation_result_id) as validation_result_id "
            "from audit.validation_results where cycle_id = ? group by all order by stage, severity",
            [data.cycle_id])
        data.validation_failures = query(
            "select stage, severity, \"table\", \"check\", \"column\", observed, threshold "
            "from audit.validation_results where cycle_id = ? and not success order by stage, severity, \"table\"",
            [data.cycle_id])
    if data.segments is not None and len(data.segments):
        data.segments = _with_interval(data.segments)
    if data.triggers is not None and sent is not None:
        data.triggers = _with_delay(settings, data.triggers, sent)


def _with_delay(settings: Settings, triggers: Any, sent: Any) -> Any:
    """Each trigger campaign's median and 90th-percentile hours from the event to its landed send (the trigger
    DAG's ``measure`` reports the same per trigger over every cycle)."""
    hours = delays(settings, sent, by="campaign_id")
    return triggers.assign(
        delay_hours_median=[hours.get(c, {}).get("median", math.nan) for c in triggers["campaign_id"]],
        delay_hours_p90=[hours.get(c, {}).get("p90", math.nan) for c in triggers["campaign_id"]])


def _with_interval(frame: Any) -> Any:
    """Difference in conversion (treatment - control) with the 95% interval ml.ab gives an action
    without a pre-period (Newcombe's, which keeps its width when an arm has no conversions)."""
    frame = frame.copy()
    lifts, lows, highs = [], [], []
    for row in frame.itertuples():
        if not row.n_treatment or not row.n_control:
            lifts.append(math.nan), lows.append(math.nan), highs.append(math.nan)
            continue
        test = two_proportion_test(int(row.converted_control), int(row.n_control), int(row.converted_treatment),
                                   int(row.n_treatment), ci="newcombe")
        lifts.append(test.diff), lows.append(test.ci_low), highs.append(test.ci_high)
    frame["lift"], frame["ci_low"], frame["ci_high"] = lifts, lows, highs
    return frame


def _read_mlflow(settings: Settings, data: ReportData) -> None:
    if not db_path(settings).exists():
        data.notes.append("no MLflow store yet")
        return
    try:
        from mlflow import MlflowClient

        # A DAG task's tracking server (over this home's store) answers in milliseconds; opening the SQLite
        # store directly first builds an SQLAlchemy store and checks its migrations, seconds per report.
        uri = uri_for(settings)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            data.notes.append(f"no MLflow experiment {EXPERIMENT!r} yet")
            return
        data.experiment_id = experiment.experiment_id
        runs = client.search_runs([experiment.experiment_id], max_results=1000, order_by=["attributes.start_time ASC"])
        for run in runs:
            tags = run.data.tags
            data.model_runs.append({
                "run_id": run.info.run_id,
                "model": tags.get("model_name", run.info.run_name or "?"),
                "cycle_id": tags.get("cycle_id", ""),
                "decision": tags.get("gate.decision", ""),
                "metrics": {k: v for k, v in run.data.metrics.items() if not k.startswith("champion.")},
            })
        for name in MODELS:
            try:
                versions = client.search_model_versions(f"name = '{name}'")
            except Exception:  # noqa: BLE001 (a missing model is not an error here)
                continue
            aliases = {}
            with contextlib.suppress(Exception):
                aliases = {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
            for version in versions:
                if version.tags.get("cycle_id") in (data.cycle_id, data.next_cycle_id):
                    data.model_versions.append({
                        "model": name, "version": str(version.version), "cycle_id": version.tags.get("cycle_id"),
                        "aliases": sorted(a for a, v in aliases.items() if v == str(version.version)),
                        "decision": version.tags.get("gate.decision", ""), "run_id": version.run_id,
                    })
    except Exception as error:  # noqa: BLE001 (the report must not fail the cycle over MLflow)
        data.notes.append(f"MLflow not readable: {error}")


def _read_airflow(settings: Settings, data: ReportData, run_id: str | None) -> None:
    """The Airflow run of this cycle: given by the caller (the DAG), else found in the metadata DB by date."""
    if run_id:
        data.airflow_run_id = run_id
        return
    db = settings.airflow_home / "airflow.db"
    if not db.exists():
        return
    logical = logical_date_of_cycle(settings, data.cycle).isoformat()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute(
                "select run_id, state from dag_run where dag_id = ? and substr(logical_date, 1, 10) = ? "
                "order by id desc limit 1", (DAG_ID, logical)).fetchone()
    except sqlite3.Error as error:
        data.notes.append(f"Airflow metadata not readable: {error}")
        return
    if row:
        data.airflow_run_id, data.airflow_state = row


def collect(settings: Settings, cycle: int, airflow_run_id: str | None = None) -> ReportData:
    data = ReportData(
        cycle=cycle,
        cycle_id=settings.cycle_key(cycle),
        next_cycle_id=settings.cycle_key(cycle + 1),
        start=settings.cycle_start(cycle).isoformat(),
        end=settings.cycle_start(cycle + 1).isoformat(),
    )

    try:
        data.dev_pii_key = uses_dev_key(settings.demo)
    except MissingPiiKeyError as error:  # the cycle's tasks refused to run; the page says why
        data.notes.append(str(error))
    _read_warehouse(settings, data)
    _read_mlflow(settings, data)
    _read_airflow(settings, data, airflow_run_id)
    media_mix = recommendation_path(settings, data.next_cycle_id)
    if media_mix.is_file():
        data.media_mix = json.loads(media_mix.read_text())
    plan = settings.plan_path(data.next_cycle_id).with_suffix(".summary.json")
    if plan.exists():
        data.plan = json.loads(plan.read_text())
    else:
        data.notes.append(f"no plan summary at {plan}")
    return data
