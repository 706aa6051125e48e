"""The steps of one campaign cycle, as the Airflow DAG and the CLI both call them.

Each step takes the settings and the cycle it works on and returns a small JSON-able summary:
that is what crosses task boundaries (XCom), never a DataFrame.

The DAG file imports this module, so every DAG parse (each task's too) loads it: the steps import their
models, gates and loaders inside themselves, keeping scikit-learn, MLflow and Great Expectations out of
a parse (tests/test_architecture.py allows function-level imports only for that).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from campaign_loop.actions import TRIGGER_PREFIX
from campaign_loop.config import Settings, load_settings, logical_date_of_cycle

# Still importable from here, where the DAG and the tests look; it lives in config with its inverse.
from campaign_loop.config import cycle_of_logical_date as cycle_of_logical_date

# The key of the `report` step's summary that holds its page's URL: the task's "Cycle report" button reads it
# (campaign_loop.airflow_links). Defined here, not there: this module must not import Airflow, which the
# command line configures for its home only after importing the steps.
REPORT_URL_KEY = "report_url"


class CycleOutOfOrder(RuntimeError):
    """A demo run for a cycle the simulated world cannot live through yet: its cycles run one after another."""


def simulate(settings: Settings, cycle: int) -> dict[str, Any]:
    """Demo mode: the simulated retailer lives through the cycle, executing the plan exported for it."""
    import pandas as pd

    from sim import simulate_period
    from sim.world import WorldStore

    last = WorldStore(settings).last_cycle()
    if cycle > 0 and (last is None or last < cycle - 1):
        # E.g. unpausing the DAG on a demo world schedules today's interval, months past the simulated weeks.
        nxt = 0 if last is None else last + 1
        raise CycleOutOfOrder(
            f"the simulated world under {settings.root} has lived through "
            f"{'no cycle' if last is None else f'cycles 0..{last}'}; this run asks for cycle {cycle}. "
            f"Trigger the run of logical date {logical_date_of_cycle(settings, nxt)} (cycle {nxt}) first, "
            "or run `campaign-loop demo --cycles N`."
        )

    path = settings.plan_path(settings.cycle_key(cycle))
    plan = pd.read_parquet(path) if path.exists() else None
    triggered = _trigger_rows(settings, cycle)
    summary = simulate_period(settings, cycle, plan, triggered)
    return {
        "cycle": cycle,
        "cycle_id": summary.cycle_id,
        "plan": str(path) if plan is not None else None,
        "trigger_sends": None if triggered is None else len(triggered),
        "rows": dict(summary.rows),
    }


def _trigger_rows(settings: Settings, cycle: int) -> Any:
    """The trigger journeys' sends planned for the cycle, None when it has none (the simulator then runs as before)."""
    from ml.export import read_trigger_plans

    rows = read_trigger_plans(settings, settings.cycle_key(cycle))
    return rows if len(rows) else None


def ingest(settings: Settings, cycle: int) -> dict[str, Any]:
    """Load every landing file not loaded yet, through this cycle's batch (later batches wait their turn)."""
    from ingest import ingest as load

    report = load(settings, through=settings.cycle_key(cycle))
    return {"cycle": cycle, "cycle_id": settings.cycle_key(cycle), "report": report.to_rows()}


def batch_counts(settings: Settings, cycle: int) -> list[dict[str, Any]]:
    """Landed / loaded / quarantined rows per source of the cycle's batch, from the load log."""
    from ingest import batch_report

    columns = ("source", "files", "rows_landed", "rows_loaded", "rows_quarantined")
    return [{k: v for k, v in asdict(row).items() if k in columns}
            for row in batch_report(settings, settings.cycle_key(cycle))]


def validate(settings: Settings, cycle: int, stage: str) -> dict[str, Any]:
    """The validation gate; a critical failure raises, so nothing downstream runs (fail closed)."""
    from expectations import require_pass, run_gate

    result = run_gate(settings, settings.cycle_key(cycle), stage)  # type: ignore[arg-type]
    summary = {
        "cycle_id": settings.cycle_key(cycle),
        "stage": stage,
        "validation_result_id": result.validation_result_id,
        "passed": result.passed,
        "warnings": sum(1 for c in result.checks if not c.success and c.severity == "warning"),
        "data_docs": str(result.data_docs) if result.data_docs else None,
    }
    require_pass(result)
    return summary


def record_dbt_invocation(settings: Settings, cycle: int) -> str | None:
    """Tag the newest dbt invocation (dbt's on-run-end hook logs it) with the cycle's lineage key."""
    import duckdb

    with duckdb.connect(str(settings.warehouse_path)) as con:
        row = con.execute(
            "select invocation_id from audit.dbt_invocations order by run_started_at desc limit 1"
        ).fetchone()
        if row is None:
            return None
        con.execute("update audit.dbt_invocations set cycle_id = ? where invocation_id = ?",
                    [settings.cycle_key(cycle), row[0]])
    return str(row[0])


def publish(settings: Settings, cycle: int, validation_result_id: str | None) -> dict[str, Any]:
    """Write-audit-publish: only audited marts reach the `published` schema models and analysts read.

    The campaigns' lift (``kpi_campaign_lift``) is inferred from the audited per-arm sums first, in Python
    (campaign_loop/lift.py), so it is published with the marts it comes from; then each channel's attributed
    conversions beside that measured incrementality (``kpi_attribution_vs_incrementality``,
    campaign_loop/attribution.py).
    """
    from campaign_loop.attribution import write_attribution_table
    from campaign_loop.lift import write_lift_table
    from expectations.publish import publish as publish_marts

    write_lift_table(settings)
    write_attribution_table(settings)
    publication = publish_marts(settings, settings.cycle_key(cycle), validation_result_id)
    return {"cycle_id": publication.cycle_id, "tables": len(publication.tables)}


def kpi_alerts(settings: Settings, cycle: int) -> dict[str, Any]:
    """The cycle's headline KPIs against the thresholds in expectations/kpi_alerts.yaml; alerts are recorded."""
    import importlib

    import duckdb

    from expectations.kpi import evaluate_kpi_alerts, load_kpi_alerts, record_alerts
    from expectations.publish import PUBLISHED_SCHEMA
    from ingest import batch_report

    counts = batch_report(settings, settings.cycle_key(cycle))
    landed = sum(c.rows_landed for c in counts)
    callback = None
    if settings.kpi_alert_callback:
        module, _, name = settings.kpi_alert_callback.partition(":")
        callback = getattr(importlib.import_module(module), name)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        frame = con.execute(
            f"select * from {PUBLISHED_SCHEMA}.kpi_cycle where cycle_number in (?, ?)", [cycle - 1, cycle]
        ).df()
        current = frame[frame["cycle_number"] == cycle].assign(
            cycle_id=settings.cycle_key(cycle),
            quarantine_rate=sum(c.rows_quarantined for c in counts) / landed if landed else 0.0,
        )
        previous = frame[frame["cycle_number"] == cycle - 1]
        alerts = record_alerts(
            con, evaluate_kpi_alerts(current, previous if len(previous) else None, load_kpi_alerts()),
            callback=callback,
        )
    return {"cycle_id": settings.cycle_key(cycle), "alerts": [a.message for a in alerts],
            "kpis": json.loads(current.drop(columns=["cycle_start"]).to_json(orient="records"))}


def train(settings: Settings, cycle: int, lineage: dict[str, Any]) -> dict[str, Any]:
    """Retrain, register and gate every model on the published marts, as of the next cycle's start."""
    from expectations.publish import PUBLISHED_SCHEMA
    from ml.train import train_cycle

    next_cycle = settings.cycle_key(cycle + 1)
    # The runs carry cycle_id = the cycle they score; the cycle whose data trained them is lineage.
    report = train_cycle(settings, next_cycle, {**lineage, "data_cycle_id": settings.cycle_key(cycle)},
                         mode=settings.promotion_mode, schema=PUBLISHED_SCHEMA)
    return report.to_dict()


def media_mix(settings: Settings, cycle: int, lineage: dict[str, Any]) -> dict[str, Any]:
    """Fit, register and gate the media mix model on the published marts; its budgets for the next cycle."""
    from expectations.publish import PUBLISHED_SCHEMA
    from ml.mmm import media_mix_cycle

    next_cycle = settings.cycle_key(cycle + 1)
    if not settings.media_mix:
        return {"cycle_id": next_cycle, "status": "off", "reason": "media_mix is off"}
    return media_mix_cycle(settings, next_cycle, {**lineage, "data_cycle_id": settings.cycle_key(cycle)},
                           PUBLISHED_SCHEMA)


def design(settings: Settings, cycle: int) -> dict[str, Any]:
    """Design the next cycle's campaign from the champions' scores; export it for sending."""
    from expectations.publish import PUBLISHED_SCHEMA
    from ml.decide import DesignConfig, design_campaign
    from ml.export import write_plan, write_scores
    from ml.frequency import fit_fatigue, warehouse_sends, with_frequency_caps
    from ml.mmm import design_channel_budgets
    from ml.score import score_customers
    from ml.send_time import warehouse_send_hours, with_send_hours

    next_cycle = settings.cycle_key(cycle + 1)
    customers = score_customers(settings, schema=PUBLISHED_SCHEMA)
    if settings.send_time == "customer":
        window = (settings.send_window_start, settings.send_window_end)
        customers = with_send_hours(customers, warehouse_send_hours(settings.warehouse_path, window, PUBLISHED_SCHEMA))
    config = DesignConfig.from_settings(settings, next_cycle,
                                        channel_budgets=design_channel_budgets(settings, next_cycle))
    if settings.frequency_cap == "customer":
        customers = with_frequency_caps(customers, fit_fatigue(warehouse_sends(settings.warehouse_path,
                                                                               PUBLISHED_SCHEMA)), config)
    plan = design_campaign(customers, config)
    if settings.policy_choice:
        plan = _choose_policy(settings, customers, plan, config)
    paths = write_plan(plan, settings) | {"scores": write_scores(customers, settings, next_cycle)}
    return {"cycle_id": next_cycle, "summary": plan.summary, "files": {k: str(v) for k, v in paths.items()}}


def _choose_policy(settings: Settings, customers: Any, plan: Any, config: Any) -> Any:
    """The design, or a candidate that off-policy evaluation on the past cycles says earns more (ml/policy_choice.py);
    the design's outcome model is kept first, for the evaluation a cycle from now."""
    from expectations.publish import PUBLISHED_SCHEMA
    from ml import features, policy_choice

    policy_choice.write_predictions(customers, config, settings)
    sends = features.uplift_frame(settings.warehouse_path, schema=PUBLISHED_SCHEMA)
    logs = policy_choice.read_logs(settings, sends)
    chosen = policy_choice.choose_plan(customers, sends, plan, config, logs)
    logging.getLogger(__name__).info("policy choice for %s: %s", config.cycle_id, chosen.summary["policy_choice"]["reason"])
    return chosen


def measure(settings: Settings, cycle: int) -> dict[str, Any]:
    """Lift of the campaigns that started during the cycle, every arm against the randomised control.

    Any design: one treatment arm and a holdout per campaign (the platform's plans, pooled over actions),
    variant arms in one campaign (named arms, or an arm's ``variant_id``s: ``<arm>:<variant_id>``, two
    creatives with the same offer and channel being two arms), k campaigns sharing one holdout, unequal
    allocation. Each member counts once per arm, so a holdout shared by several campaigns is counted once.
    The headline compares every treated member with the control (one pre-specified comparison);
    ``comparisons`` compares each arm with the control, corrected over the k arms per metric by Dunnett's
    step-down or Holm's procedure (the ``correction`` setting; the output's ``correction`` names it). The
    statistics are ``ml.ab``'s, as in the published ``kpi_campaign_lift``: CUPED on the pre-period outcome
    where it varies (``lift`` adjusted, ``*_unadjusted`` without) and an always-valid interval (``seq_ci_*``)
    for a campaign watched daily, its method named (``sequential_method``).
    """
    from campaign_loop.lift import arm_key
    from ml.ab import AnalysisOptions, analyze

    sends = _cycle_sends(settings, cycle)
    # Each variant of an arm is an arm of its own.
    sends["arm"] = [arm_key(a, v) for a, v in zip(sends["arm"], sends["variant_id"], strict=True)]
    units, shared_control = _measured_units(sends)
    result: dict[str, Any] = {"cycle_id": settings.cycle_key(cycle), "units": len(units),
                              "shared_control_duplicates": len(sends) - len(units)}
    if "control" not in set(units["variant"]) or units["variant"].nunique() < 2:
        return result | {"note": "no randomised campaign ran in this cycle"}
    allocation, design_note = _measured_allocation(settings, cycle, units, shared_control)
    if allocation is None:
        logging.getLogger(__name__).warning("measure %s: %s", settings.cycle_key(cycle), design_note)
    metrics = _measured_metrics(units)
    arms = analyze(units, metrics, AnalysisOptions(allocation=allocation, family="metric", proportion_ci="newcombe",
                                                   correction=settings.correction))
    treated = units.assign(variant=units["variant"].where(units["variant"] == "control", "treatment"))
    # A member in two treated arms is one treated member of the headline comparison.
    treated = treated.drop_duplicates(["variant", "member_id"])
    pooled_allocation = None if allocation is None else {
        "control": allocation["control"], "treatment": sum(v for k, v in allocation.items() if k != "control")}
    headline = analyze(treated, metrics, AnalysisOptions(allocation=pooled_allocation, family="metric",
                                                         proportion_ci="newcombe"))
    srm_ok = arms.srm_ok if headline.srm_ok is None else bool(arms.srm_ok and headline.srm_ok)
    return result | {
        "design": design_note,
        "designed_holdout_share": None if allocation is None else allocation["control"] / sum(allocation.values()),
        "srm_p_value": None if arms.srm_ok is None else arms.srm_p_value,
        "srm_ok": srm_ok,
        "srm_note": arms.srm_note,
        "arms": arms.counts,
        "correction": arms.correction,
        "metrics": [m.name for m in metrics],
    } | _headline_conversion(headline) | {"comparisons": _records(arms.frame())}


def _cycle_sends(settings: Settings, cycle: int) -> Any:
    """The published sends of the campaigns that started in the cycle, trigger journeys left out."""
    import duckdb

    from expectations.publish import PUBLISHED_SCHEMA

    start = settings.cycle_start(cycle)
    end = settings.cycle_start(cycle + 1)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select campaign_id, member_id, arm, variant_id, cast(is_converted as integer) as converted, "
            "cast(is_visited as integer) as visited, cast(is_pre_visited as integer) as pre_visited, "
            "cast(revenue as double) as revenue, cast(margin as double) as margin, cast(orders as double) as orders, "
            "cast(is_pre_converted as integer) as pre_converted, cast(pre_revenue as double) as pre_revenue, "
            "cast(pre_margin as double) as pre_margin, assignment_probability "
            f"from {PUBLISHED_SCHEMA}.fct_campaign_sends "
            # Trigger journeys are measured each against its own holdout (measure_triggers), not in the headline.
            f"where arm is not null and starts_at >= ? and starts_at < ? and campaign_id not like '{TRIGGER_PREFIX}%' "
            "order by campaign_id, member_id",
            [start, end],
        ).df()


def _measured_metrics(units: Any) -> list[Any]:
    """The metrics kpi_campaign_lift publishes per campaign, here over the cycle, where the units allow them."""
    from campaign_loop.lift import METRICS

    # Revenue per order only where every arm ordered (its denominator), visits only where the clickstream
    # covers every campaign's window.
    orders = units.groupby("variant")["orders"].sum()
    return [m for m in METRICS if (m.denominator is None or bool(orders.gt(0).all()))
            and (m.name != "visited" or bool(units["visited"].notna().all()))]


def _headline_conversion(headline: Any) -> dict[str, Any]:
    """The headline's conversion comparison (every treated member against the control) as measure's fields."""
    conversion = headline.frame().set_index("metric").loc["converted"]
    return {
        "conversion_control": float(conversion["mean_control"]),
        "conversion_treatment": float(conversion["mean_variant"]),
        "lift": float(conversion["abs_lift"]),
        "lift_ci_low": float(conversion["ci_low"]),
        "lift_ci_high": float(conversion["ci_high"]),
        "p_value": float(conversion["p_value"]),
        "method": str(conversion["method"]),
        "cuped": bool(conversion["cuped"]),
        "lift_unadjusted": float(conversion["abs_lift_unadjusted"]),
        "lift_ci_low_unadjusted": float(conversion["ci_low_unadjusted"]),
        "lift_ci_high_unadjusted": float(conversion["ci_high_unadjusted"]),
        "p_value_unadjusted": float(conversion["p_value_unadjusted"]),
        "seq_ci_low": float(conversion["seq_ci_low"]),
        "seq_ci_high": float(conversion["seq_ci_high"]),
        "sequential_method": headline.sequential_method,
    }


def _records(frame: Any) -> list[dict[str, Any]]:
    """JSON-able rows at full precision: ``to_json`` writes 10 decimals, which publishes a p of 1.5e-13 as 0."""
    import math

    def plain(value: Any) -> Any:
        value = value.item() if hasattr(value, "item") else value
        return None if isinstance(value, float) and math.isnan(value) else value

    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _measured_units(sends: Any) -> tuple[Any, bool]:
    """One row per member and arm (``variant``), a holdout shared by several campaigns counted once; and
    whether campaigns share control members.

    Treated arms keep their names (the platform's per-action ``treatment`` arms pool into one); when
    campaigns share control members and reuse an arm name, each campaign's arm is its own arm
    (``<campaign_id>:<arm>``), since each is then a creative compared with the same holdout.
    """
    control = sends[sends["arm"] == "control"]
    shared = control["member_id"].duplicated().any()
    treated = sends[sends["arm"] != "control"]
    reused = treated.groupby("arm")["campaign_id"].nunique().gt(1)
    variant = sends["arm"].copy()
    if shared and reused.any():
        renamed = (sends["arm"] != "control") & sends["arm"].isin(reused[reused].index)
        variant[renamed] = sends["campaign_id"][renamed] + ":" + sends["arm"][renamed]
    # The first campaign's row of a shared control member: the holdout's window is the campaigns' common one.
    units = sends.assign(variant=variant).drop_duplicates(["variant", "member_id"]).reset_index(drop=True)
    return units, bool(shared)


def _measured_allocation(
    settings: Settings, cycle: int, units: Any, shared_control: bool
) -> tuple[dict[str, float] | None, str]:
    """The arms' designed shares and where they came from; None when nothing records the design."""
    arms = set(units["variant"])
    summary_path = settings.plan_path(settings.cycle_key(cycle)).with_suffix(".summary.json")
    if arms == {"treatment", "control"} and summary_path.exists():
        holdout = float(json.loads(summary_path.read_text())["holdout"]["share"])
        return {"treatment": 1 - holdout, "control": holdout}, f"the plan's holdout share ({summary_path.name})"
    probabilities = units.groupby("variant")["assignment_probability"]
    if probabilities.count().eq(probabilities.size()).all():
        # Campaigns the platform did not design: their sends' assignment probabilities. One holdout shared by
        # several campaigns is one randomisation, each arm's share its members' probability; separate
        # campaigns are separate randomisations, whose expected arm sizes (size x probability) add up.
        if shared_control:
            shares = probabilities.mean()
        else:
            per_campaign = units.groupby(["campaign_id", "variant"])["assignment_probability"].mean()
            sizes = units.groupby("campaign_id").size()
            shares = (per_campaign * sizes.reindex(per_campaign.index.get_level_values(0)).to_numpy()).groupby(
                level="variant").sum()
        return {str(k): float(v) for k, v in shares.items()}, "the sends' assignment_probability"
    missing = sorted(str(a) for a, n in probabilities.count().items() if n < probabilities.size()[a])
    return None, (f"design unknown: arm(s) {', '.join(missing)} have sends without assignment_probability and no "
                  "plan records the shares; sample-ratio check skipped")


def report(settings: Settings, cycle: int, airflow_run_id: str | None = None,
           outcomes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cycle's HTML report under ``<home>/reports/<cycle_id>/``, also logged to MLflow under its cycle_id.

    Returns the run's summary: the report's path and URL (the Airflow UI links to it), the batch's row
    counts and ``outcomes`` (the other steps' summaries, e.g. plan, lift and KPIs) as given.
    """
    from campaign_loop.cycle_report import write_report
    from campaign_loop.ui import report_url

    path = write_report(settings, cycle, airflow_run_id=airflow_run_id, log_to_mlflow=True)
    url = report_url(settings.cycle_key(cycle))
    logging.getLogger(__name__).info("cycle report: %s (served at %s)", path, url)
    return {"loaded": batch_counts(settings, cycle), **(outcomes or {}), REPORT_URL_KEY: url,
            "cycle_id": settings.cycle_key(cycle), "report": str(path)}


# The cycle knobs a marketer sets in the Airflow trigger form; each is a Settings key of the same name.
# `timezone` is not one: it says how ingest reads store times already loaded, so it belongs to the deployment.
RUN_PARAMS: tuple[str, ...] = (
    "demo", "customers", "seed", "budget", "channel_budgets", "holdout_share", "min_detectable_lift", "contact_cap",
    "frequency_cap", "exploration", "epsilon", "thompson_scale", "uplift_pessimism", "channel_preference", "offers", "channels", "assume_consent",
    "send_time", "send_window_start", "send_window_end", "promotion_mode", "media_mix", "media_budgets", "policy_choice",
)


def settings_for_run(params: dict[str, Any] | None) -> Settings:
    """Settings from the environment with the run's Params on top (same key names)."""
    params = params or {}
    return load_settings(**{key: params.get(key) for key in RUN_PARAMS})
