"""Experiments of the designs retailers run, from a hand-made raw layer through dbt, the SRM check and measure.

One small build (no simulator), three campaigns:

* ``c3arms`` (cycle 1, imported without cycle_id): two creatives and a no-mail control in one campaign,
  2:1:1 (assignment probabilities 0.5, 0.25, 0.25), outcomes from the orders;
* ``c21`` (cycle 1): a 2:1 treatment/control test with its probabilities (2/3 and 1/3);
* ``coutcome`` (cycle 2): an outcome-only export (campaign_id, member_id, arm, converted, revenue: no send
  times, no probabilities), 1,000 members an arm, 150 against 50 conversions (z = 0.1 / 0.0134 = 7.45, p = 9.2e-14).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from campaign_loop.config import Settings
from ml.ab import holm, two_proportion_test

from .conftest import run_dbt
from .raw_fixture import create_raw

T = datetime


def _send(campaign: str, member: str, arm: str, probability: str | None = None, **extra: object) -> dict[str, object]:
    sent = T(2026, 1, 13, 9) if arm != "control" and campaign != "coutcome" else None
    return {"campaign_id": campaign, "member_id": member, "arm": arm, "sent_at": sent,
            "assignment_probability": None if probability is None else Decimal(probability)} | extra


def _arm(campaign: str, arm: str, members: range, probability: str) -> list[dict[str, object]]:
    return [_send(campaign, f"M{m:04d}", arm, probability) for m in members]


# Members who ordered inside the cycle-1 campaigns' window (13-19 January): 12 of variant_a, 4 of variant_b,
# 2 of c3arms' control, 10 of c21's treatment and 2 of its control.
BUYERS = [*range(0, 12), *range(40, 44), *range(60, 62), *range(100, 110), *range(140, 142)]
SENDS = (
    _arm("c3arms", "variant_a", range(0, 40), "0.5") + _arm("c3arms", "variant_b", range(40, 60), "0.25")
    + _arm("c3arms", "control", range(60, 80), "0.25")
    + _arm("c21", "treatment", range(100, 140), "0.6667") + _arm("c21", "control", range(140, 160), "0.3333")
    + [_send("coutcome", f"M{m:04d}", "treatment", converted=m < 1150, revenue=Decimal(25) if m < 1150 else Decimal(0))
       for m in range(1000, 2000)]
    + [_send("coutcome", f"M{m:04d}", "control", converted=m < 2050, revenue=Decimal(25) if m < 2050 else Decimal(0))
       for m in range(2000, 3000)]
)


def _campaign(campaign_id: str, channel: str, offer: str, value: str, starts: datetime, ends: datetime,
              cycle_id: str | None) -> dict[str, object]:
    return {"campaign_id": campaign_id, "channel": channel, "offer_type": offer, "offer_value": Decimal(value),
            "starts_at": starts, "ends_at": ends, "cycle_id": cycle_id}


RAW = {
    "customers": [{"member_id": f"M{m:04d}", "updated_at": T(2025, 12, 1), "signup_at": T(2025, 12, 1)}
                  for m in range(3000)],
    "campaigns": [
        _campaign("c3arms", "email", "none", "0", T(2026, 1, 13), T(2026, 1, 19, 23, 59), None),
        _campaign("c21", "sms", "percent_off", "10", T(2026, 1, 14), T(2026, 1, 19, 23, 59), "2026-01-12"),
        _campaign("coutcome", "push", "none", "0", T(2026, 1, 20), T(2026, 1, 26, 23, 59), None),
    ],
    "campaign_sends": SENDS,
    "orders": [{"order_id": f"o{m}", "ordered_at": T(2026, 1, 15, 10), "total_amount": Decimal(20),
                "member_id": f"M{m:04d}"} for m in BUYERS]
    # A guest's order in the week after: the loaded data reaches past the cycle-2 campaign's end.
    + [{"order_id": "late", "ordered_at": T(2026, 1, 27, 10), "total_amount": Decimal(5)}],
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("experiment_designs")
    path = Settings(home=home).warehouse_path
    create_raw(path, RAW)
    result = run_dbt(home, "build", "--exclude", "test_type:unit")
    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(path)) as con:
        # What publish copies after the marts gate: measure reads the published schema.
        con.execute("create schema published")
        con.execute("create table published.fct_campaign_sends as select * from marts.fct_campaign_sends")
    yield home


@pytest.fixture
def con(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(Settings(home=home).warehouse_path), read_only=True) as connection:
        yield connection


def test_an_outcome_only_export_is_measured_with_its_own_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select arm, count(*), count(case when is_converted then 1 end), sum(revenue), sum(margin), "
        "min(outcome_source), max(outcome_source) from marts.fct_campaign_sends where campaign_id = 'coutcome' "
        "group by arm order by arm").fetchall()
    # No orders in the warehouse: before, every arm showed 0 conversions. Margin is 30 % (default_margin_rate).
    assert rows == [("control", 1000, 50, Decimal("1250.0000"), Decimal("375.0000"), "reported", "reported"),
                    ("treatment", 1000, 150, Decimal("3750.0000"), Decimal("1125.0000"), "reported", "reported")]
    observed = con.execute("select distinct outcome_source from marts.fct_campaign_sends "
                           "where campaign_id <> 'coutcome'").fetchall()
    assert observed == [("observed",)]


def test_kpi_p_values_are_not_rounded_away(con: duckdb.DuckDBPyConnection) -> None:
    p_value, converted, control = con.execute(
        "select conversion_lift_p_value, converted, control_conversion_rate from marts.kpi_campaign_arms "
        "where campaign_id = 'coutcome' and arm = 'treatment'").fetchone()
    exact = two_proportion_test(50, 1000, 150, 1000).p_value
    assert (converted, control) == (150, 0.05) and 1e-14 < exact < 1e-12
    # Rounded to 6 places this was 0.0; the SQL's erfc approximation is within 2 % this far in the tail.
    assert p_value == pytest.approx(exact, rel=0.02)
    small = con.execute("select conversion_lift_p_value from marts.kpi_campaign_arms "
                        "where campaign_id = 'c3arms' and arm = 'variant_a'").fetchone()[0]
    assert small == pytest.approx(two_proportion_test(2, 20, 12, 40).p_value, rel=1e-4)


def test_assignment_probability_is_a_double_from_staging_on(con: duckdb.DuckDBPyConnection) -> None:
    types = con.execute(
        "select table_schema, data_type from information_schema.columns where column_name = 'assignment_probability' "
        "and table_name in ('stg_marketing__campaign_sends', 'fct_campaign_sends') order by table_schema").fetchall()
    assert types == [("marts", "DOUBLE"), ("published", "DOUBLE"), ("staging", "DOUBLE")]
    # A 4-byte float turned 0.25 exact but 0.6667 into 0.66670001: the landed value itself arrives here.
    assert con.execute("select distinct assignment_probability from staging.stg_marketing__campaign_sends "
                       "where campaign_id = 'c21' and arm = 'treatment'").fetchall() == [(0.6667,)]


def test_srm_judges_recorded_designs_and_skips_unrecorded_ones(con: duckdb.DuckDBPyConnection) -> None:
    from expectations import marts

    sends = con.execute("select campaign_id, arm, assignment_probability from marts.fct_campaign_sends").df()
    srm = {r.column: r for r in marts.randomisation_checks(sends) if r.check == "srm"}
    # 2:1 with its probabilities: 40 and 20 as designed, where equal arms gave chi2 = 2 x 10^2 / 30, p = 0.0098.
    # The raw layer keeps 4 decimals (0.6667, 0.3333): expected 40.002 and 19.998, chi2 = 0.002^2 / 40.002
    # + 0.002^2 / 19.998 = 3.0e-7, p = 0.99956.
    assert srm["arm (c21)"].success and srm["arm (c21)"].severity == "critical"
    assert srm["arm (c21)"].observed == pytest.approx(0.999563, abs=1e-6)
    assert srm["arm (c3arms)"].success and srm["arm (c3arms)"].observed == pytest.approx(1.0)
    # No probabilities, no plan: the design is unknown, a warning instead of a critical failure.
    unknown = srm["arm (coutcome)"]
    assert unknown.severity == "warning" and not unknown.success and unknown.observed is None
    assert "design unknown" in unknown.details and "control=1000, treatment=1000" in unknown.details


def test_measure_compares_every_arm_of_the_cycle_with_the_control(home: Path) -> None:
    from campaign_loop.pipeline import measure

    result = measure(Settings(home=home), 1)
    # c3arms' variants and c21's treatment against both campaigns' controls (2 + 2 of 40 converted).
    assert result["arms"] == {"control": 40, "treatment": 40, "variant_a": 40, "variant_b": 20}
    assert result["design"] == "the sends' assignment_probability"
    # Expected arm sizes: 80 x (0.5, 0.25, 0.25) for c3arms, 60 x (0.6667, 0.3333) for c21.
    assert result["srm_ok"] and result["srm_p_value"] > 0.99
    assert result["correction"] == "Holm over the 3 comparisons with control, per metric"
    rows = {r["variant"]: r for r in result["comparisons"] if r["metric"] == "converted"}
    raw = [two_proportion_test(4, 40, c, n).p_value for c, n in ((10, 40), (12, 40), (4, 20))]
    assert [rows[a]["p_value_holm"] for a in ("treatment", "variant_a", "variant_b")] == pytest.approx(holm(raw))
    assert (result["conversion_treatment"], result["conversion_control"]) == pytest.approx((26 / 100, 4 / 40))


def test_measure_of_an_outcome_only_export_skips_srm_and_keeps_the_p_value(home: Path) -> None:
    from campaign_loop.pipeline import measure

    result = measure(Settings(home=home), 2)
    assert result["lift"] == pytest.approx(0.1) and result["srm_ok"] is None
    assert result["design"].startswith("design unknown")
    assert result["p_value"] == pytest.approx(two_proportion_test(50, 1000, 150, 1000).p_value, rel=1e-12)


def test_campaigns_without_cycle_id_reach_the_uplift_learner(home: Path) -> None:
    from ml.features import uplift_frame

    frame = uplift_frame(Settings(home=home).warehouse_path)
    per_campaign = frame.groupby("campaign_id").agg(n=("treatment", "size"), as_of=("as_of_date", "first"),
                                                   action=("action", "first"))
    # c3arms starts on 13 January, in the cycle of 12 January; coutcome on the 20th, in the cycle of the 19th.
    assert per_campaign.loc["c3arms"].tolist() == [80, T(2026, 1, 12).date(), "message__email"]
    assert per_campaign.loc["coutcome"].tolist() == [2000, T(2026, 1, 19).date(), "message__push"]
    assert per_campaign.loc["c21", "n"] == 60
    assert math.isclose(frame[frame["campaign_id"] == "coutcome"]["is_converted"].mean(), 0.1)
