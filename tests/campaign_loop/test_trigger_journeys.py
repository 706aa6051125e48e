"""Trigger journeys on a simulated world whose true effects are known.

Cycle 0 runs business as usual and lands; the trigger journeys run at the start of cycle 1 on the built marts
(win-back reads a churn score export, here the simulator's own knowledge of who dropped out); the world lives
through cycle 1 executing the triggers' sends as second messages beside business as usual; the next build measures each trigger
against its own holdout. The simulator knows each member's true effect of each action, so each trigger's true
lift is known and must lie within the interval measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from campaign_loop.actions import TRIGGERS
from campaign_loop.config import Settings
from expectations.deliveries import check_consent_violation
from sim.oracle import true_trigger_lift
from tests.dbt.conftest import run_dbt

SELECT = ("run", "--select", "+fct_trigger_candidates", "+kpi_campaign_arms", "+fct_scoring_rows")


@dataclass(frozen=True)
class TriggerWorld:
    settings: Settings
    planned: dict[str, Any]
    rows: pd.DataFrame  # the run's plan rows
    consent_violations: int
    measured: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> TriggerWorld:
    from campaign_loop import trigger_journeys
    from ingest import ingest
    from ml.export import read_trigger_plans
    from sim import simulate_period

    home = tmp_path_factory.mktemp("triggers")
    settings = Settings(home=home, customers=5000, triggers=tuple(TRIGGERS), trigger_holdout_share=0.3)
    simulate_period(settings, 0)
    ingest(settings)
    assert run_dbt(home, *SELECT).returncode == 0
    _churn_scores(settings)
    planned = trigger_journeys.plan_at_cycle_start(settings, 1, schema="marts")
    rows = read_trigger_plans(settings, settings.cycle_key(1))
    summary = simulate_period(settings, 1, None, rows)
    ingest(settings)
    build = run_dbt(home, *SELECT)
    assert build.returncode == 0, build.stdout[-3000:]
    measured = trigger_journeys.measure(settings, schema="marts")
    return TriggerWorld(settings, planned, rows, summary.consent_violations, measured)


def _churn_scores(settings: Settings) -> None:
    """A scores export for cycle 1 whose p_churn is what the simulator knows: 0.9 for a member who dropped out."""
    effects = pd.read_parquet(settings.truth_dir / "effects" / f"{settings.cycle_key(0)}.parquet",
                              columns=["member_id", "alive"])
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        customers = con.sql("select customer_id, member_id from marts.dim_customers where member_id is not null").df()
    scores = customers.merge(effects, on="member_id")
    scores["p_churn"] = np.where(scores["alive"], 0.1, 0.9)
    path = settings.exports_dir / "scores" / f"{settings.cycle_key(1)}.parquet"
    path.parent.mkdir(parents=True)
    scores[["customer_id", "p_churn"]].to_parquet(path)


def test_the_run_plans_every_trigger_with_its_own_holdout_and_the_world_sends_them_with_consent(world: TriggerWorld) -> None:
    rows = world.rows
    assert world.planned["sends"] == len(rows) > 200
    by_trigger = rows.groupby("trigger")["arm"].value_counts().unstack(fill_value=0)
    assert set(by_trigger.index) == set(TRIGGERS), by_trigger
    assert (by_trigger["control"] > 0).all() and (by_trigger["treatment"] > 0).all()
    assert abs(len(rows[rows["arm"] == "control"]) / len(rows) - 0.3) < 0.05
    assert world.consent_violations == 0
    with duckdb.connect(str(world.settings.warehouse_path), read_only=True) as con:
        # The raw gate's check: a campaign is one channel, and no send of the batch went against a consent.
        [violations] = check_consent_violation(con, world.settings.cycle_key(1))
    assert violations.success, violations.details
    with duckdb.connect(str(world.settings.warehouse_path), read_only=True) as con:
        landed = con.sql("select campaign_id, member_id, arm, sent_at, assignment_probability "
                         "from marts.fct_campaign_sends where campaign_id like 'trigger-%'").df()
    # Every planned row lands (beside business as usual) with its arm, its probability, and the treated at
    # their own send time.
    merged = landed.merge(rows, on=["campaign_id", "member_id"], suffixes=("", "_planned"))
    assert len(merged) == len(landed) == len(rows)
    assert (merged["arm"] == merged["arm_planned"]).all()
    assert np.allclose(merged["assignment_probability"], merged["assignment_probability_planned"])
    treated = merged[merged["arm"] == "treatment"]
    assert treated["sent_at"].notna().all() and merged.loc[merged["arm"] == "control", "sent_at"].isna().all()
    assert (abs(pd.to_datetime(treated["sent_at"]) - pd.to_datetime(treated["send_at"])) <= pd.Timedelta(seconds=1)).all()


def test_each_triggers_measured_lift_covers_its_true_lift(world: TriggerWorld) -> None:
    """The five intervals hold the truth together at 95 %: each 95 % interval widened to Bonferroni's 99 %."""
    truths = true_trigger_lift(world.settings, 1)
    measured = world.measured["triggers"]
    widen = stats.norm.ppf(1 - 0.05 / (2 * len(TRIGGERS))) / stats.norm.ppf(0.975)
    checked = {}
    for name, (truth, assigned) in truths.items():
        m = measured[name]
        assert m["n_treatment"] + m["n_control"] == assigned, name
        low = m["lift"] - (m["lift"] - m["lift_ci_low"]) * widen
        high = m["lift"] + (m["lift_ci_high"] - m["lift"]) * widen
        # No member bought in either arm: Newcombe's interval still has width (ml.ab._cuped_applies).
        assert m["lift_ci_high"] - m["lift_ci_low"] > 0, (name, m)
        checked[name] = (round(truth, 4), round(low, 4), round(high, 4))
        assert low <= truth <= high, (name, checked[name], m)
    assert len(truths) == len(TRIGGERS) == len(checked), (truths, measured)


def test_the_measured_delay_from_event_to_send_is_reported_per_trigger(world: TriggerWorld) -> None:
    for name, rule in TRIGGERS.items():
        delay = world.measured["triggers"][name]["delay_hours"]
        # A weekly batch lands its events at the week's end: the send waits at least the rule's delay, and at
        # most the week plus the rule's window.
        assert rule.delay_hours <= delay["median"] <= rule.delay_hours + rule.window_hours + 7 * 24, (name, delay)



def test_a_run_before_the_weeks_scores_reads_last_weeks_churn_and_sends_win_back(world: TriggerWorld) -> None:
    """The quarter-hourly runs of a new cycle start before its weekly run writes the cycle's scores: win-back
    reads the newest export with a churn score instead of flagging nobody."""
    from campaign_loop import trigger_journeys

    settings = world.settings
    assert not (settings.exports_dir / "scores" / f"{settings.cycle_key(2)}.parquet").exists()
    planned = trigger_journeys.plan_at_cycle_start(settings, 2, schema="marts")
    assert planned["funnel"]["win_back"]["one_trigger_per_run"] > 0, planned["funnel"]["win_back"]
    assert "win_back" not in planned["notes"]


def test_churn_scores_are_the_newest_export_that_has_any(tmp_path) -> None:
    from campaign_loop.trigger_journeys import churn_scores

    settings = Settings(home=tmp_path)
    folder = settings.exports_dir / "scores"
    folder.mkdir(parents=True)
    assert churn_scores(settings, "2026-01-19") == (None, None)  # no export yet: win-back notes why
    pd.DataFrame({"customer_id": ["C1", "C2"], "p_churn": [0.9, 0.2]}).to_parquet(folder / "2026-01-12.parquet")
    # Scored without a churn champion (NaN), and a later cycle's export the run must not read.
    pd.DataFrame({"customer_id": ["C1"], "p_churn": [np.nan]}).to_parquet(folder / "2026-01-19.parquet")
    pd.DataFrame({"customer_id": ["C1"], "p_churn": [0.1]}).to_parquet(folder / "2026-01-26.parquet")
    p_churn, of = churn_scores(settings, "2026-01-19")
    assert of == "2026-01-12" and p_churn.to_dict() == {"C1": 0.9, "C2": 0.2}
