"""The marts stage of the gate: reads one cycle's marts from the warehouse and runs the mart checks on them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from campaign_loop.config import Settings
from campaign_loop.warehouse import DuckDBWarehouse, read_whole
from expectations import marts
from expectations.raw import batch_window, empty_week
from expectations.results import CheckResult
from expectations.suites import STATISTICS_SUITE, mart_suite_name

# Revenue of the cycle as the mart has it and as staging has it (online orders + store receipts).
MART_REVENUE_SQL = "SELECT coalesce(sum(total_amount), 0) FROM {schema}.fct_orders WHERE ordered_at >= ? AND ordered_at < ?"
STAGED_REVENUE_SQL = """
SELECT coalesce(sum(total_amount), 0) FROM (
    SELECT total_amount, ordered_at AS event_at FROM staging.stg_shop__orders
    UNION ALL SELECT total_amount, purchased_at FROM staging.stg_pos__receipts
) WHERE event_at >= ? AND event_at < ?
"""
# Sends whose campaign staging has not got (its row quarantined, its file late): fct_campaign_sends holds them out.
HELD_SENDS_SQL = """
SELECT s.campaign_id, count(*) AS sends
FROM staging.stg_marketing__campaign_sends s
WHERE NOT EXISTS (SELECT 1 FROM staging.stg_marketing__campaigns c WHERE c.campaign_id = s.campaign_id)
GROUP BY s.campaign_id ORDER BY sends DESC, s.campaign_id
"""
# One row per cycle (start date as cycle_id): the volume KPIs the anomaly check follows.
KPI_SQL = """
SELECT strftime(CAST(? AS DATE) + CAST(floor(date_diff('day', CAST(? AS DATE), CAST(ordered_at AS DATE)) / ?) * ? AS INTEGER),
                '%Y-%m-%d') AS cycle_id,
       count(*) AS orders, sum(total_amount) AS revenue, count(DISTINCT customer_id) AS customers
FROM {schema}.fct_orders WHERE is_revenue AND ordered_at < ? GROUP BY 1
"""


# The snapshot table: each cycle adds its rows (cycle_id), and a cycle's keys are checked on its own rows;
# older snapshots were checked in their cycle.
SNAPSHOT_TABLE = "fct_customer_features"


def missing_mart(schema: str, table: str) -> CheckResult:
    return CheckResult("mart_present", f"{schema}.{table}", None, "critical", False,
                       details="table missing: dbt did not build it")


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return DuckDBWarehouse(connection=con).tables(schema)


def cycle_kpis(con: duckdb.DuckDBPyConnection, settings: Settings, cycle_id: str, schema: str = "marts") -> pd.DataFrame:
    _, end = batch_window(settings, cycle_id)
    start_date = settings.start_date.isoformat()
    return con.execute(KPI_SQL.format(schema=schema),
                       [start_date, start_date, settings.cycle_days, settings.cycle_days, end]).df()


@dataclass(frozen=True)
class _MartCycle:
    """What every check of one cycle's marts reads: the warehouse, the cycle and its batch window."""

    con: duckdb.DuckDBPyConnection
    settings: Settings
    cycle_id: str
    schema: str
    start: datetime
    end: datetime


def mart_frames_and_checks(
    con: duckdb.DuckDBPyConnection, settings: Settings, cycle_id: str, rules: dict[str, Any]
) -> tuple[list[tuple[str, pd.DataFrame]], list[CheckResult]]:
    """(GX suite frames, Python check results) of one cycle's marts; a missing mart is a critical failure."""
    start, end = batch_window(settings, cycle_id)
    cycle = _MartCycle(con, settings, cycle_id, rules.get("schema", "marts"), start, end)
    frames, loaded, checks = _load_marts(cycle, rules["tables"])
    checks += _relationship_checks(cycle, loaded, rules.get("relationships", ()))
    if "fct_orders" in loaded:
        checks += _order_checks(cycle, loaded["fct_orders"], rules)
    checks += _held_send_checks(cycle, rules["campaign_present"])
    features = loaded.get("fct_customer_features")
    if features is not None:
        checks += _drift_checks(cycle, features, rules["drift"])
    sends = loaded.get("fct_campaign_sends")
    if sends is not None and len(sends):
        checks += _randomisation_checks(cycle, sends, features, rules["randomisation"])
    frames.append((STATISTICS_SUITE, marts.statistics_frame(checks)))
    return frames, checks


def _load_marts(cycle: _MartCycle, tables: list[str]
                ) -> tuple[list[tuple[str, pd.DataFrame]], dict[str, pd.DataFrame], list[CheckResult]]:
    """(GX suite frames, every present mart whole by name, a failure per missing mart)."""
    warehouse = DuckDBWarehouse(connection=cycle.con)  # the gate's own: it writes the audit table after
    present = warehouse.tables(cycle.schema)
    frames: list[tuple[str, pd.DataFrame]] = []
    loaded: dict[str, pd.DataFrame] = {}
    missing: list[CheckResult] = []
    for table in tables:
        if table not in present:
            missing.append(missing_mart(cycle.schema, table))
            continue
        frame = read_whole(warehouse, table, schema=cycle.schema)
        loaded[table] = frame
        if table == SNAPSHOT_TABLE and "cycle_id" in frame:
            frame = frame[frame["cycle_id"] == cycle.cycle_id]
        frames.append((mart_suite_name(table), frame))
    return frames, loaded, missing


def _relationship_checks(cycle: _MartCycle, loaded: dict[str, pd.DataFrame], relationships: Any
                         ) -> list[CheckResult]:
    checks = []
    schema = cycle.schema
    for rel in relationships:
        child, parent = loaded.get(rel["child"]), loaded.get(rel["parent"])
        if child is not None and parent is not None:
            checks.append(marts.check_relationship(
                child, rel["column"], parent, rel["parent_column"], table=f"{schema}.{rel['child']}",
                parent_table=f"{schema}.{rel['parent']}", severity=rel.get("severity", "critical")))
    return checks


def _order_checks(cycle: _MartCycle, orders: pd.DataFrame, rules: dict[str, Any]) -> list[CheckResult]:
    """Reconciliation with staging, freshness and the KPI anomaly check of ``fct_orders``."""
    con, schema, start, end, cycle_id = cycle.con, cycle.schema, cycle.start, cycle.end, cycle.cycle_id
    checks = []
    rec = rules["reconciliation"]
    staged = _tables(con, "staging")
    if {"stg_shop__orders", "stg_pos__receipts"} <= staged:
        mart_total = con.execute(MART_REVENUE_SQL.format(schema=schema), [start, end]).fetchone()[0]
        staged_total = con.execute(STAGED_REVENUE_SQL, [start, end]).fetchone()[0]
        checks.append(marts.check_reconciliation(mart_total, staged_total, table=f"{schema}.fct_orders",
                                                 tolerance=rec["tolerance"], severity=rec["severity"]))
    in_window = orders[(orders["ordered_at"] < end)]
    latest = in_window["ordered_at"].max() if len(in_window) else None
    freshness = marts.check_freshness(latest, start, end, table=f"{schema}.fct_orders",
                                      severity=rules["freshness"]["severity"])
    if empty_week(con, cycle_id) and not freshness.success:
        # The raw gate already warned: a week without transactions has nothing fresh to show.
        freshness = replace(freshness, severity="warning",
                            details=f"empty week (no transactions in batch {cycle_id}): {freshness.details}")
    checks.append(freshness)
    anomaly = rules["anomaly"]
    checks += marts.kpi_anomalies(
        cycle_kpis(con, cycle.settings, cycle_id, schema), cycle_id, anomaly["kpis"], table=f"{schema}.fct_orders",
        k=anomaly["k"], min_history=anomaly["min_history"], lookback=anomaly["lookback"],
        severity=anomaly["severity"])
    return checks


def _held_send_checks(cycle: _MartCycle, rule: dict[str, Any]) -> list[CheckResult]:
    """Sends waiting for their campaign: one campaign's missing row must not stop the cycle, nor vanish unsaid."""
    if not {"stg_marketing__campaign_sends", "stg_marketing__campaigns"} <= _tables(cycle.con, "staging"):
        return []
    held = cycle.con.execute(HELD_SENDS_SQL).fetchall()
    total = cycle.con.execute("SELECT count(*) FROM staging.stg_marketing__campaign_sends").fetchone()[0]
    return [marts.check_campaign_present(held, total, table="staging.stg_marketing__campaign_sends",
                                         severity=rule["severity"])]


def _drift_checks(cycle: _MartCycle, features: pd.DataFrame, drift: dict[str, Any]) -> list[CheckResult]:
    settings, cycle_id = cycle.settings, cycle.cycle_id
    current = features[features["cycle_id"] == cycle_id]
    earlier = features[features["cycle_id"] < cycle_id]
    if not (len(current) and len(earlier)):
        return []
    # The training reference: the latest snapshot before this cycle, what the live model learned on.
    reference = earlier[earlier["cycle_id"] == earlier["cycle_id"].max()]
    found = marts.check_drift(reference, current, drift["features"], table=f"{cycle.schema}.fct_customer_features",
                              warn=drift["warn"], critical=drift["critical"], bins=drift["bins"])
    # A snapshot as of a cycle's start reflects the week before it, so the weeks that shape both
    # snapshots run from the one before the reference to this cycle.
    first = settings.cycle_index(date.fromisoformat(str(reference["cycle_id"].iloc[0]))) - 1
    weeks = [settings.cycle_key(c) for c in range(max(first, 0), settings.cycle_index(date.fromisoformat(cycle_id)) + 1)]
    closed = [week for week in weeks if empty_week(cycle.con, week)]
    if closed:
        # A week without trading ages every customer's recency at once: drift by the calendar, not
        # a broken pipeline; the raw gate already warned about the empty week.
        found = [replace(c, severity="warning", details=f"after an empty week ({', '.join(closed)}): {c.details}")
                 if c.severity == "critical" and c.observed is not None else c for c in found]
    return found


def _randomisation_checks(cycle: _MartCycle, sends: pd.DataFrame, features: pd.DataFrame | None,
                          rnd: dict[str, Any]) -> list[CheckResult]:
    """SRM and balance of the campaigns that started in the cycle, against their exported plan where there is one."""
    start, end, cycle_id = cycle.start, cycle.end, cycle.cycle_id
    this_cycle = sends[(sends["starts_at"] >= start) & (sends["starts_at"] < end)] if "starts_at" in sends else sends
    if "variant_id" in this_cycle:
        # Each variant of an arm is an arm of its own, with its own designed share (as measure counts them).
        variant = this_cycle["variant_id"]
        this_cycle = this_cycle.assign(arm=this_cycle["arm"].where(variant.isna(), this_cycle["arm"] + ":" + variant))
    if features is not None and len(this_cycle):
        covariates = [c for c in rnd["covariates"] if c in features]
        snapshot = features[features["cycle_id"] == cycle_id][["customer_id", *covariates]]
        this_cycle = this_cycle.merge(snapshot, on="customer_id", how="left")
    plan_path = cycle.settings.plan_path(cycle_id)
    plan = marts.planned_shares(pd.read_parquet(plan_path, columns=["campaign_id", "arm"])) \
        if plan_path.exists() else None
    rules = marts.RandomisationRules(srm_p_min=rnd["srm_p_min"], smd_max=rnd["smd_max"],
                                     srm_severity=rnd["srm_severity"], smd_severity=rnd["smd_severity"],
                                     table=f"{cycle.schema}.fct_campaign_sends")
    return marts.randomisation_checks(this_cycle, covariates=rnd["covariates"], plan=plan, rules=rules)
