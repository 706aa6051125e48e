"""Uplift learners and metrics: a known synthetic effect is recovered; Qini/AUUC match a hand example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml import evaluate
from ml.features import FEATURES, action_features
from ml.train.config import TrainConfig
from ml.train.uplift import choose_learner
from ml.uplift import BoosterParams, UpliftModel

FAST = BoosterParams(n_estimators=80, num_leaves=7, min_child_samples=30, n_jobs=1)


def synthetic_assignments(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two actions; only pct20 by e-mail to customers with orders_total > 0 works (+0.30)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=list(FEATURES))
    actions = np.array(["pct20__email", "message__push"])[rng.integers(0, 2, n)]
    treatment = rng.integers(0, 2, n)
    effect = np.where((x["orders_total"] > 0) & (actions == "pct20__email"), 0.30, 0.0)
    converted = (rng.random(n) < 0.10 + treatment * effect).astype(int)
    frame = pd.concat([x, action_features(actions)], axis=1)
    frame["action"], frame["treatment"], frame["is_converted"] = actions, treatment, converted
    frame["margin"] = converted * 30.0
    return frame, effect


@pytest.mark.parametrize("learner", ["t", "x", "dr"])
def test_learner_recovers_a_subgroup_effect(learner: str) -> None:
    # given assignments where one action works for one subgroup only
    frame, _ = synthetic_assignments()
    # when the learner is fitted and scores fresh customers
    model = UpliftModel(learner=learner, params=FAST).fit(frame)
    fresh, _ = synthetic_assignments(n=2000, seed=1)
    scores = model.predict(fresh[list(FEATURES)])
    group = fresh["orders_total"] > 0
    # then the effect is found where it is, and about zero elsewhere
    assert scores.loc[group, "uplift__pct20__email"].mean() == pytest.approx(0.30, abs=0.08)
    assert abs(scores.loc[~group, "uplift__pct20__email"].mean()) < 0.05
    assert abs(scores["uplift__message__push"].mean()) < 0.05
    assert scores.loc[group, "uplift_margin__pct20__email"].mean() == pytest.approx(9.0, abs=3.0)
    # and an action never assigned has no prediction (the scorer turns it into 0 = explore)
    assert scores["uplift__pct10__sms"].isna().all()


def test_learner_ranking_beats_random_and_approaches_the_oracle() -> None:
    frame, _ = synthetic_assignments()
    model = UpliftModel(learner="x", params=FAST).fit(frame)
    test, effect = synthetic_assignments(n=4000, seed=2)
    score = model.effect(test)
    qini = evaluate.qini_coefficient(score, test["treatment"], test["is_converted"])
    oracle = evaluate.oracle_qini(effect, test["treatment"], test["is_converted"])
    shuffled = evaluate.qini_coefficient(np.random.default_rng(0).permutation(score), test["treatment"], test["is_converted"])
    assert qini > 0.5 * oracle > 0
    assert qini > shuffled + 0.01


def test_uplift_needs_both_arms() -> None:
    frame, _ = synthetic_assignments(n=500)
    with pytest.raises(ValueError, match="treated and control"):
        UpliftModel(params=FAST).fit(frame.assign(treatment=1))


# ------------------------------------------------------------------------------- hand-computed metrics

# Six customers ranked by score (already in order): treatment and outcome per rank.
SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
TREATED = np.array([1, 0, 1, 0, 1, 0])
OUTCOME = np.array([1, 0, 1, 1, 0, 0])


def test_qini_curve_by_hand() -> None:
    # k:   n_t n_c y_t y_c  Q(k) = y_t - y_c * n_t / n_c
    # 1:    1   0   1   0   0 (no control yet)
    # 2:    1   1   1   0   1
    # 3:    2   1   2   0   2
    # 4:    2   2   2   1   1
    # 5:    3   2   2   1   0.5
    # 6:    3   3   2   1   1
    curves = evaluate.uplift_curves(SCORE, TREATED, OUTCOME)
    np.testing.assert_allclose(curves.qini * 6, [0, 0, 1, 2, 1, 0.5, 1])
    np.testing.assert_allclose(curves.fraction, np.arange(7) / 6)


def test_qini_coefficient_by_hand() -> None:
    # Q/n = [0, 0, 1, 2, 1, .5, 1]/6; the random line to the same end point is (k/6) * (1/6).
    # Trapezoids of width 1/6 over d = Q/n - line, with d(0) = d(6) = 0, sum to interior d / 6.
    q = np.array([0, 0, 1, 2, 1, 0.5, 1]) / 6
    d = q - np.arange(7) / 6 * (1 / 6)
    expected = sum((d[i] + d[i + 1]) / 2 * (1 / 6) for i in range(6))
    assert expected == pytest.approx((0 + 1 + 2 + 1 + 0.5) / 36 - (1 + 2 + 3 + 4 + 5) / 216)
    assert evaluate.qini_coefficient(SCORE, TREATED, OUTCOME) == pytest.approx(expected)


def test_auuc_and_uplift_at_k_by_hand() -> None:
    # G(k) = (y_t/n_t - y_c/n_c) * k:  k=2: (1-0)*2=2; k=3: (1-0)*3=3; k=4: (1-.5)*4=2;
    # k=5: (2/3-.5)*5=5/6; k=6: (2/3-1/3)*6=2. G(1) = 0 (no control yet).
    gain = np.array([0, 0, 2, 3, 2, 5 / 6, 2]) / 6
    expected = sum((gain[i] + gain[i + 1]) / 2 / 6 for i in range(6))
    assert evaluate.auuc(SCORE, TREATED, OUTCOME) == pytest.approx(expected)
    # top half (3 rows): treated 2/2 bought, control 0/1
    assert evaluate.uplift_at_k(SCORE, TREATED, OUTCOME, 0.5) == pytest.approx(1.0)
    assert math.isnan(evaluate.uplift_at_k(SCORE, TREATED, OUTCOME, 1 / 6))  # only a treated row


def test_a_perfect_ranking_beats_a_reversed_one() -> None:
    good = evaluate.qini_coefficient(SCORE, TREATED, OUTCOME)
    bad = evaluate.qini_coefficient(-SCORE, TREATED, OUTCOME)
    assert good > 0 > bad
    assert math.isnan(evaluate.qini_coefficient(SCORE, np.ones(6), OUTCOME))


def test_classifier_metrics_and_calibration_bins() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.5, 5000)
    y = (rng.random(5000) < p).astype(int)
    metrics = evaluate.classifier_metrics(y, p)
    assert 0.65 < metrics["roc_auc"] < 0.85
    assert metrics["ece"] < 0.03  # calibrated by construction
    bins = evaluate.reliability_bins(y, p)
    assert len(bins) == 10 and bins["count"].sum() == 5000
    assert evaluate.classifier_metrics(y, 1 - p)["roc_auc"] < 0.35


def _effects_world(n: int = 200_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomised assignments whose true uplift ``tau`` varies between customers (2 to 8 points)."""
    rng = np.random.default_rng(seed)
    tau = rng.uniform(0.02, 0.08, n)
    t = (rng.random(n) < 0.5).astype(float)
    y = (rng.random(n) < 0.10 + t * tau).astype(float)
    return tau, t, y


def test_calibration_slope_is_one_for_true_uplift_half_for_doubled_and_zero_for_noise() -> None:
    tau, t, y = _effects_world()

    slope, se = evaluate.uplift_calibration(tau, t, y)
    doubled, _ = evaluate.uplift_calibration(2 * tau + 0.3, t, y)  # the level does not matter, the spread does
    noise, noise_se = evaluate.uplift_calibration(np.random.default_rng(9).uniform(0.02, 0.08, len(t)), t, y)

    assert slope == pytest.approx(1.0, abs=3 * se) and se < 0.2
    assert doubled == pytest.approx(0.5, abs=3 * se / 2)
    assert abs(noise) < 3 * noise_se
    assert math.isnan(evaluate.uplift_calibration(tau, np.ones(len(t)), y)[0])


def test_ranking_weight_trusts_a_confirmed_slope_and_not_a_noisy_one() -> None:
    assert evaluate.ranking_weight(1.0, 0.005) == pytest.approx(0.99, abs=0.01)
    assert evaluate.ranking_weight(1.8, 0.01) == 1.0  # never amplified
    assert evaluate.ranking_weight(0.5, 0.05) == pytest.approx(0.25)  # as precise as the prior: half of it
    assert evaluate.ranking_weight(0.42, 0.18) < 0.04  # a promoted champion's 2.3-sigma slope: little
    assert evaluate.ranking_weight(0.05, 0.2) < 0.01  # what the 20k demo measures: nothing to trust
    assert evaluate.ranking_weight(-0.3, 0.1) == 0.0
    assert evaluate.ranking_weight(math.nan, 0.1) == 0.0


# ------------------------------------------------------------------------------- the learner, chosen out of time

def _cycles(n_per_cycle: int, cycles: int) -> pd.DataFrame:
    parts = []
    for i in range(cycles):
        frame, _ = synthetic_assignments(n=n_per_cycle, seed=10 + i)
        parts.append(frame.assign(as_of_date=pd.Timestamp("2026-01-05") + pd.Timedelta(weeks=i),
                                  customer_id=np.arange(n_per_cycle) + 100_000 * i))
    return pd.concat(parts, ignore_index=True)


def test_auto_keeps_the_learner_that_ranks_the_newest_cycle_best() -> None:
    frame = _cycles(2500, 3)
    held = np.arange(len(frame)) % 5 == 0
    config = TrainConfig(uplift_params=FAST)
    choice = choose_learner(frame[~held], frame[held], config)
    # Each candidate fitted on the two older cycles, judged on the newest cycle's evaluation rows only.
    future = frame[held & (frame["as_of_date"] == frame["as_of_date"].max())]
    past = frame[~held & (frame["as_of_date"] < frame["as_of_date"].max())]
    assert set(choice.qini) == {"x", "t", "dr"}
    for learner, qini in choice.qini.items():
        model = UpliftModel(learner=learner, params=FAST).fit(past, outcomes=("conversion",))
        assert qini == pytest.approx(evaluate.qini_coefficient(model.effect(future), future["treatment"],
                                                               future["is_converted"]))
        assert qini > 0  # every learner finds the subgroup effect here
    assert choice.qini[choice.learner] == max(choice.qini.values())
    assert str(future["as_of_date"].iloc[0].date()) in choice.reason


def test_without_an_older_cycle_auto_says_why_and_uses_the_x_learner() -> None:
    frame = _cycles(2000, 1)
    held = np.arange(len(frame)) % 5 == 0
    choice = choose_learner(frame[~held], frame[held], TrainConfig(uplift_params=FAST))
    assert choice.learner == "x" and choice.qini == {}
    assert choice.reason.startswith("no out-of-time evidence yet") and "0 treated / 0 control" in choice.reason


def test_a_configured_learner_is_used_as_set() -> None:
    frame = _cycles(500, 2)
    choice = choose_learner(frame, frame, TrainConfig(uplift_learner="t", uplift_params=FAST))
    assert (choice.learner, choice.qini) == ("t", {})
