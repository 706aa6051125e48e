"""score_customers: the champions' scores in exactly the frame ml/decide/ designs from."""

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
    # The synthetic effect lands on e-mail consenters, who open more: the measured slope (about 13, standard
    # error 7) keeps the prior's full weight. Measured, not missing: the baseline model skips the synthetic
    # marts' empty RFM scores, which used to make the prior, and so the weight, silently absent.
    assert scores["preference_email"].std() > 0.05 and (scores["preference_sms"] == 1.0).all()
    assert scores["preference_weight"].nunique() == 1 and 0.5 < scores["preference_weight"].iloc[0] <= 1.0
    # the synthetic truth: pct20 by e-mail works (for e-mail consenters), message by push does nothing; the
    # measured prior sets each action's level, shrunk towards the pooled effect (PRIOR_STRENGTH pseudo-rows)
    consenting = scores["consent_email"]
    assert scores.loc[consenting, "uplift__pct20__email"].mean() > scores.loc[consenting, "uplift__message__push"].mean() + 0.005


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


def test_a_confirmed_channel_preference_scales_each_customers_effect_on_the_channel(
    synthetic_home: tuple[Path, dict],
) -> None:
    home, _ = synthetic_home
    frame = features.scoring_frame(Settings(home=home).warehouse_path)
    prior = pd.DataFrame({"uplift": 0.004, "sd": 0.002, "n": 500}, index=list(UPLIFT_COLUMNS))
    flat = score_frame(frame, {}, fallback_rate=0.03, prior=prior)
    scaled = score_frame(frame, {}, fallback_rate=0.03, prior=prior, preference_weight=0.5)

    preference = scaled["preference_email"]
    assert preference.std() > 0.05  # the synthetic opens vary
    assert np.allclose(flat["uplift__pct10__email"], 0.004)
    assert np.allclose(scaled["uplift__pct10__email"], 0.004 * (1 + 0.5 * (preference - 1)))
    assert np.allclose(scaled["uplift_sd__pct10__email"], 0.002 * (1 + 0.5 * (preference - 1)))
    assert np.allclose(scaled["uplift__pct10__sms"], 0.004)  # SMS reports no opens: no preference to read
    assert (scaled["preference_weight"] == 0.5).all()


def _assignments(rng: np.random.Generator, action: str, n: int, effect: float, busy: bool, holdout: float = 0.1) -> pd.DataFrame:
    """Assignments of one action whose customers were chosen by their orders: a busy audience converts
    at ~6 %, a quiet one at ~1 % (selection on a feature, as the optimiser does)."""
    orders = rng.poisson(6.0 if busy else 1.0, n).astype(float)
    base = 0.005 + 0.009 * np.minimum(orders, 8)
    treatment = rng.random(n) >= holdout
    converted = rng.random(n) < base + np.where(treatment, effect, 0.0)
    return pd.DataFrame({"action": action, "treatment": treatment.astype(int), "is_converted": converted.astype(int),
                         "orders_90d": orders, "as_of_date": pd.Timestamp("2026-02-16")})


def test_the_prior_uses_every_holdout_adjusted_for_features_as_each_actions_control() -> None:
    from campaign_loop.actions import ACTIONS
    from ml.score import randomised_effect, uplift_prior

    rng = np.random.default_rng(3)
    busy, quiet, rare = ACTIONS[0].name, ACTIONS[1].name, ACTIONS[2].name
    assignments = pd.concat([
        _assignments(rng, busy, 60_000, 0.010, busy=True),
        *(_assignments(rng, action, 60_000, 0.002, busy=False) for action in (quiet, ACTIONS[3].name, ACTIONS[4].name)),
        _assignments(rng, rare, 300, 0.0, busy=False),
    ], ignore_index=True)
    prior = uplift_prior(assignments, covariates=("orders_90d",))
    for action, effect in ((busy, 0.010), (quiet, 0.002)):
        row = prior.loc[f"uplift__{action}"]
        assert row["uplift"] == pytest.approx(effect, abs=0.003)
        # Every holdout is its control, not only its own tenth: a tighter estimate than the plain contrast.
        assert row["sd"] < 0.8 * randomised_effect(assignments, assignments["action"] == action)[1]
    # Without the adjustment the busy audience's control would be mostly quiet people: a wrong effect.
    t, y = assignments["treatment"] == 1, assignments["is_converted"]
    naive = y[t & (assignments["action"] == busy)].mean() - y[~t].mean()
    assert naive - 0.010 > 0.01
    # 270 sends borrow from the pooled effect; never tried: the pooled effect.
    pooled_between = sorted([prior.loc[f"uplift__{busy}", "uplift"], prior.loc[f"uplift__{quiet}", "uplift"]])
    assert prior.loc[f"uplift__{rare}", "uplift"] > 0.0
    assert prior.loc[f"uplift__{ACTIONS[5].name}", "n"] == 0
    assert pooled_between[0] <= prior.loc[f"uplift__{ACTIONS[5].name}", "uplift"] <= pooled_between[1]


def test_the_prior_with_preference_measures_the_average_customers_effect() -> None:
    from ml.score import above_baseline, prior_with_preference, uplift_prior

    rng = np.random.default_rng(6)
    n, level = 300_000, 0.03
    rate = {c: rng.beta(2.0, 8.0, n) for c in ("email", "push")}
    opens = {c: rng.binomial(12, rate[c]) for c in rate}
    # The plan sends each customer the channel they open more: each action's treated rows prefer its channel.
    channel = np.where(opens["email"] >= opens["push"], "email", "push")
    effect = level * np.where(channel == "email", rate["email"] / 0.2, rate["push"] / 0.2)
    treatment = rng.random(n) >= 0.1
    assignments = pd.DataFrame({
        "action": "message__" + pd.Series(channel), "channel": channel, "treatment": treatment.astype(int),
        "is_converted": (rng.random(n) < 0.03 + treatment * effect).astype(int), "orders_90d": 0.0,
        "as_of_date": pd.Timestamp("2026-02-16"),
        **{f"sends_{c}_365d": 12 for c in rate}, **{f"opens_{c}_365d": opens[c] for c in rate},
    })
    above = above_baseline(assignments, covariates=("orders_90d",))
    plain = uplift_prior(assignments, above=above)
    per_unit, weight = prior_with_preference(assignments, above, plain)
    for c in rate:
        # The treated rows' mean is the effect on customers who prefer the channel, not on the average one.
        assert plain.loc[f"uplift__message__{c}", "uplift"] > 1.1 * level
        assert per_unit.loc[f"uplift__message__{c}", "uplift"] == pytest.approx(level, rel=0.08)
    assert weight > 0.6


def test_the_prior_needs_both_arms() -> None:
    from ml.score import uplift_prior

    rng = np.random.default_rng(4)
    treated_only = _assignments(rng, "message__email", 1_000, 0.01, busy=True, holdout=0.0)
    assert uplift_prior(treated_only, covariates=("orders_90d",)).empty


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


def test_the_fallback_rate_is_the_newest_complete_as_of_dates_purchase_rate(synthetic_home: tuple[Path, dict]) -> None:
    from ml.score import recent_purchase_rate

    home, frames = synthetic_home
    labels = frames["fct_customer_labels"]
    newest = labels.loc[labels["label_complete_next_cycle"], "as_of_date"].max()
    expected = labels.loc[labels["as_of_date"] == newest, "purchased_next_cycle"].mean()
    assert labels["as_of_date"].max() > newest  # the newest as-of dates' labels are not complete yet
    assert 0 < expected < 1
    assert recent_purchase_rate(Settings(home=home), features.DEFAULT_SCHEMA) == pytest.approx(expected, abs=1e-12)
