"""The cycle arithmetic shared by the DAG and the CLI."""

from __future__ import annotations

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

    settings = settings_for_run({"exploration": "thompson", "epsilon": 0.12, "thompson_scale": 0.4})
    config = DesignConfig.from_settings(settings, "2026-01-12")
    assert (config.exploration, config.epsilon, config.thompson_scale) == ("thompson", 0.12, 0.4)


def test_a_demo_run_ahead_of_the_simulated_world_says_which_run_to_trigger(tmp_path: Path) -> None:
    # What unpausing the DAG on a demo world does: the scheduler's interval is months past the simulated weeks.
    settings = Settings(home=tmp_path, customers=300, history_weeks=4)
    with pytest.raises(CycleOutOfOrder, match=r"no cycle; this run asks for cycle 45\. Trigger the run of logical date 2026-01-12 \(cycle 0\)"):
        simulate(settings, 45)

    simulate(settings, 0)

    with pytest.raises(CycleOutOfOrder, match=r"cycles 0\.\.0; this run asks for cycle 2\. Trigger the run of logical date 2026-01-19 \(cycle 1\)"):
        simulate(settings, 2)
    assert simulate(settings, 1)["cycle"] == 1


def test_measure_takes_an_undesigned_campaign_s_shares_from_its_sends(tmp_path: Path) -> None:
    # No plan summary (a campaign the platform did not design): the arms' assignment probabilities say the
    # holdout was a fifth, so 20 control of 100 is no sample-ratio mismatch.
    import duckdb

    from campaign_loop.pipeline import measure

    settings = Settings(home=tmp_path)
    settings.warehouse_path.parent.mkdir(parents=True)
    starts = settings.cycle_start(0)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema published")
        con.execute("create table published.fct_campaign_sends (arm varchar, is_converted boolean, margin double, "
                    "assignment_probability double, starts_at timestamp)")
        rows = [("treatment", i < 16, 10.0 if i < 16 else 0.0, 0.8, starts) for i in range(80)]
        rows += [("control", i < 2, 10.0 if i < 2 else 0.0, 0.2, starts) for i in range(20)]
        con.executemany("insert into published.fct_campaign_sends values (?, ?, ?, ?, ?)", rows)
    result = measure(settings, 0)
    assert result["units"] == 100 and result["designed_holdout_share"] == pytest.approx(0.2)
    assert result["srm_ok"] and result["srm_p_value"] == pytest.approx(1.0)
    assert (result["conversion_treatment"], result["conversion_control"], result["lift"]) == pytest.approx((0.2, 0.1, 0.1))
