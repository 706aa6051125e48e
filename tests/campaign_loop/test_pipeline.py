"""The cycle arithmetic shared by the DAG and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from campaign_loop.pipeline import (
    CycleOutOfOrder,
    cycle_of_logical_date,
    logical_date_of_cycle,
    settings_for_run,
    simulate,
)


def test_a_run_works_on_the_cycle_that_just_ended() -> None:
    settings = Settings(start_date=date(2026, 1, 5))
    assert cycle_of_logical_date(settings, datetime(2026, 1, 12, 6, tzinfo=UTC)) == 0
    assert cycle_of_logical_date(settings, date(2026, 1, 19)) == 1


def test_logical_dates_of_cycles_round_trip() -> None:
    settings = Settings()
    for cycle in range(10):
        assert cycle_of_logical_date(settings, logical_date_of_cycle(settings, cycle)) == cycle


def test_run_params_override_settings_by_the_same_name() -> None:
    settings = settings_for_run({"customers": 500, "budget": 123.0, "holdout_share": 0.25, "unrelated": 1})
    assert (settings.customers, settings.budget, settings.holdout_share) == (500, 123.0, 0.25)


def test_the_run_s_exploration_reaches_the_design() -> None:
    from ml.decide import DesignConfig

    settings = settings_for_run({"exploration": "thompson", "epsilon": 0.12, "thompson_scale": 0.4,
                                 "uplift_pessimism": 1.5})
    config = DesignConfig.from_settings(settings, "2026-01-12")
    assert (config.exploration, config.epsilon, config.thompson_scale, config.uplift_pessimism) == (
        "thompson", 0.12, 0.4, 1.5)


def test_a_demo_run_ahead_of_the_simulated_world_says_which_run_to_trigger(tmp_path: Path) -> None:
    # What unpausing the DAG on a demo world does: the scheduler's interval is months past the simulated weeks.
    settings = Settings(home=tmp_path, customers=300, history_weeks=4)
    with pytest.raises(CycleOutOfOrder, match=r"no cycle; this run asks for cycle 45\. Trigger the run of logical date 2026-01-12 \(cycle 0\)"):
        simulate(settings, 45)

    simulate(settings, 0)

    with pytest.raises(CycleOutOfOrder, match=r"cycles 0\.\.0; this run asks for cycle 2\. Trigger the run of logical date 2026-01-19 \(cycle 1\)"):
        simulate(settings, 2)
    assert simulate(settings, 1)["cycle"] == 1


def _published_sends(settings: Settings, rows: list[tuple]) -> None:
    """published.fct_campaign_sends with the columns measure reads: (campaign, member, arm, converted, margin, p)."""
    import duckdb

    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema published")
        con.execute("create table published.fct_campaign_sends (campaign_id varchar, member_id varchar, arm varchar, "
                    "is_converted boolean, margin double, assignment_probability double, starts_at timestamp, "
                    "revenue double, orders integer, is_pre_converted boolean, pre_revenue double, pre_margin double, "
                    "variant_id varchar, is_visited boolean, is_pre_visited boolean)")
        starts = settings.cycle_start(0)
        # Revenue twice the margin, one order per converted member, no pre-period (so no CUPED), no clickstream.
        con.executemany("insert into published.fct_campaign_sends values (?, ?, ?, ?, ?, ?, ?, ?, ?, false, 0, 0, null, null, false)",
                        [(*row, starts, 2 * row[4], int(row[3])) for row in rows])


def _arm(campaign: str, arm: str, n: int, converted: int, probability: float | None, first: int = 0) -> list[tuple]:
    return [(campaign, f"m{first + i}", arm, i < converted, 10.0 if i < converted else 0.0, probability)
            for i in range(n)]


def test_measure_takes_an_undesigned_campaign_s_shares_from_its_sends(tmp_path: Path) -> None:
    # No plan summary (a campaign the platform did not design): the arms' assignment probabilities say the
    # holdout was a fifth, so 20 control of 100 is no sample-ratio mismatch.
    from campaign_loop.pipeline import measure

    settings = Settings(home=tmp_path)
    _published_sends(settings, _arm("c1", "treatment", 80, 16, 0.8) + _arm("c1", "control", 20, 2, 0.2, first=80))
    result = measure(settings, 0)
    assert result["units"] == 100 and result["designed_holdout_share"] == pytest.approx(0.2)
    # No clickstream in the window: visits are unknown, not measured (rather than 0 against 0).
    assert result["metrics"] == ["converted", "revenue", "margin", "revenue_per_order"]
    assert result["srm_ok"] and result["srm_p_value"] == pytest.approx(1.0)
    assert (result["conversion_treatment"], result["conversion_control"], result["lift"]) == pytest.approx((0.2, 0.1, 0.1))


def test_measure_compares_variant_arms_of_one_campaign_holm_corrected(tmp_path: Path) -> None:
    # One campaign, two creatives and a no-mail control, 2:1:1 (probabilities 0.5, 0.25, 0.25): each variant
    # against the control, Holm over the k = 2 comparisons (the p-values by hand in tests/ml/test_ab.py's
    # three-arm test; here control 100/1000, variant_a 260/2000, variant_b 115/1000). Holm is asked for: the
    # default, Dunnett's step-down, is tested by hand in tests/dbt/test_experiment_designs.py.
    from campaign_loop.pipeline import measure
    from ml.ab import holm, two_proportion_test

    settings = Settings(home=tmp_path, correction="holm")
    _published_sends(settings, _arm("c1", "variant_a", 2000, 260, 0.5) + _arm("c1", "variant_b", 1000, 115, 0.25, 2000)
                     + _arm("c1", "control", 1000, 100, 0.25, 3000))
    result = measure(settings, 0)
    assert result["arms"] == {"control": 1000, "variant_a": 2000, "variant_b": 1000}
    assert result["srm_ok"] and result["srm_p_value"] == pytest.approx(1.0)
    assert result["correction"] == "Holm over the 2 comparisons with control, per metric"
    rows = {r["variant"]: r for r in result["comparisons"] if r["metric"] == "converted"}
    raw = [two_proportion_test(100, 1000, 260, 2000).p_value, two_proportion_test(100, 1000, 115, 1000).p_value]
    assert [rows["variant_a"]["p_value_holm"], rows["variant_b"]["p_value_holm"]] == pytest.approx(holm(raw), rel=1e-12)
    assert rows["variant_a"]["abs_lift"] == pytest.approx(0.03)
    # The headline: every mailed member (375 of 3,000) against the control (100 of 1,000).
    assert (result["conversion_treatment"], result["conversion_control"]) == pytest.approx((0.125, 0.1))


def test_measure_counts_a_holdout_shared_by_two_campaigns_once(tmp_path: Path) -> None:
    # One campaign per creative, both listing the same 500 holdout members as their control arm.
    from campaign_loop.pipeline import measure

    settings = Settings(home=tmp_path)
    holdout = _arm("cA", "control", 500, 50, 1 / 3, first=1000)
    _published_sends(settings, _arm("cA", "treatment", 500, 70, 1 / 3) + holdout
                     + _arm("cB", "treatment", 500, 60, 1 / 3, first=500)
                     + [("cB", *row[1:]) for row in holdout])
    result = measure(settings, 0)
    assert result["arms"] == {"cA:treatment": 500, "cB:treatment": 500, "control": 500}
    assert result["shared_control_duplicates"] == 500 and result["units"] == 1500
    assert all(r["n_control"] == 500 for r in result["comparisons"])
    assert result["srm_ok"] and result["srm_p_value"] == pytest.approx(1.0)
    assert (result["conversion_treatment"], result["conversion_control"]) == pytest.approx((0.13, 0.1))


def test_measure_without_a_recorded_design_skips_the_sample_ratio_check(tmp_path: Path) -> None:
    # A 2:1 campaign exported without assignment probabilities: equal arms must not be assumed (p ~ 1e-23).
    from campaign_loop.pipeline import measure

    settings = Settings(home=tmp_path)
    _published_sends(settings, _arm("c1", "treatment", 200, 30, None) + _arm("c1", "control", 100, 10, None, 200))
    result = measure(settings, 0)
    assert result["srm_ok"] is None and result["srm_p_value"] is None and result["designed_holdout_share"] is None
    assert result["design"].startswith("design unknown") and "control, treatment" in result["design"]
    assert result["lift"] == pytest.approx(0.05)


def test_measure_publishes_tiny_p_values_unrounded(tmp_path: Path) -> None:
    # 150/1000 vs 50/1000: p = 9.2e-14, which 6 (or 10) decimals would publish as 0.
    from campaign_loop.pipeline import measure
    from ml.ab import two_proportion_test

    settings = Settings(home=tmp_path)
    _published_sends(settings, _arm("c1", "treatment", 1000, 150, 0.5) + _arm("c1", "control", 1000, 50, 0.5, 1000))
    result = json.loads(json.dumps(measure(settings, 0)))  # what crosses XCom
    expected = two_proportion_test(50, 1000, 150, 1000).p_value
    assert 1e-14 < expected < 1e-12
    assert result["p_value"] == pytest.approx(expected, rel=1e-12)
    [row] = [r for r in result["comparisons"] if r["metric"] == "converted"]
    assert row["p_value"] == pytest.approx(expected, rel=1e-12)
