"""The two ways to make a plan: :func:`design_campaign` (the platform's) and :func:`plan_from_choice` (a given
policy's, under the same rules), each wiring the steps of the other modules of ``ml.decide``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ml.decide.catalogue import BASE_COLUMNS, NO_CONTACT, uplift_column
from ml.decide.config import CampaignPlan, DesignConfig, random_stream
from ml.decide.economics import ScoredCustomers
from ml.decide.eligibility import contact_rules
from ml.decide.exploration import (
    Assignment,
    Explored,
    exploit_economics,
    exploit_probability,
    exploit_uplift,
    explore_epsilon,
    sample_economics,
    uplift_sd,
)
from ml.decide.holdout import draw_holdout, holdout_share_for_power
from ml.decide.optimise import optimise, repair
from ml.decide.plan import plan_rows, plan_summary, preference_weight_of


def _validate(customers: pd.DataFrame, config: DesignConfig) -> None:
    needed = list(BASE_COLUMNS) + [f"consent_{c}" for c in config.channels] + [uplift_column(a) for a in config.actions]
    if config.value_horizon_weeks > 0:  # the retained value reads the churn and CLV scores
        needed += ["p_churn", "clv_52w"]
    if missing := [c for c in needed if c not in customers.columns]:
        raise ValueError(f"customers is missing columns: {missing}")
    if (duplicated := customers["customer_id"].duplicated(keep=False)).any():
        ids = sorted(customers.loc[duplicated, "customer_id"].astype(str).unique())
        raise ValueError(f"customer_id must be unique (the plan gives at most one action per customer): {ids[:5]} "
                         f"({len(ids)} repeated)")


def design_campaign(customers: pd.DataFrame, config: DesignConfig) -> CampaignPlan:
    """Design the campaign of ``config.cycle_id`` for ``customers``; see the package docstring."""
    _validate(customers, config)
    if config.exploration == "auto":
        has_sd = all(f"uplift_sd__{a.name}" in customers.columns for a in config.actions)
        config = replace(config, exploration="thompson" if has_sd else "epsilon")
    # Sorted so the plan does not depend on the order the rows arrived in.
    scored = ScoredCustomers.read(customers.sort_values("customer_id", kind="stable").reset_index(drop=True), config)
    eligibility = contact_rules(scored, config)
    allowed = eligibility.allowed(scored.action_channel) & np.isfinite(scored.uplift)
    n_allowed = allowed.sum(axis=1)
    reachable = np.flatnonzero(n_allowed > 0)

    # Exploration (epsilon): a random share of reachable customers gets a uniformly random allowed action;
    # exploitation: the optimiser on everyone else, with what exploration left of the budgets.
    explored = explore_epsilon(scored, allowed, reachable, config)
    choice, penalty = _exploit(scored, allowed, explored, config)
    assignment = Assignment(choice=choice, explore=explored.assignment.explore)

    # Probability that the exploitation policy gives each customer the action it got.
    planned = assignment.planned
    policy_prob = exploit_probability(scored, assignment, allowed, penalty, config)
    action_prob = (1 - explored.share) * policy_prob + explored.share / np.maximum(n_allowed[planned], 1)

    # Holdout: sized for the planned customers' baseline conversion, stratified by action x segment.
    p0 = float(scored.p_buy[planned].mean()) if len(planned) else 0.0
    share, _, underpowered = holdout_share_for_power(
        p0, config.min_detectable_lift, len(planned), config.alpha, config.power,
        config.holdout_share, config.holdout_share_max,
    )
    holdout = draw_holdout(choice[planned], _segments(scored, planned), share, p0, underpowered, config)

    rows = plan_rows(scored, assignment, holdout.control,
                     action_prob * np.where(holdout.control, holdout.share, 1 - holdout.share), config)
    summary = plan_summary(rows, config, reach=eligibility.funnel() | {"reachable": len(reachable)},
                           epsilon_eff=explored.share, bounced=eligibility.bounced_consents(config.channels),
                           preference_weight=preference_weight_of(scored.frame), holdout=holdout.summary(config),
                           penalty=penalty)
    return CampaignPlan(cycle_id=config.cycle_id, rows=rows, summary=summary)


def _exploit(scored: ScoredCustomers, allowed: np.ndarray, explored: Explored,
             config: DesignConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every customer's action (the explored keep theirs) and the optimiser's penalty per action."""
    econ = scored.econ
    exploit = exploit_economics(scored, config)
    value_for_choice, cost_for_choice = exploit.value, exploit.cost
    if config.exploration == "thompson":
        sampled = sample_economics(scored, slice(None), exploit_uplift(scored, config), uplift_sd(scored, config),
                                   random_stream(config, "thompson"))
        value_for_choice, cost_for_choice = sampled.value, sampled.cost
    explore = explored.assignment.explore
    budget, channel_budgets = max(explored.budget_left, 0.0), np.maximum(explored.channel_budgets_left, 0.0)
    exploit_choice, penalty = optimise(value_for_choice, cost_for_choice, allowed & ~explore[:, None],
                                       scored.action_channel, budget, channel_budgets)
    # Thompson's sampled costs must still fit the real budgets: repair against the expected costs.
    if config.exploration == "thompson":
        exploit_choice = repair(exploit_choice, exploit.value, econ.cost, scored.action_channel, budget, channel_budgets)
    return np.where(explore, explored.assignment.choice, exploit_choice), penalty


def _segments(scored: ScoredCustomers, rows: np.ndarray) -> np.ndarray:
    return scored.frame["segment"].astype(str).to_numpy()[rows]


def plan_from_choice(customers: pd.DataFrame, actions: pd.Series, config: DesignConfig,
                     holdout_share: float | None = None) -> CampaignPlan:
    """A plan for actions chosen by someone else (a baseline policy), with the same guarantees and columns.

    ``actions`` (aligned with ``customers``' index) names each customer's action ``<offer>__<channel>``
    or is empty/NaN for no contact. Rows whose action is not allowed (no consent, closed channel, not
    eligible, unknown action) are dropped, then rows are kept in the given order while the expected
    cost (the uplift columns of ``customers`` as in :func:`design_campaign`) fits every budget,
    control arm included. The holdout is a fixed share (default ``config.holdout_share``), stratified
    like the designed plans; ``assignment_probability`` is the arm's probability (the policy is treated
    as deterministic).
    """
    _validate(customers, config)
    index = {a.name: i for i, a in enumerate(config.actions)}
    wanted = actions.reindex(customers.index).to_numpy(dtype=object)
    choice = np.array([index.get(a, NO_CONTACT) if isinstance(a, str) else NO_CONTACT for a in wanted])
    scored = ScoredCustomers.read(customers.reset_index(drop=True), config)
    # A baseline policy's actions need no uplift estimate: only the rules decide what is allowed.
    eligibility = contact_rules(scored, config)
    allowed = eligibility.allowed(scored.action_channel)
    final = _within_budgets(choice, allowed, scored, config)
    # Rows in customer_id order, as design_campaign produces them.
    by_id = np.argsort(scored.frame["customer_id"].to_numpy().astype(str), kind="stable")
    p_buy = scored.p_buy[by_id]
    scored, assignment = scored.take(by_id), Assignment(choice=final[by_id], explore=np.zeros(len(final), dtype=bool))
    planned = assignment.planned
    p0 = float(p_buy[planned].mean()) if len(planned) else 0.0
    share = config.holdout_share if holdout_share is None else holdout_share
    holdout = draw_holdout(assignment.choice[planned], _segments(scored, planned), share, p0, None, config)
    rows = plan_rows(scored, assignment, holdout.control, np.where(holdout.control, holdout.share, 1 - holdout.share),
                     config)
    summary = plan_summary(rows, config, reach=eligibility.funnel() | {"reachable": int(allowed.any(axis=1).sum())},
                           epsilon_eff=0.0, bounced=eligibility.bounced_consents(config.channels),
                           preference_weight=preference_weight_of(scored.frame), holdout=holdout.summary(config),
                           penalty=np.zeros(len(config.actions)))
    summary["method"] = "baseline policy: given actions in priority order, truncated to the budget"
    return CampaignPlan(cycle_id=config.cycle_id, rows=rows, summary=summary)


def _within_budgets(choice: np.ndarray, allowed: np.ndarray, scored: ScoredCustomers,
                    config: DesignConfig) -> np.ndarray:
    """``choice`` without the actions not ``allowed``, then cut where the rows, in the given (priority) order,
    first overspend a budget."""
    ok = choice >= 0
    ok[ok] = allowed[np.flatnonzero(ok), choice[ok]]
    choice = np.where(ok, choice, NO_CONTACT)
    order = np.arange(len(choice))
    rows_in_order = order[choice[order] >= 0]
    cost = scored.econ.cost[rows_in_order, choice[rows_in_order]]
    fits = np.cumsum(cost) <= config.budget + 1e-9
    channel_budgets = config.channel_budget_vector
    for ch in np.flatnonzero(np.isfinite(channel_budgets)):
        in_channel = scored.action_channel[choice[rows_in_order]] == ch
        fits &= np.cumsum(np.where(in_channel, cost, 0.0)) <= channel_budgets[ch] + 1e-9
    kept = int(np.argmin(fits)) if not fits.all() else len(fits)
    final = np.full(len(choice), NO_CONTACT)
    final[rows_in_order[:kept]] = choice[rows_in_order[:kept]]
    return final
