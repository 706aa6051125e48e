"""Baselines that act on measured campaign results (issue 24): each makes the choice a small known case calls for."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from campaign_loop.actions import CHANNEL_COST
from ml.decide import DesignConfig
from ml.policies import (
    best_action_plan,
    measured_lift,
    propensity_best_offer_plan,
    rfm_best_offer_plan,
    tlearner_plan,
    tlearner_uplift,
)
from tests.ml.test_decide import make_world

CONFIG = DesignConfig(cycle_id="2026-02-02", budget=1e6, seed=1)


def _customers(n: int = 500, seed: int = 4) -> pd.DataFrame:
    world = make_world(n, seed=seed)
    world["monetary_value"] = world["expected_spend"]
    world["unsubscribed_recently"] = False
    world["contacts_last_30d"] = 0
    for channel in ("email", "push", "sms", "kakao"):
        world[f"bounced_{channel}"] = False
    return world


def _effects(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"lift": 0.01, "value_per_contact": pd.Series(values)}).rename_axis("action")


def _treated_actions(plan) -> pd.Series:
    rows = plan.rows[plan.rows["arm"] == "treatment"]
    return rows["offer"].astype(str) + "__" + rows["channel"].astype(str)


def test_measured_lift_is_each_actions_newest_difference_in_margin_net_of_its_cost() -> None:
    rows = []
    for as_of, margin_t in ((date(2026, 1, 5), 9.0), (date(2026, 1, 12), 3.0)):
        for treatment, margin, converted in ((1, margin_t, 1), (0, 1.0, 0)):
            rows += [{"action": "pct10__sms", "as_of_date": as_of, "treatment": treatment, "margin": margin,
                      "is_converted": converted}] * 4
    rows.append({"action": "message__push", "as_of_date": date(2026, 1, 12), "treatment": 1, "margin": 5.0,
                 "is_converted": 1})  # no control: not measured
    sends = pd.DataFrame(rows)
    newest = measured_lift(sends)
    assert list(newest.index) == ["pct10__sms"]
    assert newest.loc["pct10__sms", "margin_lift"] == pytest.approx(2.0)  # the newest cycle's, not 8
    assert newest.loc["pct10__sms", "value_per_contact"] == pytest.approx(2.0 - CHANNEL_COST["sms"])
    assert newest.loc["pct10__sms", "lift"] == pytest.approx(1.0)
    pooled = measured_lift(sends, newest_only=False)
    assert pooled.loc["pct10__sms", "margin_lift"] == pytest.approx(5.0)


def test_best_action_sends_the_best_measured_action_to_everyone_reachable() -> None:
    customers = _customers()
    plan = best_action_plan(customers, _effects({"pct10__push": 0.4, "pct20__email": 0.3, "message__sms": -0.1}), CONFIG)
    assert set(_treated_actions(plan)) == {"pct10__push"}
    assert set(plan.rows["customer_id"]) == set(customers.loc[customers["consent_push"], "customer_id"])


def test_best_action_sends_nothing_when_no_action_earned_its_cost() -> None:
    plan = best_action_plan(_customers(), _effects({"pct10__push": -0.01, "message__sms": -0.2}), CONFIG)
    assert plan.rows.empty


def test_propensity_best_offer_gives_each_buyer_the_best_measured_action_they_can_receive() -> None:
    customers = _customers()
    effects = _effects({"pct20__email": 0.5, "message__push": 0.2, "pct10__sms": -0.3})
    plan = propensity_best_offer_plan(customers, effects, CONFIG)
    got = pd.concat([plan.rows["customer_id"], plan.rows["offer"] + "__" + plan.rows["channel"]], axis=1)
    by_id = customers.set_index("customer_id")
    expected = np.where(by_id.loc[got["customer_id"], "consent_email"], "pct20__email", "message__push")
    assert (got[0].to_numpy() == expected).all()
    assert not (by_id["consent_email"] | by_id["consent_push"]).loc[~by_id.index.isin(got["customer_id"])].any()
    # A budget that buys a few: the likeliest buyers first.
    tight = propensity_best_offer_plan(customers, effects, DesignConfig(cycle_id="2026-02-02", budget=3.0, seed=1))
    chosen = customers["customer_id"].isin(tight.rows["customer_id"])
    assert 0 < chosen.sum() < len(plan.rows)
    assert customers.loc[chosen, "p_buy"].min() >= customers.loc[~chosen & customers["customer_id"].isin(
        plan.rows["customer_id"]), "p_buy"].max() - 1e-12


def test_rfm_best_offer_picks_each_segments_best_offer_and_skips_losing_segments() -> None:
    customers = _customers(800)
    segments = {"champions": {"message": 0.1, "pct10": 0.2, "pct20": 0.5},
                "loyal": {"message": 0.3, "pct10": 0.1, "pct20": -0.2},
                "hibernating": {"message": -0.01, "pct10": -0.1, "pct20": -0.4}}
    effects = pd.DataFrame([{"segment": s, "offer": o, "lift": 0.01, "value_per_contact": v}
                            for s, offers in segments.items() for o, v in offers.items()]).set_index(["segment", "offer"])
    customers["segment"] = np.resize(["champions", "loyal", "hibernating", "lost"], len(customers))
    plan = rfm_best_offer_plan(customers, effects, CONFIG)
    segment = plan.rows["customer_id"].map(customers.set_index("customer_id")["segment"])
    offers = plan.rows.groupby(segment)["offer"].agg(set).to_dict()
    assert offers == {"champions": {"pct20"}, "loyal": {"message"}}
    # The cheapest consented channel: push wherever the customer consented to it.
    by_id = customers.set_index("customer_id")
    assert (plan.rows.loc[by_id.loc[plan.rows["customer_id"], "consent_push"].to_numpy(), "channel"] == "push").all()


def _sends(n: int, seed: int) -> pd.DataFrame:
    """Randomised sends where pct10 on e-mail adds 15 points for customers with x1 > 0 and nothing else works."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    action = rng.choice(["message__email", "pct10__email"], n)
    treatment = (rng.random(n) < 0.5).astype(int)
    p = 0.05 + 0.15 * ((action == "pct10__email") & (treatment == 1) & (x1 > 0))
    return pd.DataFrame({"x1": x1, "x2": x2, "action": action, "treatment": treatment,
                         "is_converted": (rng.random(n) < p).astype(int)})


@pytest.mark.parametrize("kind", ["logit", "gbm"])
def test_tlearner_finds_who_responds_to_which_action(kind: str) -> None:
    sends = _sends(8_000, seed=1)
    customers = pd.DataFrame({"x1": np.linspace(-2, 2, 200), "x2": 0.0})
    p0, uplift = tlearner_uplift(sends, customers, ["x1", "x2"], ["message__email", "pct10__email"], kind)
    assert p0.mean() == pytest.approx(0.05, abs=0.015)
    positive = customers["x1"] > 0.5
    negative = customers["x1"] < -0.5
    pct10 = uplift["uplift__pct10__email"]
    assert pct10[positive].mean() > pct10[negative].mean() + 0.05
    assert pct10[positive].mean() > uplift.loc[positive, "uplift__message__email"].mean() + 0.05


@pytest.mark.parametrize("kind", ["logit", "gbm"])
def test_tlearner_plan_targets_the_responders_through_the_optimiser(kind: str) -> None:
    customers = _customers(600, seed=9)
    customers["x1"] = np.random.default_rng(2).normal(size=len(customers))
    customers["x2"] = 0.0
    customers["expected_spend"] = 60.0
    customers["margin_rate"] = 0.4
    # A budget for about a third of the e-mail audience: it must go to those the discount moves.
    config = DesignConfig(cycle_id="2026-02-02", budget=80.0, seed=1, offers=("message", "pct10"), channels=("email",),
                          epsilon=0.0)
    plan = tlearner_plan(customers, _sends(8_000, seed=3), ["x1", "x2"], config, kind)
    treated = plan.rows[plan.rows["arm"] == "treatment"].set_index("customer_id")
    x1 = customers.set_index("customer_id")["x1"]
    pct10 = treated.index[treated["offer"] == "pct10"]
    assert len(pct10) > 20
    assert (x1[pct10] > 0).mean() > 0.85


def test_tlearner_needs_buyers_in_both_arms() -> None:
    sends = _sends(500, seed=1)
    sends.loc[sends["treatment"] == 1, "is_converted"] = 0
    with pytest.raises(ValueError, match="both arms"):
        tlearner_uplift(sends, pd.DataFrame({"x1": [0.0], "x2": [0.0]}), ["x1", "x2"], ["message__email"], "logit")
