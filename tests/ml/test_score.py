"""score_customers: the champions' scores in exactly the frame ml/decide.py designs from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
