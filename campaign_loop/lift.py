"""``kpi_campaign_lift``: every campaign arm's lift over its control, from the warehouse's per-arm sums.

dbt aggregates the sufficient statistics (``kpi_campaign_arms``: sums, sums of squares, cross-products);
this step, run by ``publish`` just before the marts are copied to ``published``, infers lift, intervals
and p-values from them with ``ml.ab`` / ``ml.stats``, the same code ``measure`` and the cycle report use.
Why Python and not SQL: docs/decisions/0001-lift-computed-in-python.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from campaign_loop.config import Settings
from ingest.lock import connect_writer, writer_lock
from ml.ab import AnalysisOptions, ArmStats, Correction, Metric, analyze_stats

TABLE = "kpi_campaign_lift"
# The metrics every campaign is measured on; measure() reads the same unit columns from fct_campaign_sends.
# Visits (a session in the campaign window) only where the clickstream covers the window (``measured``).
METRICS: tuple[Metric, ...] = (
    Metric("converted", "binary", covariate="pre_converted"),
    Metric("visited", "binary", covariate="pre_visited"),
    Metric("revenue", "continuous", covariate="pre_revenue"),
    Metric("margin", "continuous", covariate="pre_margin"),
    Metric("revenue_per_order", "ratio", column="revenue", denominator="orders"),
)
COLUMNS: dict[str, str] = {
    "campaign_id": "varchar", "arm": "varchar", "variant_id": "varchar", "control_arm": "varchar", "metric": "varchar",
    "kind": "varchar", "n_control": "integer", "n_arm": "integer", "mean_control": "double", "mean_arm": "double",
    "lift": "double", "lift_ci_low": "double", "lift_ci_high": "double",
    "rel_lift": "double", "rel_lift_ci_low": "double", "rel_lift_ci_high": "double",
    "p_value": "double", "p_value_holm": "double", "p_value_adjusted": "double", "correction": "varchar",
    "method": "varchar",
    "cuped": "boolean", "cuped_theta": "double", "variance_reduction": "double",
    "lift_unadjusted": "double", "lift_ci_low_unadjusted": "double", "lift_ci_high_unadjusted": "double",
    "p_value_unadjusted": "double", "seq_ci_low": "double", "seq_ci_high": "double", "sequential_method": "varchar",
    "lift_ci_low_simultaneous": "double", "lift_ci_high_simultaneous": "double",
    "mde": "double", "roi": "double",
}  # the table's columns and types; dbt_project/models/marts/lift/kpi_campaign_lift.yml documents the same


def arm_key(arm: str, variant_id: Any = None) -> str:
    """The arm ml.ab compares with the control: ``arm``, or ``<arm>:<variant_id>`` for each variant of an arm.

    Two creatives with the same offer and channel are distinct arms (variant_id), each against the control.
    """
    return str(arm) if _text(variant_id) is None else f"{arm}:{variant_id}"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _stats(row: Any, metric: Metric) -> ArmStats:
    """One arm's sufficient statistics of ``metric`` from its kpi_campaign_arms row."""
    column = metric.column or metric.name
    y_sum = float(row[column])
    # A 0/1 outcome is its own square.
    y_sq = y_sum if metric.kind == "binary" else float(row[f"{column}_sq"])
    if metric.denominator is not None:
        return ArmStats(int(row["assigned"]), y_sum, y_sq, float(row["orders"]), float(row["orders_sq"]),
                        float(row["revenue_x_orders"]))
    x = metric.covariate
    x_sum = float(row[x])
    x_sq = x_sum if metric.kind == "binary" else float(row[f"{x}_sq"])
    return ArmStats(int(row["assigned"]), y_sum, y_sq, x_sum, x_sq, float(row[f"{column}_x_pre"]))


def measured(metric: Metric, rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every arm's ``kpi_campaign_arms`` row can measure ``metric``: revenue per order needs orders in
    every arm (its denominator), visits a clickstream that covers the campaign window (visits_tracked = assigned)."""
    rows = list(rows)
    if metric.denominator is not None:
        return all(float(r[metric.denominator]) > 0 for r in rows)
    if metric.name == "visited":
        return all(int(r.get("visits_tracked") or 0) == int(r["assigned"]) for r in rows)
    return True


def campaign_lift(arms: pd.DataFrame, *, control: str = "control", correction: Correction = "dunnett") -> pd.DataFrame:
    """One row per campaign, non-control arm (each variant of an arm its own) and metric, from ``kpi_campaign_arms``.

    ``correction`` (Dunnett's step-down or Holm's, the setting of that name) runs per campaign and metric over its k
    arms; CUPED adjusts where the pre-period varies; the always-valid interval is tuned to the arms' sizes
    now (the campaign's assignment is complete when its sends land). A campaign without a control arm, or with an arm of fewer than two members, has no
    lift; revenue per order is left out where an arm has no orders, visits where the clickstream holds no
    session in the campaign window.
    """
    out: list[dict[str, Any]] = []
    for campaign_id, frame in arms.groupby("campaign_id", sort=True):
        rows = {arm_key(r["arm"], r.get("variant_id")): r for r in frame.to_dict(orient="records")}
        if control not in rows or len(rows) < 2 or min(int(r["assigned"]) for r in rows.values()) < 2:
            continue
        metrics = [m for m in METRICS if measured(m, rows.values())]
        stats = {arm: {m.name: _stats(r, m) for m in metrics} for arm, r in rows.items()}
        report = analyze_stats(stats, metrics, AnalysisOptions(control=control, family="metric",
                                                               proportion_ci="newcombe", correction=correction))
        margin_lift = {c.variant: c.abs_lift for c in report.comparisons if c.metric == "margin"}
        for c in report.comparisons:
            arm = rows[c.variant]
            cost = float(arm["cost"])
            spend = cost + float(arm["discount"])
            # Incremental margin (net of discounts) minus contact cost per unit spent: the plan's expected ROI, measured.
            roi = (margin_lift[c.variant] * c.n_variant - cost) / spend if spend else math.nan
            out.append({
                "campaign_id": campaign_id, "arm": arm["arm"], "variant_id": _text(arm.get("variant_id")),
                "control_arm": control, "metric": c.metric, "kind": c.kind, "n_control": c.n_control, "n_arm": c.n_variant, "mean_control": c.mean_control,
                "mean_arm": c.mean_variant, "lift": c.abs_lift, "lift_ci_low": c.ci_low, "lift_ci_high": c.ci_high,
                "rel_lift": c.rel_lift, "rel_lift_ci_low": c.rel_ci_low, "rel_lift_ci_high": c.rel_ci_high,
                "p_value": c.p_value, "p_value_holm": c.p_value_holm, "p_value_adjusted": c.p_value_adjusted,
                "correction": report.correction, "method": c.method, "cuped": c.cuped, "cuped_theta": c.cuped_theta,
                "variance_reduction": c.variance_reduction, "lift_unadjusted": c.abs_lift_unadjusted,
                "lift_ci_low_unadjusted": c.ci_low_unadjusted, "lift_ci_high_unadjusted": c.ci_high_unadjusted,
                "p_value_unadjusted": c.p_value_unadjusted, "seq_ci_low": c.seq_ci_low, "seq_ci_high": c.seq_ci_high,
                "sequential_method": report.sequential_method, "lift_ci_low_simultaneous": c.ci_low_simultaneous,
                "lift_ci_high_simultaneous": c.ci_high_simultaneous, "mde": c.mde, "roi": roi,
            })
    return pd.DataFrame(out, columns=list(COLUMNS))


def write_lift_table(settings: Settings, schema: str = "marts") -> int | None:
    """Replace ``<schema>.kpi_campaign_lift`` with the lift of ``<schema>.kpi_campaign_arms``: its row count,
    None when dbt built no ``kpi_campaign_arms`` (nothing to infer from)."""
    with writer_lock(settings.warehouse_path, f"{TABLE} in {schema}"), connect_writer(settings.warehouse_path) as con:
        exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = 'kpi_campaign_arms'", [schema]).fetchone()
        if not exists or not exists[0]:
            return None
        arms = con.execute(f"select * from {schema}.kpi_campaign_arms").df()
        lift = campaign_lift(arms, correction=settings.correction)  # noqa: F841 -- read by DuckDB's replacement scan
        columns = ", ".join(f'cast("{name}" as {sql}) as "{name}"' for name, sql in COLUMNS.items())
        con.execute(f"create or replace table {schema}.{TABLE} as select {columns} from lift")
    return len(lift)
