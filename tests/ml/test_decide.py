"""Designing the next campaign: hard constraints over random worlds, holdout, exploration, optimality."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_loop.actions import CHANNEL_COST, OFFERS
from campaign_loop.config import CHANNELS, Settings
from ml.decide import (
    CampaignPlan,
    DesignConfig,
    action_catalogue,
    action_economics,
    design_campaign,
    uplift_column,
)
from ml.decide.holdout import holdout_share_for_power, power_two_proportions

SEGMENTS = ("new", "active", "lapsing", "vip")


def make_world(n: int, seed: int, *, nan_share: float = 0.0, uplift_scale: float = 1.0) -> pd.DataFrame:
    """A random eligible-customer table with every column design_campaign reads."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "customer_id": rng.permutation(n) + 1000,
        "member_id": [f"M{i:07d}" for i in range(n)],
        "unsubscribed_recently": rng.random(n) < 0.05,
        "contacts_last_30d": rng.poisson(2.0, n),
        "segment": rng.choice(SEGMENTS, n),
        "p_buy": rng.beta(2, 18, n),
        "expected_spend": rng.gamma(3.0, 20.0, n),
        "margin_rate": rng.uniform(0.1, 0.6, n),
    }
    for channel in CHANNELS:
        data[f"consent_{channel}"] = rng.random(n) < rng.uniform(0.2, 0.9)
        data[f"bounced_{channel}"] = rng.random(n) < 0.05
    for action in action_catalogue():
        uplift = rng.normal(0.005 + 0.001 * action.offer.offer_value, 0.02, n) * uplift_scale
        uplift[rng.random(n) < nan_share] = np.nan
        data[uplift_column(action)] = uplift
    return pd.DataFrame(data)


def open_to(world: pd.DataFrame, channel: str) -> pd.Series:
    """Who may be sent to on ``channel``: consent given, and its newest send did not bounce."""
    return world[f"consent_{channel}"] & ~world[f"bounced_{channel}"]


def allowed_actions(world: pd.DataFrame, config: DesignConfig) -> pd.DataFrame:
    """Per customer_id, how many actions the policy may use (consent x offers x open channels x uplift known)."""
    counts = np.zeros(len(world), dtype=int)
    for action in config.actions:
        open_channel = config.channel_budgets.get(action.channel, math.inf) > 0
        counts += (open_to(world, action.channel) & world[uplift_column(action)].notna() & open_channel).to_numpy()
    return pd.Series(counts, index=world["customer_id"])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[pd.DataFrame, DesignConfig]:
    n = draw(st.integers(0, 400))
    world = make_world(n, draw(st.integers(0, 2**31 - 1)), nan_share=draw(st.sampled_from([0.0, 0.1])),
                       uplift_scale=draw(st.sampled_from([0.3, 1.0, 3.0])))
    channels = tuple(c for c in CHANNELS if draw(st.booleans())) or CHANNELS
    budgets = {c: draw(st.sampled_from([0.0, 0.05, 1.0, 10.0])) for c in channels if draw(st.booleans())}
    config = DesignConfig(
        cycle_id="2026-01-12",
        budget=draw(st.sampled_from([0.0, 0.1, 2.0, 20.0, 1e6])),
        channel_budgets=budgets,
        holdout_share=draw(st.sampled_from([0.05, 0.1, 0.3])),
        min_detectable_lift=draw(st.sampled_from([0.005, 0.05, 0.2])),
        contact_cap=draw(st.integers(1, 6)),
        offers=tuple(o for o in OFFERS if draw(st.booleans())) or ("message",),
        channels=channels,
        exploration=draw(st.sampled_from(["epsilon", "thompson"])),
        epsilon=draw(st.sampled_from([0.0, 0.05, 0.3])),
        thompson_draws=8,
        seed=draw(st.integers(0, 10_000)),
    )
    return world, config


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(worlds())
def test_hard_constraints_hold_in_any_world(case: tuple[pd.DataFrame, DesignConfig]) -> None:
    world, config = case
    rows = design_campaign(world, config).rows
    merged = rows.merge(world, on=["customer_id", "member_id"], how="left", validate="one_to_one",
                        suffixes=("", "_in"))

    # At most one action per customer; every planned customer came from the input.
    assert rows["customer_id"].is_unique
    assert len(merged) == len(rows) and merged["p_buy"].notna().all()
    # Consent is hard: the planned channel is always one the customer opted in to.
    consent = np.array([merged.at[i, f"consent_{c}"] for i, c in enumerate(merged["channel"])], dtype=bool)
    assert consent.all()
    # A channel whose newest send bounced is never used.
    bounced = np.array([merged.at[i, f"bounced_{c}"] for i, c in enumerate(merged["channel"])], dtype=bool)
    assert not bounced.any()
    # Recent unsubscribers and customers at the contact cap are never planned.
    assert not merged["unsubscribed_recently"].any()
    assert (merged["contacts_last_30d"] < config.contact_cap).all()
    assert set(rows["offer"]) <= set(config.offers) and set(rows["channel"]) <= set(config.channels)
    # Every row is an action with a known uplift.
    assert all(pd.notna(merged.at[i, f"uplift__{o}__{c}"]) for i, (o, c) in enumerate(zip(merged["offer"], merged["channel"], strict=True)))
    # Budgets hold even if the control arm were contacted too.
    assert rows["expected_cost"].sum() <= config.budget + 1e-9
    for channel, limit in config.channel_budgets.items():
        assert rows.loc[rows["channel"] == channel, "expected_cost"].sum() <= limit + 1e-9
    assert set(rows["arm"]) <= {"treatment", "control"}


@PROPERTY
@given(worlds())
def test_holdout_and_assignment_probabilities_follow_the_design(case: tuple[pd.DataFrame, DesignConfig]) -> None:
    world, config = case
    plan = design_campaign(world, config)
    rows, summary = plan.rows, plan.summary
    prob = rows["assignment_probability"]
    assert ((prob > 0) & (prob <= 1)).all()
    if rows.empty:
        return
    control = rows["arm"] == "control"
    share = summary["holdout"]["share"]
    assert control.mean() == pytest.approx(share)
    assert share >= max(0.05, config.holdout_share) - 1e-12
    # prob = P(action) x P(arm): dividing out the arm must leave the policy's action probability.
    policy = prob / np.where(control, share, 1 - share)
    eps = summary["epsilon_effective"]
    # Randomised rounding of epsilon x reachable customers, possibly trimmed by the exploration budget.
    assert eps <= math.ceil(config.epsilon * summary["customers_reachable"]) / summary["customers_reachable"] + 1e-12
    k = allowed_actions(world, config).loc[rows["customer_id"]].to_numpy()
    explored = rows["exploration"].to_numpy()
    assert (k >= 1).all()
    if config.exploration == "epsilon":
        # Exploit rows: the optimiser's action for sure, or drawn by exploration with prob eps/K.
        np.testing.assert_allclose(policy[~explored], (1 - eps) + eps / k[~explored])
        # Explored rows: eps/K, plus (1 - eps) when the optimiser would have chosen the same action.
        low = eps / k[explored]
        p = policy[explored]
        assert np.all(np.isclose(p, low) | np.isclose(p, low + 1 - eps))
    else:
        assert np.all(policy >= eps / k - 1e-12) and np.all(policy <= 1 + 1e-12)


@PROPERTY
@given(worlds())
def test_exploit_rows_have_positive_expected_value(case: tuple[pd.DataFrame, DesignConfig]) -> None:
    world, config = case
    if config.exploration != "epsilon":
        return  # Thompson picks on sampled values, by design
    rows = design_campaign(world, config).rows
    assert (rows.loc[~rows["exploration"], "expected_incremental_value"] > 0).all()


def random_feasible_value(world: pd.DataFrame, config: DesignConfig, rng: np.random.Generator) -> float:
    """A random plan that respects every constraint: random order, random allowed action, add while it fits."""
    actions = config.actions
    econ = action_economics(
        world[[uplift_column(a) for a in actions]].to_numpy(float), world["p_buy"].to_numpy(float),
        world["expected_spend"].to_numpy(float), world["margin_rate"].to_numpy(float), actions,
    )
    eligible = (~world["unsubscribed_recently"] & (world["contacts_last_30d"] < config.contact_cap)).to_numpy()
    left = config.budget
    left_channel = dict(config.channel_budgets)
    total = 0.0
    for i in rng.permutation(len(world)):
        options = [j for j, a in enumerate(actions) if eligible[i] and open_to(world, a.channel).iat[i]
                   and np.isfinite(econ.value[i, j])]
        if not options:
            continue
        j = int(rng.choice(options))
        channel = actions[j].channel
        cost = econ.cost[i, j]
        if cost <= left and cost <= left_channel.get(channel, math.inf):
            left -= cost
            if channel in left_channel:
                left_channel[channel] -= cost
            total += econ.value[i, j]
    return total


@PROPERTY
@given(worlds(), st.integers(0, 1000))
def test_optimiser_beats_a_random_feasible_plan_when_the_budget_is_ample(
    case: tuple[pd.DataFrame, DesignConfig], seed: int
) -> None:
    world, config = case
    config = DesignConfig(cycle_id=config.cycle_id, budget=1e9, channels=config.channels, offers=config.offers,
                          contact_cap=config.contact_cap, epsilon=0.0, seed=config.seed)
    plan_value = design_campaign(world, config).rows["expected_incremental_value"].sum()
    assert plan_value >= random_feasible_value(world, config, np.random.default_rng(seed)) - 1e-9


@pytest.mark.parametrize("channel_budgets", [{}, {"sms": 1.0, "email": 2.0}])
def test_optimiser_beats_random_plans_and_nears_the_dual_bound_on_a_tight_budget(channel_budgets: dict[str, float]) -> None:
    world = make_world(3000, 7)
    config = DesignConfig(cycle_id="2026-01-12", budget=15.0, channel_budgets=channel_budgets, epsilon=0.0, seed=3)
    rows = design_campaign(world, config).rows
    value = rows["expected_incremental_value"].sum()
    randoms = [random_feasible_value(world, config, np.random.default_rng(s)) for s in range(5)]
    assert value > 2 * max(randoms)
    assert rows["expected_cost"].sum() > 0.95 * config.budget  # the budget binds and is nearly spent
    if not channel_budgets:
        # Weak duality: for any multiplier, lam*B + sum_i max(0, max_a v - lam*c) bounds every feasible plan.
        actions = config.actions
        econ = action_economics(world[[uplift_column(a) for a in actions]].to_numpy(float), world["p_buy"].to_numpy(float),
                                world["expected_spend"].to_numpy(float), world["margin_rate"].to_numpy(float), actions)
        eligible = (~world["unsubscribed_recently"] & (world["contacts_last_30d"] < config.contact_cap)).to_numpy()
        consent = np.column_stack([open_to(world, a.channel).to_numpy(bool) for a in actions])
        ok = consent & eligible[:, None]
        bound = min(
            lam * config.budget + np.maximum(np.where(ok, econ.value - lam * econ.cost, 0), 0).max(axis=1).sum()
            for lam in np.geomspace(1e-3, 1e4, 400)
        )
        assert value >= 0.97 * bound


def test_a_channel_without_consent_or_budget_is_never_used() -> None:
    world = make_world(2000, 1)
    world["consent_sms"] = False
    config = DesignConfig(cycle_id="2026-01-12", budget=1e6, channel_budgets={"push": 0.0}, epsilon=0.3, seed=1)
    rows = design_campaign(world, config).rows
    assert len(rows) > 0 and not rows["channel"].isin(["sms", "push"]).any()


def test_holdout_is_balanced_on_segment_and_baseline() -> None:
    world = make_world(40_000, 11)
    rows = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=1e6, seed=5)).rows
    rows = rows.merge(world[["customer_id", "p_buy"]], on="customer_id")
    control = rows["arm"] == "control"
    share = control.mean()
    # Stratified by action x segment: each stratum holds out the floor or the ceiling of its share.
    strata = rows.groupby(["campaign_id", "segment"])["arm"].agg(n="size", control=lambda a: (a == "control").sum())
    assert len(strata) > 20
    assert ((strata["control"] - share * strata["n"]).abs() < 1).all()
    a, b = rows.loc[control, "p_buy"], rows.loc[~control, "p_buy"]
    smd = abs(a.mean() - b.mean()) / math.sqrt((a.var() + b.var()) / 2)
    assert smd < 0.05


def test_the_plan_is_reproducible_for_a_seed_and_changes_with_it() -> None:
    world = make_world(3000, 2)
    config = DesignConfig(cycle_id="2026-01-12", budget=30.0, epsilon=0.1, seed=1)
    first = design_campaign(world, config)
    again = design_campaign(world.sample(frac=1.0, random_state=9), config)  # row order must not matter
    pd.testing.assert_frame_equal(first.rows, again.rows)
    assert first.summary == again.summary
    other = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=30.0, epsilon=0.1, seed=2)).rows
    assert not first.rows[["customer_id", "arm", "campaign_id"]].equals(other[["customer_id", "arm", "campaign_id"]])


def test_closing_some_customers_channels_leaves_thompsons_draw_for_everyone_else() -> None:
    # Thompson's draws must not depend on how many random numbers exploration consumed before them (a
    # function of the audience's size): closing a few customers' channels would reshuffle everyone's.
    world = make_world(3000, 5)
    for action in action_catalogue():
        world[f"uplift_sd__{action.name}"] = 0.02
    config = DesignConfig(cycle_id="2026-01-12", budget=1e9, exploration="thompson", epsilon=0.05, seed=3)
    before = design_campaign(world, config).rows.set_index("customer_id")
    closed = world.copy()
    closed.loc[closed["customer_id"].isin(before.index[:200]), [f"consent_{c}" for c in CHANNELS]] = False
    after = design_campaign(closed, config).rows.set_index("customer_id")
    kept = before.index.intersection(after.index)
    kept = kept[~before.loc[kept, "exploration"].to_numpy() & ~after.loc[kept, "exploration"].to_numpy()]
    assert len(kept) > 1500
    assert (before.loc[kept, "campaign_id"] == after.loc[kept, "campaign_id"]).all()


def test_economics_of_one_action_by_hand() -> None:
    pct10_email = next(a for a in action_catalogue() if a.name == "pct10__email")
    econ = action_economics(np.array([[0.1]]), np.array([0.2]), np.array([100.0]), np.array([0.3]), (pct10_email,))
    # Incremental margin 0.1*30 = 3, discount 10 on (0.2 + 0.1) of orders = 3, contact 0.01.
    assert econ.margin[0, 0] == pytest.approx(0.0)
    assert econ.value[0, 0] == pytest.approx(-0.01)
    assert econ.cost[0, 0] == pytest.approx(0.01 + 3.0)
    assert econ.revenue[0, 0] == pytest.approx(0.1 * 100 - 0.3 * 10)
    assert CHANNEL_COST == {"email": 0.01, "push": 0.002, "sms": 0.03, "kakao": 0.015}


def test_power_calculation_matches_the_textbook_sample_size() -> None:
    # 10% -> 12% at alpha 0.05 needs about 3,840 per arm for 80% power.
    assert power_two_proportions(0.10, 0.02, 3840, 3840, 0.05) == pytest.approx(0.80, abs=0.005)
    share, power, under = holdout_share_for_power(0.10, 0.02, 20_000, 0.05, 0.8, 0.05, 0.5)
    assert not under and power == pytest.approx(0.8, abs=1e-3) and 0.05 < share < 0.5
    assert holdout_share_for_power(0.10, 0.2, 20_000, 0.05, 0.8, 0.07, 0.5)[0] == 0.07  # easy: the floor
    share, power, under = holdout_share_for_power(0.10, 0.001, 1000, 0.05, 0.8, 0.05, 0.5)
    assert under and share == 0.05 and power < 0.8


def test_the_holdout_grows_to_reach_power() -> None:
    world = make_world(20_000, 4)
    plan = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=1e6, min_detectable_lift=0.02, seed=1))
    holdout = plan.summary["holdout"]
    assert holdout["share"] > 0.1 and not holdout["underpowered"]
    assert holdout["power"] >= 0.8
    assert (plan.rows["arm"] == "control").sum() == holdout["size"]


def test_plan_rows_and_summary() -> None:
    world = make_world(2000, 3)
    config = DesignConfig.from_settings(Settings(budget=50.0, holdout_share=0.2, seed=9), "2026-01-12", epsilon=0.1)
    assert (config.budget, config.holdout_share, config.seed) == (50.0, 0.2, 9)
    assert DesignConfig.from_settings(Settings(offers=("message", "pct10")), "2026-01-12").offers == ("message", "pct10")
    capped = DesignConfig.from_settings(Settings(budget=50.0, channel_budgets="sms:0.5,kakao:0"), "2026-01-12")
    assert dict(capped.channel_budgets) == {"sms": 0.5, "kakao": 0.0}
    spent = design_campaign(world, capped).summary["budget"]["by_channel"]
    assert spent["sms"]["used"] <= 0.5 + 1e-9 and spent["kakao"]["used"] == 0.0
    plan = design_campaign(world, config)
    rows, summary = plan.rows, plan.summary
    assert list(rows.columns)[:15] == [
        "customer_id", "member_id", "campaign_id", "offer", "offer_type", "offer_value", "channel",
        "cost_per_contact", "arm", "assignment_probability", "exploration", "expected_incremental_value",
        "expected_cost", "expected_incremental_margin", "expected_incremental_revenue",
    ]
    assert (rows["campaign_id"] == "2026-01-12-" + rows["offer"] + "-" + rows["channel"]).all()
    assert set(rows["offer_type"]) <= {"none", "percent_off"}
    sms = rows[rows["channel"] == "sms"]
    assert (sms["send_at"] == pd.Timestamp("2026-01-12 11:00", tz="Asia/Seoul")).all()
    assert all(t.date() == date(2026, 1, 12) for t in rows["send_at"])
    treated = rows[rows["arm"] == "treatment"]
    assert summary["customers_targeted"] == len(rows)
    assert summary["budget"]["used"] == pytest.approx(treated["expected_cost"].sum())
    assert summary["expected"]["roi"] == pytest.approx(treated["expected_incremental_value"].sum() / treated["expected_cost"].sum())
    assert sum(v["treatment"] + v["control"] for v in summary["by_segment"].values()) == len(rows)
    assert summary["explored"] == rows["exploration"].sum() > 0
    assert summary["consents_closed_by_bounce"] == {
        c: int((world[f"consent_{c}"] & world[f"bounced_{c}"]).sum()) for c in CHANNELS} != dict.fromkeys(CHANNELS, 0)


def test_thompson_sampling_explores_with_estimated_probabilities() -> None:
    world = make_world(3000, 5)
    plan = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=20.0, exploration="thompson",
                                               epsilon=0.0, thompson_uplift_sd=0.02, seed=1))
    prob = plan.rows["assignment_probability"]
    assert len(prob) > 0 and (prob > 0).all() and (prob <= 1).all()
    assert prob.nunique() > 5  # estimated per customer, not a constant
    assert plan.rows["expected_cost"].sum() <= 20.0 + 1e-9


def test_an_explored_action_thompson_never_picks_has_only_its_exploration_probability() -> None:
    # At thompson_scale 0 every draw is the posterior mean, so exploitation's choice is certain: an explored
    # row's action either is it (probability 1) or never is (0), and off-policy weights must say so.
    world = make_world(3000, 5)
    config = DesignConfig(cycle_id="2026-01-12", budget=400.0, exploration="thompson", epsilon=0.3,
                          thompson_scale=0.0, thompson_uplift_sd=0.02, seed=1)
    plan = design_campaign(world, config)
    rows, summary = plan.rows, plan.summary
    share, eps = summary["holdout"]["share"], summary["epsilon_effective"]
    policy = rows["assignment_probability"] / np.where(rows["arm"] == "control", share, 1 - share)
    explored = rows["exploration"].to_numpy()
    k = allowed_actions(world, config).loc[rows["customer_id"]].to_numpy()
    exploit_part = ((policy - eps / k) / (1 - eps)).to_numpy()
    assert explored.sum() > 50
    np.testing.assert_allclose(exploit_part[~explored], 1.0)
    assert np.all(np.isclose(exploit_part[explored], 0.0) | np.isclose(exploit_part[explored], 1.0))
    assert np.isclose(exploit_part[explored], 0.0).sum() > 0


def _planned_actions(plan: CampaignPlan) -> pd.Series:
    return plan.rows.set_index("customer_id")["campaign_id"].sort_index()


def test_thompson_scale_sets_how_far_the_draws_stray_from_the_posterior_mean() -> None:
    world = make_world(3000, 5)

    def plan(**kw: object) -> CampaignPlan:
        return design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=20.0, epsilon=0.0,
                                                   thompson_uplift_sd=0.02, **kw))  # type: ignore[arg-type]

    greedy = _planned_actions(plan(exploration="epsilon"))
    at_mean = plan(exploration="thompson", thompson_scale=0.0)
    # Scale 0 draws every action's mean: the epsilon-greedy plan.
    pd.testing.assert_series_equal(_planned_actions(at_mean), greedy)

    def strays(scale: float) -> float:
        # Share of the greedy plan's customers whose action a draw at ``scale`` changes, over 10 draws.
        return float(np.mean([(_planned_actions(plan(exploration="thompson", thompson_scale=scale, seed=seed))
                               .reindex(greedy.index) != greedy).mean() for seed in range(10)]))

    assert 0.0 < strays(0.25) < strays(1.0)


def test_pessimism_leaves_an_effect_the_evidence_cannot_tell_from_harm_to_exploration() -> None:
    # Every message is measured at +0.003; on push the evidence pins it (se 0.0005), elsewhere it cannot tell
    # it from a small harm (se 0.004). Discounts lose on every customer. On the mean every consented customer
    # gets a message; one standard error of pessimism keeps only push, and exploration still sends the rest.
    world = make_world(3000, 5)
    for action in action_catalogue():
        world[uplift_column(action)] = 0.003 if action.offer.name == "message" else -0.01
        world[f"uplift_sd__{action.name}"] = 0.0005 if action.name == "message__push" else 0.004

    def plan(pessimism: float) -> CampaignPlan:
        return design_campaign(world, DesignConfig(
            cycle_id="2026-01-12", budget=1e9, exploration="thompson", epsilon=0.1, thompson_scale=0.0,
            uplift_pessimism=pessimism, seed=1))

    on_mean, pessimistic_plan = plan(0.0).rows, plan(1.0)
    pessimistic = pessimistic_plan.rows
    assert pessimistic_plan.summary["uplift_pessimism"] == 1.0
    exploited = pessimistic[~pessimistic["exploration"]]
    assert set(on_mean.loc[~on_mean["exploration"] & (on_mean["channel"] != "push"), "offer"]) == {"message"}
    assert (on_mean["channel"] != "push").sum() > 500
    assert len(exploited) > 500 and set(zip(exploited["offer"], exploited["channel"], strict=True)) == {("message", "push")}
    explored = pessimistic[pessimistic["exploration"]]
    assert (explored["channel"] == "email").any() and (explored["offer"] == "message").any()
    # The plan still states what the evidence expects of each send: the mean, not the pessimistic value.
    assert np.allclose(pessimistic.loc[pessimistic["offer"] == "message", "expected_uplift"], 0.003)


def test_an_empty_world_gives_an_empty_plan() -> None:
    plan = design_campaign(make_world(0, 0), DesignConfig(cycle_id="2026-01-12", budget=10.0))
    assert plan.rows.empty and plan.summary["customers_targeted"] == 0


@pytest.mark.parametrize(("bad", "named"), [
    ({"holdout_share": 0.04}, "holdout_share"), ({"budget": -1.0}, "budget"), ({"epsilon": 1.0}, "epsilon=1.0"),
    ({"channel_budgets": {"fax": 1.0}}, "'fax'"), ({"offers": ("pct50",)}, "'pct50'"),
    ({"contact_cap": 0}, "contact_cap=0"), ({"thompson_scale": -0.5}, "thompson_scale=-0.5"),
])
def test_invalid_configs_are_refused_naming_the_field(bad: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        DesignConfig(cycle_id="2026-01-12", **{"budget": 1.0, **bad})


def test_missing_columns_and_duplicate_customers_are_refused() -> None:
    world = make_world(10, 0)
    config = DesignConfig(cycle_id="2026-01-12", budget=1.0)
    with pytest.raises(ValueError, match="missing"):
        design_campaign(world.drop(columns="consent_email"), config)
    with pytest.raises(ValueError, match=re.escape(f"unique (the plan gives at most one action per customer): ['{world['customer_id'].iloc[0]}']")):
        design_campaign(pd.concat([world, world.head(1)]), config)


@pytest.mark.slow
def test_plans_100k_customers_by_12_actions_within_the_budgets() -> None:
    world = make_world(100_000, 8)
    config = DesignConfig(cycle_id="2026-01-12", budget=200.0, channel_budgets={"sms": 20.0}, seed=1)
    rows = design_campaign(world, config).rows
    assert len(rows) > 0 and rows["customer_id"].is_unique
    assert rows["expected_cost"].sum() <= config.budget + 1e-9
    assert rows.loc[rows["channel"] == "sms", "expected_cost"].sum() <= 20.0 + 1e-9


# --------------------------------------------------------------------------------------------------
# The retailer's channels, consent rule and time zone (Settings channels, assume_consent, timezone)


def test_a_plan_uses_only_the_enabled_channels() -> None:
    world = make_world(3000, 11)
    config = DesignConfig.from_settings(Settings(channels="email,sms", budget=100.0), "2026-01-12", epsilon=0.2)
    assert config.channels == ("email", "sms") and {a.channel for a in config.actions} == {"email", "sms"}
    plan = design_campaign(world, config)
    assert len(plan.rows) > 0 and set(plan.rows["channel"]) == {"email", "sms"}  # exploration too
    assert plan.summary["channels"] == ["email", "sms"] and set(plan.summary["budget"]["by_channel"]) == {"email", "sms"}
    # The customers who consent only to push or kakao cannot be reached.
    only_elsewhere = world[~open_to(world, "email") & ~open_to(world, "sms")]["customer_id"]
    assert not set(plan.rows["customer_id"]) & set(only_elsewhere)
    with pytest.raises(ValueError, match=re.escape("channel budgets for channels not enabled (email, sms): ['kakao']")):
        DesignConfig(cycle_id="2026-01-12", budget=1.0, channels=("email", "sms"), channel_budgets={"kakao": 1.0})


def without_consent_records(world: pd.DataFrame) -> pd.DataFrame:
    """``world`` as a retailer without a consents export scores it: no consent record for anyone."""
    return world.assign(**{f"consent_{c}": pd.array([pd.NA] * len(world), dtype="boolean") for c in CHANNELS})


def test_without_consents_nobody_is_contacted_unless_consent_is_assumed() -> None:
    world = without_consent_records(make_world(2000, 12))
    world.loc[world.index < 100, "member_id"] = None  # known by a cookie alone: no one to address
    off = design_campaign(world, DesignConfig(cycle_id="2026-01-12", budget=50.0, seed=2))
    assert off.rows.empty and off.summary["customers_reachable"] == 0
    assert off.summary["reach"]["consent_recorded"] == 0 and off.summary["reach"]["consented"] == 0
    assert off.summary["zero_reach_reason"].startswith(
        "no consents landed: none of the 2,000 customers has a consent record on the enabled channels")
    assert "set assume_consent" in off.summary["zero_reach_reason"]

    config = DesignConfig.from_settings(Settings(assume_consent=True, channels="email,push", budget=50.0), "2026-01-12")
    on = design_campaign(world, config)
    assert len(on.rows) > 0 and set(on.rows["channel"]) <= {"email", "push"}
    assert on.summary["assume_consent"] is True and on.summary["zero_reach_reason"] is None
    assert on.summary["reach"]["consent_assumed"] == on.summary["reach"]["consented"] == 1900
    assert on.rows["member_id"].notna().all()
    # Bounces, unsubscribes and the contact cap still hold for assumed consent.
    planned = world.set_index("customer_id").loc[on.rows["customer_id"]]
    assert not planned["unsubscribed_recently"].any() and (planned["contacts_last_30d"] < config.contact_cap).all()
    bounced = [planned.loc[c, f"bounced_{ch}"] for c, ch in zip(on.rows["customer_id"], on.rows["channel"], strict=True)]
    assert not any(bounced)


def test_assumed_consent_never_overrides_a_recorded_opt_out() -> None:
    world = make_world(2000, 13)
    opted_out = world["consent_email"] == False  # noqa: E712 - recorded False, not missing
    world["consent_email"] = world["consent_email"].astype("boolean").mask(world.index % 2 == 0)  # half unrecorded
    config = DesignConfig(cycle_id="2026-01-12", budget=1e3, channels=("email",), assume_consent=True, seed=3)
    plan = design_campaign(world, config)
    recorded_out = set(world.loc[opted_out & (world.index % 2 == 1), "customer_id"])
    assert len(plan.rows) > 0 and not recorded_out & set(plan.rows["customer_id"])
    assumed = set(world.loc[world.index % 2 == 0, "customer_id"])
    assert assumed & set(plan.rows["customer_id"])  # the unrecorded half is reachable
    assert plan.summary["reach"]["consent_assumed"] == len(assumed)


def _reason(world: pd.DataFrame, **config: object) -> str:
    plan = design_campaign(world, DesignConfig(cycle_id="2026-01-12", **{"budget": 50.0, **config}))  # type: ignore[arg-type]
    assert plan.rows.empty and plan.summary["customers_targeted"] == 0
    return str(plan.summary["zero_reach_reason"])


def test_a_plan_that_reaches_nobody_says_why_with_counts() -> None:
    world = make_world(1000, 14)
    everyone_out = world.assign(**{f"consent_{c}": False for c in CHANNELS})
    assert _reason(everyone_out) == ("everyone opted out: all 1,000 customers with a consent record opted out on every "
                                     "enabled channel (email, push, sms, kakao)")
    half = world.assign(**{f"consent_{c}": pd.array([False, pd.NA] * 500, dtype="boolean") for c in CHANNELS})
    assert _reason(half).endswith("opted out on every enabled channel (email, push, sms, kakao); 500 more have no "
                                  "record (set assume_consent to contact them)")
    consented = int(world[[f"consent_{c}" for c in CHANNELS]].any(axis=1).sum())
    assert _reason(world.assign(**{f"bounced_{c}": True for c in CHANNELS})) == (
        f"every consented channel of the {consented:,} consented customers bounced on its newest send")
    capped = world.assign(contacts_last_30d=4, unsubscribed_recently=False)
    assert _reason(capped).startswith("every one of the ") and _reason(capped).endswith(
        " consented customers is at the contact cap (4 contacts in 30 days)")
    assert "unsubscribed in the last 30 days" in _reason(world.assign(unsubscribed_recently=True))
    assert _reason(world, channel_budgets=dict.fromkeys(CHANNELS, 0.0)).endswith("(email, push, sms, kakao)")
    assert _reason(world, budget=0.0).startswith("the budget is 0 (")
    worthless = world.assign(**{uplift_column(a): -0.05 for a in action_catalogue()})
    assert _reason(worthless, epsilon=0.0).startswith("no action is worth its cost for any of the ")
    assert _reason(make_world(0, 0)).startswith("no customers were scored")


@pytest.mark.parametrize(("zone", "day", "utc_offset_hours"), [
    ("Europe/London", date(2026, 7, 6), 1), ("Europe/London", date(2026, 1, 12), 0),
    ("America/Los_Angeles", date(2026, 7, 6), -7), ("Asia/Seoul", date(2026, 7, 6), 9),
])
def test_send_times_fall_in_the_legal_window_of_the_retailers_zone(zone: str, day: date, utc_offset_hours: int) -> None:
    config = DesignConfig.from_settings(Settings(timezone=zone, budget=200.0), day.isoformat(), epsilon=0.2)
    assert config.timezone == zone
    plan = design_campaign(make_world(3000, 15), config)
    send_at = pd.DatetimeIndex(plan.rows["send_at"])
    assert len(send_at) > 0 and str(send_at.tz) == zone and plan.summary["timezone"] == zone
    assert set(plan.rows["channel"]) == set(CHANNELS)
    local = send_at.tz_convert(zone)
    assert ((local.hour >= 8) & (local.hour + local.minute / 60 <= 21)).all() and (local.date == day).all()
    # The same local hour in UTC moves with the zone (and its daylight saving time).
    utc = send_at.tz_convert("UTC")
    assert ((local.hour - utc.hour) % 24 == utc_offset_hours % 24).all()
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Base'"):
        DesignConfig(cycle_id="2026-01-12", budget=1.0, timezone="Mars/Base")


def test_the_scorer_marks_consents_without_a_record_from_the_warehouse(tmp_path: Path) -> None:
    import duckdb

    from ml.score import consent_records, mark_unrecorded_consents

    world = make_world(4, 16)
    ids = world["customer_id"].tolist()
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.dim_customers (customer_id bigint, consent_email boolean, consent_push boolean, "
                    "consent_sms boolean, consent_kakao boolean)")
        # ids[0] opted out of e-mail, ids[1] has no e-mail record, ids[2] no record at all; ids[3] is not listed.
        con.executemany("insert into marts.dim_customers values (?, ?, ?, ?, ?)", [
            [ids[0], False, True, None, None], [ids[1], None, True, False, True], [ids[2], None, None, None, None]])
    records = consent_records(warehouse, "marts")
    assert records is not None and consent_records(warehouse, "published") is None  # no dim_customers there
    # The features mart reads a missing consent as False; the scorer tells it apart.
    marked = mark_unrecorded_consents(world.assign(consent_email=False, consent_push=True), records).set_index("customer_id")
    assert marked["consent_email"].isna().tolist() == [False, True, True, False]
    assert marked["consent_push"].isna().tolist() == [False, False, True, False]
    assert marked.loc[ids[0], "consent_email"] == False  # noqa: E712 - a recorded opt-out stays one
    assert marked.loc[ids[3], "consent_email"] == False  # noqa: E712 - not in dim_customers: as the mart says
    assert mark_unrecorded_consents(world, None).equals(world)
    # A preference weight the scorer could not measure (no randomised campaign yet) is reported as none,
    # not as a measured 0.
    unmeasured = design_campaign(world.assign(preference_weight=np.nan), DesignConfig(cycle_id="2026-01-12", budget=1.0))
    assert unmeasured.summary["channel_preference_weight"] is None
