"""Off-policy evaluation (ml.ope): hand-computed values, and a synthetic logging policy whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml import ope

# --------------------------------------------------------------------------------------------------
# Hand-computed: four logged rows, a candidate giving action A to five customers at 0.1 a contact.


@pytest.fixture
def logged() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4", "c7"],
        "action": ["A", "A", "B", "A", "A"],
        "arm": ["treatment", "control", "treatment", "treatment", "control"],
        "assignment_probability": [0.5, 0.25, 0.8, 0.4, 0.5],
        "margin": [10.0, 4.0, 0.0, 2.0, 1.0],
        "predicted_untreated": [3.0] * 5,
        "predicted_effect": [2.0, 2.0, 1.0, 2.0, 2.0],  # the model's effect of each row's own action
    })


@pytest.fixture
def candidate() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c4", "c5", "c7", "c6"], "action": ["A"] * 6 + [None],
                         "cost": 0.1, "predicted_effect": 2.0})


def _se(random: list[float]) -> float:
    return math.sqrt(len(random) * np.var(random, ddof=1))


def test_ips_by_hand(logged: pd.DataFrame, candidate: pd.DataFrame) -> None:
    e = ope.ips(logged, candidate, min_matched=2)  # two matched rows a side: enough for a hand check
    # c1 +10/0.5, c2 -4/0.25, c3 planned B (no match), c4 +2/0.4, c5 never planned, c7 -1/0.5; c6 not contacted.
    assert e.value == pytest.approx(20 - 16 + 5 - 2 - 0.6)
    assert e.se == pytest.approx(_se([20, -16, 0, 5, 0, -2]))
    assert e.low == pytest.approx(e.value - 1.959964 * e.se, rel=1e-5)
    assert (e.customers, e.matched, e.matched_treatment, e.matched_control) == (6, 4, 2, 2)
    assert e.cost == pytest.approx(0.6)


def test_snips_by_hand(logged: pd.DataFrame, candidate: pd.DataFrame) -> None:
    e = ope.snips(logged, candidate, min_matched=2)
    m1 = (10 / 0.5 + 2 / 0.4) / (1 / 0.5 + 1 / 0.4)  # 5.556
    m0 = (4 / 0.25 + 1 / 0.5) / (1 / 0.25 + 1 / 0.5)  # 3
    assert e.value == pytest.approx(6 * (m1 - m0) - 0.6)
    w1, w0 = np.array([2, 0, 0, 2.5, 0, 0]), np.array([0, 4, 0, 0, 0, 2])
    y = np.array([10, 4, 0, 2, 0, 1])
    random = (m1 - m0) + 6 * (w1 * (y - m1) / w1.sum() - w0 * (y - m0) / w0.sum())
    assert e.se == pytest.approx(_se(list(random)))


def test_dr_by_hand(logged: pd.DataFrame, candidate: pd.DataFrame) -> None:
    e = ope.dr(logged, candidate, min_matched=2)
    # Model effect 2 for each of the six, minus cost; residuals: c1 (10 - 5)/0.5, c2 -(4 - 3)/0.25,
    # c4 (2 - 5)/0.4, c7 -(1 - 3)/0.5.
    assert e.value == pytest.approx(6 * 2 - 0.6 + 10 - 4 - 7.5 + 4)
    assert e.se == pytest.approx(_se([10, -4, 0, -7.5, 0, 4]))


def test_treatment_column_and_plan_rows_work_like_arm(logged: pd.DataFrame) -> None:
    plan_rows = pd.DataFrame({"customer_id": ["c1", "c2", "c4"], "offer": ["x", "x", "y"], "channel": ["email"] * 3,
                              "arm": ["treatment", "control", "treatment"], "cost_per_contact": [0.01] * 3})
    cand = ope.candidate_from_plan(plan_rows)
    assert list(cand["action"]) == ["x__email", "y__email"] and list(cand["customer_id"]) == ["c1", "c4"]
    actions = ["x__email", "x__email", "B", "y__email", "x__email"]
    by_arm = ope.ips(logged.assign(action=actions), cand)
    by_t = ope.ips(logged.assign(action=actions, treatment=[1, 0, 1, 1, 0]).drop(columns="arm"), cand)
    assert by_arm.value == by_t.value == pytest.approx(20 + 5 - 0.02)
    assert math.isnan(by_arm.se)  # no matched control row: no standard error
    # Without a cost column the channel's contact cost is used.
    assert ope.ips(logged.assign(action=["x__email"] * 5), cand.drop(columns="cost")).cost == pytest.approx(0.02)


def test_bad_inputs_are_refused(logged: pd.DataFrame, candidate: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="one row per customer"):
        ope.ips(pd.concat([logged, logged.iloc[:1]]), candidate)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        ope.ips(logged.assign(assignment_probability=[0.5, 0.0, 0.8, 0.4, 0.5]), candidate)
    with pytest.raises(ValueError, match="predicted_effect"):
        ope.dr(logged, candidate.drop(columns="predicted_effect"))
    with pytest.raises(ValueError, match="unknown method"):
        ope.estimate(logged, candidate, "dm")  # type: ignore[arg-type]


def test_snips_is_undefined_when_an_arm_is_unmatched(logged: pd.DataFrame) -> None:
    only_treated = pd.DataFrame({"customer_id": ["c1"], "action": ["A"], "cost": 0.0})
    assert math.isnan(ope.snips(logged, only_treated).value)


# --------------------------------------------------------------------------------------------------
# A synthetic logging policy: epsilon-greedy on a noisy score plus a randomised holdout, the loop's design.

ACTIONS = np.array(["a0__email", "a1__email", "a2__email"])
COST = 0.01


def _world(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    x = rng.normal(size=n)
    mu0 = 5.0 + 2.0 * x
    tau = np.column_stack([0.5 + 1.0 * x, 1.0 - 0.5 * x, np.full(n, -0.2)])
    return {"x": x, "mu0": mu0, "tau": tau}


def _oracle(w: dict[str, np.ndarray]) -> np.ndarray:
    best = w["tau"].argmax(axis=1)
    return np.where(w["tau"].max(axis=1) > COST, best, -1)


def _log(w: dict[str, np.ndarray], rng: np.random.Generator, epsilon: float = 0.2, holdout: float = 0.2,
         noise: float = 1.0, population: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Greedy on tau + noise (none if no action looks positive); epsilon of everyone a uniform random action.
    ``population``: also every customer's outcome and probability of being contacted."""
    n = len(w["x"])
    score = w["tau"] + rng.normal(scale=1.0, size=w["tau"].shape)
    greedy = np.where(score.max(axis=1) > 0, score.argmax(axis=1), -1)
    explore = rng.random(n) < epsilon
    action = np.where(explore, rng.integers(0, 3, n), greedy)
    planned = action >= 0
    p_action = (1 - epsilon) * (action == greedy) + epsilon / 3
    control = rng.random(n) < holdout
    t = (~control).astype(int)
    treated = planned & ~control  # who was contacted; everyone else's outcome is untreated
    y = w["mu0"] + treated * w["tau"][np.arange(n), np.maximum(action, 0)] + rng.normal(scale=noise, size=n)
    frame = pd.DataFrame({
        "customer_id": np.arange(n), "action": ACTIONS[np.maximum(action, 0)], "treatment": t,
        "assignment_probability": p_action * np.where(control, holdout, 1 - holdout), "margin": y,
        "predicted_untreated": w["mu0"], "predicted_effect": w["tau"][np.arange(n), np.maximum(action, 0)],
    })
    if not population:
        return frame[planned].reset_index(drop=True)
    contacted = (1 - holdout) * ((1 - epsilon) * (greedy >= 0) + epsilon)
    everyone = pd.DataFrame({"customer_id": np.arange(n), "margin": y, "p_contacted": contacted,
                             "predicted_untreated": w["mu0"]})
    return frame[planned].reset_index(drop=True), everyone


def _candidate(w: dict[str, np.ndarray], choice: np.ndarray, effect: np.ndarray | None = None) -> pd.DataFrame:
    rows = np.flatnonzero(choice >= 0)
    tau = w["tau"] if effect is None else effect
    return pd.DataFrame({"customer_id": rows, "action": ACTIONS[choice[rows]], "cost": COST,
                         "predicted_effect": tau[rows, choice[rows]]})


def _truth(w: dict[str, np.ndarray], choice: np.ndarray) -> float:
    rows = np.flatnonzero(choice >= 0)
    return float((w["tau"][rows, choice[rows]] - COST).sum())


def test_estimates_cover_the_true_value_of_a_synthetic_policy() -> None:
    """Over 150 logged cycles of 3,000 customers, every estimator's 95 % interval holds the oracle's true
    value about 95 % of the time, IPS and DR are unbiased, and DR with the true outcome model is far tighter."""
    w = _world(3_000, np.random.default_rng(0))
    oracle = _oracle(w)
    truth = _truth(w, oracle)
    candidate = _candidate(w, oracle)
    rng = np.random.default_rng(1)
    results: dict[str, list[ope.Estimate]] = {m: [] for m in ope.METHODS}
    for _ in range(150):
        logged = _log(w, rng)
        for m in ope.METHODS:
            results[m].append(ope.estimate(logged, candidate, m))
    for m, estimates in results.items():
        values = np.array([e.value for e in estimates])
        covered = np.mean([e.low <= truth <= e.high for e in estimates])
        assert 0.89 <= covered <= 0.995, (m, covered)
        if m != "snips":  # SNIPS is biased by O(1/n); IPS and DR are not
            assert abs(values.mean() - truth) < 3 * values.std() / math.sqrt(len(values)), m
        # The reported standard error matches the estimates' spread across cycles.
        assert np.mean([e.se for e in estimates]) == pytest.approx(values.std(), rel=0.25), m
    se = {m: np.mean([e.se for e in results[m]]) for m in ope.METHODS}
    assert se["dr"] < 0.5 * se["ips"]
    assert se["snips"] < se["ips"]


def test_dr_stays_unbiased_with_a_wrong_model_and_with_wrong_propensities_given_the_right_model() -> None:
    w = _world(3_000, np.random.default_rng(2))
    oracle = _oracle(w)
    truth = _truth(w, oracle)
    rng = np.random.default_rng(3)
    wrong_model = _candidate(w, oracle, effect=np.zeros_like(w["tau"]))
    right_model = _candidate(w, oracle)
    bad_model, bad_propensity, ips_bad_propensity = [], [], []
    for _ in range(100):
        logged = _log(w, rng)
        bad_model.append(ope.dr(logged.assign(predicted_untreated=5.0, predicted_effect=0.0), wrong_model).value)
        wrong_p = logged.assign(assignment_probability=np.clip(logged["assignment_probability"] * 2, 0, 1))
        bad_propensity.append(ope.dr(wrong_p, right_model).value)
        ips_bad_propensity.append(ope.ips(wrong_p, right_model).value)
    for values in (np.array(bad_model), np.array(bad_propensity)):
        assert abs(values.mean() - truth) < 3 * values.std() / math.sqrt(len(values))
    # Halved weights do bias IPS: the check above has the power to see a wrong propensity.
    ips_values = np.array(ips_bad_propensity)
    assert abs(ips_values.mean() - truth) > 3 * ips_values.std() / math.sqrt(len(ips_values))


def test_compare_is_paired_and_choose_policy_picks_by_the_estimate() -> None:
    w = _world(4_000, np.random.default_rng(4))
    logged = _log(w, np.random.default_rng(5))
    oracle = _candidate(w, _oracle(w))
    everyone_a2 = _candidate(w, np.full(len(w["x"]), 2))  # the action that loses money
    nearly_oracle = oracle.iloc[:-1]  # the oracle but for one customer
    d = ope.compare(logged, oracle, nearly_oracle)
    separate = ope.dr(logged, oracle).se
    assert d.se < 0.05 * separate  # one customer apart: the difference is known almost exactly
    assert d.value == pytest.approx(ope.dr(logged, oracle).value - ope.dr(logged, nearly_oracle).value)

    candidates = {"everyone_a2": everyone_a2, "oracle": oracle, "nearly_oracle": nearly_oracle}
    choice = ope.choose_policy(logged, candidates)
    assert choice.chosen in ("oracle", "nearly_oracle") and set(choice.estimates) == set(candidates)
    assert choice.estimates["everyone_a2"].value < 0
    switched = ope.choose_policy(logged, candidates, incumbent="everyone_a2")
    assert switched.chosen in ("oracle", "nearly_oracle") and "beats 'everyone_a2'" in switched.reason
    assert switched.versus_incumbent["oracle"].low > 0
    kept = ope.choose_policy(logged, {"oracle": oracle, "nearly_oracle": nearly_oracle}, incumbent="oracle")
    assert kept.chosen == "oracle" and "no challenger" in kept.reason
    with pytest.raises(ValueError, match="incumbent"):
        ope.choose_policy(logged, candidates, incumbent="platform")


def test_outcome_predictions_follow_the_optimisers_economics() -> None:
    from campaign_loop.actions import ACTIONS as CATALOGUE
    from ml.decide import action_economics

    actions = CATALOGUE[:3]
    customers = pd.DataFrame({"p_buy": [0.1, 0.02], "expected_spend": [50.0, 80.0], "margin_rate": [0.4, 0.5],
                              **{f"uplift__{a.name}": [0.01, 0.03] for a in actions}})
    untreated, effect = ope.outcome_predictions(customers, actions)
    assert list(untreated) == pytest.approx([0.1 * 50 * 0.4, 0.02 * 80 * 0.5])
    econ = action_economics(np.array([[0.01] * 3, [0.03] * 3]), np.array([0.1, 0.02]), np.array([50.0, 80.0]),
                            np.array([0.4, 0.5]), tuple(actions))
    assert effect.to_numpy() == pytest.approx(econ.value + np.array([a.cost_per_contact for a in actions]))
    assert list(effect.columns) == [a.name for a in actions]


def test_pooled_controls_by_hand(logged: pd.DataFrame) -> None:
    population = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c4", "c5", "c7"],
                               "margin": [10.0, 4.0, 0.0, 2.0, 6.0, 1.0], "p_contacted": [0.6, 0.5, 0.7, 0.6, 0.2, 1.0]})
    pooled = ope.pool_controls(logged, population)
    # Treatment rows as logged; c2 (held out) and c5 (never planned) become no-contact rows at 1 - p_contacted;
    # c7, held out but contacted for sure by the design (impossible, so dropped), has no such row.
    assert list(pooled["customer_id"]) == ["c1", "c3", "c4", "c2", "c5"]
    assert list(pooled["assignment_probability"]) == pytest.approx([0.5, 0.8, 0.4, 0.5, 0.8])
    assert pooled["action"].isna().tolist() == [False, False, False, True, True]
    candidate = pd.DataFrame({"customer_id": ["c1", "c2", "c5"], "action": ["A", "B", "B"], "cost": 0.0})
    e = ope.ips(pooled, candidate)
    # c1 treated with A: +10/0.5; c2 and c5 untreated match any action: -4/0.5, -6/0.8.
    assert e.value == pytest.approx(20 - 8 - 7.5)
    assert (e.matched_treatment, e.matched_control) == (1, 2)
    assert math.isnan(e.se)  # one matched treatment row: no standard error
    assert math.isnan(ope.ips(logged, candidate_a := pd.DataFrame(
        {"customer_id": ["c1", "c2", "c4", "c7"], "action": "A", "cost": 0.0})).se)  # 2 + 2 < MIN_MATCHED
    assert math.isfinite(ope.ips(logged, candidate_a, min_matched=2).se)
    with pytest.raises(ValueError, match="must name its action"):
        ope.ips(pooled.assign(treatment=1), candidate)


def test_pooled_controls_stay_unbiased_and_tighten_ips() -> None:
    w = _world(3_000, np.random.default_rng(6))
    oracle = _oracle(w)
    truth = _truth(w, oracle)
    candidate = _candidate(w, oracle)
    rng = np.random.default_rng(7)
    matched, pooled = [], []
    for _ in range(150):
        logged, everyone = _log(w, rng, population=True)
        matched.append(ope.ips(logged, candidate))
        pooled.append(ope.ips(ope.pool_controls(logged, everyone), candidate))
    values = np.array([e.value for e in pooled])
    assert abs(values.mean() - truth) < 3 * values.std() / math.sqrt(len(values))
    assert 0.89 <= np.mean([e.low <= truth <= e.high for e in pooled]) <= 0.995
    assert np.mean([e.se for e in pooled]) < 0.8 * np.mean([e.se for e in matched])


def test_contact_probability_re_designs_the_plan() -> None:
    from ml.decide import DesignConfig, design_campaign
    from tests.ml.test_decide import make_world

    world = make_world(300, 0)
    config = DesignConfig(cycle_id="2026-01-12", budget=1e6, exploration="epsilon", epsilon=0.0, holdout_share=0.2)
    p = ope.contact_probability(world, config, replicates=2)
    plan = design_campaign(world, config)
    share = plan.summary["holdout"]["share"]
    planned = world["customer_id"].isin(plan.rows["customer_id"]).to_numpy()
    # Without exploration and an unbinding budget the plan is the same under every seed.
    assert p.reindex(world["customer_id"]).to_numpy() == pytest.approx(np.where(planned, 1 - share, 0.0))
