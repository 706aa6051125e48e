"""Mart checks as functions of DataFrames, and the marts stage of the gate on small synthetic marts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from expectations import marts
from expectations.gate import run_gate

RNG = np.random.default_rng(7)


def test_reconciliation_allows_a_cent_and_no_more() -> None:
    assert marts.check_reconciliation(1000.004, 1000.0).success
    broken = marts.check_reconciliation(1000.02, 1000.0)
    assert not broken.success and broken.severity == "critical"


def test_freshness_needs_the_latest_event_inside_the_cycle() -> None:
    start, end = datetime(2026, 1, 12), datetime(2026, 1, 19)
    assert marts.check_freshness(datetime(2026, 1, 18, 22), start, end).success
    assert not marts.check_freshness(datetime(2026, 1, 9), start, end).success  # stale: last week's data
    assert not marts.check_freshness(None, start, end).success


def test_a_spiked_kpi_is_an_anomaly_warning() -> None:
    history = [1000, 1040, 980, 1010, 995, 1025]
    assert marts.check_anomaly(history, 1030, kpi="orders").success
    spike = marts.check_anomaly(history, 3000, kpi="orders")
    assert not spike.success and spike.severity == "warning" and spike.observed > 5
    # An outlier in the history does not mask the next one: median and MAD are robust.
    assert not marts.check_anomaly([*history, 50_000], 3000, kpi="orders").success
    assert marts.check_anomaly([10, 12], 500, kpi="orders").success  # too little history to judge


def test_kpi_anomalies_compare_a_cycle_with_the_ones_before() -> None:
    kpis = pd.DataFrame({"cycle_id": [f"2026-0{m}-01" for m in range(1, 8)],
                         "orders": [100, 104, 98, 101, 99, 102, 400], "revenue": [1e4] * 7})
    rows = {r.column: r for r in marts.kpi_anomalies(kpis, "2026-07-01", ["orders", "revenue"])}
    assert not rows["orders"].success and rows["revenue"].success


def test_drifted_features_are_caught_by_psi() -> None:
    reference = pd.DataFrame({"recency_days": RNG.exponential(30, 5000), "frequency": RNG.poisson(3, 5000)})
    same = pd.DataFrame({"recency_days": RNG.exponential(30, 5000), "frequency": RNG.poisson(3, 5000)})
    shifted = pd.DataFrame({"recency_days": RNG.exponential(30, 5000) + 25, "frequency": RNG.poisson(3.4, 5000)})

    assert all(r.success for r in marts.check_drift(reference, same, ["recency_days", "frequency"]))
    rows = {(r.column, r.severity): r for r in marts.check_drift(reference, shifted, ["recency_days", "frequency"])}
    assert not rows["recency_days", "critical"].success  # PSI > 0.25
    assert rows["recency_days", "critical"].observed > 0.25
    small = rows["frequency", "warning"]  # a mean of 3 moving to 3.4: PSI about 0.04-0.06
    assert small.success and 0.01 < small.observed < 0.1


def test_psi_is_zero_for_identical_and_large_for_disjoint_samples() -> None:
    values = RNG.normal(size=2000)
    assert marts.psi(values, values) == pytest.approx(0.0, abs=1e-12)
    assert marts.psi(values, values + 10) > 1.0


def _sends(n_control: int, n_treatment: int) -> pd.DataFrame:
    arms = ["control"] * n_control + ["treatment"] * n_treatment
    probability = [0.1] * n_control + [0.9] * n_treatment
    return pd.DataFrame({"campaign_id": "c1", "arm": arms, "assignment_probability": probability,
                         "recency_days": RNG.exponential(30, len(arms))})


def test_broken_randomisation_is_a_critical_srm() -> None:
    healthy = marts.randomisation_checks(_sends(100, 900), covariates=["recency_days"])
    assert all(r.success for r in healthy)

    broken = _sends(100, 900)
    broken.loc[broken.index[:60], "arm"] = "treatment"  # 40 controls left where 100 were designed
    [srm] = [r for r in marts.randomisation_checks(broken) if r.check == "srm"]
    assert not srm.success and srm.severity == "critical" and srm.observed < 0.001


def test_a_designed_campaign_is_judged_against_its_exported_plan() -> None:
    # The plan's probabilities are P(action) x P(arm): a tiny exploration action makes the mean per arm useless
    plan = pd.DataFrame({"campaign_id": "c1", "arm": ["control"] * 10 + ["treatment"] * 90})
    executed = plan.assign(assignment_probability=[1e-6] * 10 + [0.9] * 90)
    shares = marts.planned_shares(plan)
    assert shares == {"c1": {"control": pytest.approx(0.1), "treatment": pytest.approx(0.9)}}
    [srm] = [r for r in marts.randomisation_checks(executed, plan=shares) if r.check == "srm"]
    assert srm.success and srm.observed == pytest.approx(1.0)

    # The holdout contacted away leaves one arm: not "not judged", a failure against the plan
    contacted = executed.assign(arm="treatment")
    [srm] = [r for r in marts.randomisation_checks(contacted, plan=shares) if r.check == "srm"]
    assert not srm.success and srm.observed < 0.001


def test_covariate_imbalance_is_a_warning() -> None:
    sends = _sends(500, 500)
    sends.loc[sends["arm"] == "treatment", "recency_days"] += 30
    [balance] = marts.check_balance(sends, ["recency_days"], campaign="c1")
    assert not balance.success and balance.severity == "warning" and balance.observed > 0.1


def test_keys_and_relationships() -> None:
    parent = pd.DataFrame({"customer_id": ["a", "b"]})
    assert marts.check_unique(parent, ["customer_id"], table="dim").success
    assert not marts.check_unique(pd.concat([parent, parent]), ["customer_id"], table="dim").success
    child = pd.DataFrame({"customer_id": ["a", None, "z"]})
    orphan = marts.check_relationship(child, "customer_id", parent, "customer_id", table="fct", parent_table="dim")
    assert not orphan.success and orphan.observed == pytest.approx(0.5)


def test_sends_awaiting_their_campaign_are_counted_and_named() -> None:
    assert marts.check_campaign_present([], 0, table="stg").success
    held = [(f"c{i}", 10 - i) for i in range(7)]
    check = marts.check_campaign_present(held, 200, table="stg")
    assert not check.success and check.severity == "warning" and check.observed == pytest.approx(49 / 200)
    assert check.details.startswith("49 of 200 sends name 7 campaign(s)")
    assert "c0 (10), c1 (9), c2 (8), c3 (7), c4 (6), ...;" in check.details and "c5" not in check.details


# --- the marts stage of the gate, on synthetic marts ------------------------------------------------

CYCLE = "2026-02-09"


def _build_marts(path: Path, *, srm_broken: bool = False, drift: bool = False) -> None:
    start = datetime(2026, 1, 5)
    customers = [f"C{i:04d}" for i in range(2000)]
    rows, stamp = [], 0
    for week in range(6):  # six cycles, 2026-01-05 .. 2026-02-09, steady volume
        for _ in range(300):
            stamp += 1
            at = start + timedelta(days=7 * week, seconds=int(RNG.integers(0, 7 * 86_400 - 1)))
            rows.append((f"O{stamp}", "online", customers[int(RNG.integers(0, 2000))], at, round(float(RNG.uniform(5, 200)), 2)))
    orders = pd.DataFrame(rows, columns=["order_key", "sales_channel", "customer_id", "ordered_at", "total_amount"])
    orders["order_id"], orders["is_revenue"] = orders["order_key"], True
    features = []
    for cycle in ("2026-02-02", CYCLE):
        shift = 40 if drift and cycle == CYCLE else 0
        features.append(pd.DataFrame({
            "customer_id": customers, "as_of_date": pd.Timestamp(cycle), "cycle_id": cycle,
            "recency_days": RNG.exponential(30, 2000) + shift, "frequency": RNG.poisson(3, 2000),
            "monetary_value": RNG.gamma(2, 50, 2000), "orders_90d": RNG.poisson(2, 2000),
            "revenue_90d": RNG.gamma(2, 80, 2000), "tenure_days": RNG.integers(30, 900, 2000),
            "sessions_30d": RNG.poisson(4, 2000)}))
    n_control = 40 if srm_broken else 200
    sends = pd.DataFrame({"campaign_id": "cmp-1", "member_id": customers[:2000], "customer_id": customers[:2000],
                          "arm": ["control"] * n_control + ["treatment"] * (2000 - n_control),
                          "assignment_probability": [0.1] * n_control + [0.9] * (2000 - n_control),
                          "starts_at": datetime(2026, 2, 9, 9)})
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        for name, frame in {"fct_orders": orders, "dim_customers": pd.DataFrame({"customer_id": customers}),
                            "fct_customer_features": pd.concat(features), "fct_campaign_sends": sends}.items():
            con.register("f", frame)
            con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM f")
            con.unregister("f")
        con.execute("CREATE TABLE staging.stg_shop__orders AS SELECT total_amount, ordered_at FROM marts.fct_orders")
        con.execute("CREATE TABLE staging.stg_pos__receipts (total_amount DECIMAL(18,4), purchased_at TIMESTAMP)")


@pytest.fixture
def mart_home(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.warehouse_path.parent.mkdir(parents=True)
    return settings


def test_healthy_marts_pass(mart_home: Settings) -> None:
    _build_marts(mart_home.warehouse_path)

    result = run_gate(mart_home, CYCLE, "marts")

    assert result.passed, [c.describe() for c in result.failures]
    assert {"key_unique", "not_null", "relationship", "reconciliation", "freshness", "anomaly",
            "feature_drift", "srm", "covariate_balance", "statistical_checks"} <= {c.check for c in result.checks}
    with duckdb.connect(str(mart_home.warehouse_path)) as con:
        assert con.execute("SELECT count(*) FROM audit.validation_results WHERE stage = 'marts'").fetchone()[0] == len(result.checks)


def test_broken_marts_fail_the_gate(mart_home: Settings) -> None:
    _build_marts(mart_home.warehouse_path, srm_broken=True, drift=True)
    with duckdb.connect(str(mart_home.warehouse_path)) as con:
        con.execute("INSERT INTO marts.fct_orders SELECT * FROM marts.fct_orders LIMIT 1")  # duplicate key + revenue

    result = run_gate(mart_home, CYCLE, "marts")

    assert not result.passed
    critical = {c.check for c in result.critical_failures}
    assert {"srm", "feature_drift", "key_unique", "statistical_checks"} <= critical


def test_a_missing_mart_fails_closed(mart_home: Settings) -> None:
    with duckdb.connect(str(mart_home.warehouse_path)) as con:
        con.execute("CREATE SCHEMA marts")

    result = run_gate(mart_home, CYCLE, "marts")

    assert not result.passed
    assert {c.table for c in result.critical_failures if c.check == "mart_present"} >= {"marts.fct_orders"}


def test_a_holdout_contacted_across_many_small_campaigns_fails_the_pooled_srm() -> None:
    # Given ten 50/50 campaigns of five members each, where the sender treated four of every five
    sends = pd.DataFrame({
        "campaign_id": [f"c{k}" for k in range(10) for _ in range(5)],
        "arm": ["treatment", "treatment", "treatment", "treatment", "control"] * 10,
        "assignment_probability": 0.5,
    })
    checks = marts.randomisation_checks(sends)
    per_campaign = [c for c in checks if c.check == "srm" and "pooled" not in c.column]
    [pooled] = [c for c in checks if c.check == "srm" and "pooled" in c.column]
    # Then no campaign alone is judged broken (chi-square 1.8, p 0.18), but all together are:
    # 40 contacted and 10 held out against 25/25 is chi-square 18, p 2.2e-5 < 0.001.
    assert all(c.success for c in per_campaign)
    assert not pooled.success and pooled.observed == pytest.approx(2.2090e-5, rel=1e-3)
