"""score_customers: the champions' scores in exactly the frame ml/decide.py designs from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml import features
from ml.decide import BASE_COLUMNS, DesignConfig, design_campaign
from ml.score import DECIDE_COLUMNS, UPLIFT_COLUMNS, score_customers, score_frame
from ml.train import TrainConfig, train_cycle
from ml.uplift import BoosterParams

FAST = TrainConfig(
    classifier_params=BoosterParams(n_estimators=40, num_leaves=7, min_child_samples=50, n_jobs=1),
    uplift_params=BoosterParams(n_estimators=40, num_leaves=7, min_child_samples=30, n_jobs=1),
    clv_holdout_weeks=4, plots=False,
)


@pytest.fixture(scope="module")
def trained(synthetic_home: tuple[Path, dict], mlflow_store: str) -> Settings:
    home, _ = synthetic_home
    settings = Settings(home=home)
    report = train_cycle(settings, "2026-02-16", {"dbt_invocation_id": "x"}, config=FAST)
    assert all(m.status == "promoted" for m in report.models.values()), report.summary()
    return settings


def test_scores_have_the_decide_columns(trained: Settings) -> None:
    scores = score_customers(trained)
    assert list(scores.columns[: len(DECIDE_COLUMNS)]) == list(DECIDE_COLUMNS)
    assert set(BASE_COLUMNS) <= set(scores.columns)
    assert scores["customer_id"].is_unique
    assert (scores["as_of_date"].astype(str) == "2026-02-23").all()  # the newest as-of date
    assert scores["p_buy"].between(0, 1).all()
    assert (scores["expected_spend"] > 0).all()
    assert np.isfinite(scores[list(UPLIFT_COLUMNS)].to_numpy()).all()
    assert (scores.filter(like="scored_by__") == "1").all().all()
    # the synthetic truth: pct20 by e-mail works (for e-mail consenters), message by push does nothing
    consenting = scores["consent_email"]
    assert scores.loc[consenting, "uplift__pct20__email"].mean() > scores.loc[consenting, "uplift__message__push"].mean() + 0.02


def test_decide_accepts_the_scores(trained: Settings) -> None:
    scores = score_customers(trained)
    plan = design_campaign(scores, DesignConfig(cycle_id="2026-02-23", budget=50.0))
    assert len(plan.rows) > 0
    # no customer is planned on a channel they did not consent to
    consent = scores.set_index("customer_id")
    treated = plan.rows[plan.rows["arm"] == "treatment"]
    assert all(consent.loc[c, f"consent_{ch}"] for c, ch in zip(treated["customer_id"], treated["channel"], strict=True))


def test_without_champions_the_fallbacks_explore(synthetic_home: tuple[Path, dict]) -> None:
    home, _ = synthetic_home
    frame = features.scoring_frame(Settings(home=home).warehouse_path)
    scores = score_frame(frame, {}, fallback_rate=0.03)
    assert list(scores.columns[: len(DECIDE_COLUMNS)]) == list(DECIDE_COLUMNS)
    assert (scores[list(UPLIFT_COLUMNS)] == 0.0).all().all()  # zero, not NaN: decide may explore
    assert (scores["p_buy"] == 0.03).all()
    assert (scores["expected_spend"] > 0).all()
    assert (scores["scored_by__uplift"] == "fallback").all()


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_the_champions_ranking_counts_as_much_as_its_holdout_confirmed(
    synthetic_home: tuple[Path, dict], weight: float
) -> None:
    home, _ = synthetic_home
    frame = features.scoring_frame(Settings(home=home).warehouse_path)

    class Champion:
        ranking_weight = weight

        def predict(self, customers: pd.DataFrame) -> pd.DataFrame:
            spread = np.linspace(0.0, 0.04, len(customers)) + 0.01
            return pd.DataFrame({c: spread for c in UPLIFT_COLUMNS}, index=customers.index)

    prior = pd.DataFrame({"uplift": 0.003, "sd": 0.001, "n": 500}, index=list(UPLIFT_COLUMNS))
    scores = score_frame(frame, {"uplift": (Champion(), "7")}, fallback_rate=0.03, prior=prior)

    column = scores[UPLIFT_COLUMNS[0]]
    assert column.mean() == pytest.approx(0.003)
    assert column.max() - column.min() == pytest.approx(weight * 0.04)


def test_the_prior_is_each_actions_randomised_effect_shrunk_towards_the_pooled_one() -> None:
    from campaign_loop.actions import ACTIONS
    from ml.score import uplift_prior

    rng = np.random.default_rng(3)
    rows = []
    for action, rate_t, n in ((ACTIONS[0].name, 0.08, 40_000), (ACTIONS[1].name, 0.02, 400)):
        treatment = rng.random(n) < 0.5
        converted = rng.random(n) < np.where(treatment, rate_t, 0.02)
        rows.append(pd.DataFrame({"action": action, "treatment": treatment.astype(int), "is_converted": converted}))
    prior = uplift_prior(pd.concat(rows, ignore_index=True))
    strong, weak = prior.loc[f"uplift__{ACTIONS[0].name}"], prior.loc[f"uplift__{ACTIONS[1].name}"]
    assert strong["uplift"] == pytest.approx(0.06, abs=0.01)  # 40k assignments: its own effect dominates
    assert 0.0 < weak["uplift"] < strong["uplift"]  # 400 assignments of no effect borrow from the pooled one
    assert strong["sd"] < weak["sd"]
    assert prior.loc[f"uplift__{ACTIONS[5].name}", "n"] == 0  # never tried: the pooled effect


def test_a_champions_uplift_is_recentred_on_the_measured_effect() -> None:
    from ml.score import calibrate_uplift

    predicted = pd.Series([0.04, 0.06, 0.08, 0.0])  # optimistic level; the last row not covered
    calibrated = calibrate_uplift(predicted, level=0.01, spread=0.5)
    assert calibrated[:3].mean() == pytest.approx(0.01)
    assert calibrated.tolist()[:3] == pytest.approx([0.0, 0.01, 0.02])  # ranking kept, spread halved
    assert calibrated[3] == pytest.approx(0.01)
    assert (calibrate_uplift(pd.Series([0.0, 0.0]), level=-0.002, spread=0.5) == -0.002).all()
    # A ranking the holdout could not confirm (weight 0) leaves every customer at the measured effect.
    assert (calibrate_uplift(predicted, level=0.01, spread=0.0) == 0.01).all()
