"""The plan's rows, one per customer given an action, and its JSON-able summary (with why it reaches nobody)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ml.decide.catalogue import SEND_TIME, campaign_id
from ml.decide.config import DesignConfig
from ml.decide.economics import ScoredCustomers
from ml.decide.exploration import Assignment

UNTIERED = "untiered"  # a customer dim_loyalty_tiers does not list, or scores read without that mart


def send_hours(frame: pd.DataFrame, channel: np.ndarray, config: DesignConfig) -> np.ndarray:
    """Each planned row's local send hour: the customer's ``send_hour`` (ml.send_time) where the frame has one,
    else the channel's usual hour (SEND_TIME), either moved into ``config.send_window``."""
    usual = np.array([SEND_TIME[c].hour for c in channel], dtype=float)
    own = (pd.to_numeric(frame["send_hour"], errors="coerce").to_numpy(float) if "send_hour" in frame
           else np.full(len(frame), np.nan))
    hour = np.where(np.isfinite(own), np.floor(own), usual)
    start, end = config.send_window
    return np.clip(hour, start, end - 1).astype(np.int64)


def send_times(frame: pd.DataFrame, channel: np.ndarray, config: DesignConfig) -> pd.DatetimeIndex:
    """Each planned row's ``send_at``: the send date at its :func:`send_hours` hour, in the retailer's time zone."""
    assert config.send_date is not None  # set in __post_init__
    wall = pd.Timestamp(config.send_date) + pd.to_timedelta(send_hours(frame, channel, config), unit="h")
    # A wall-clock hour a DST change skips is sent at the next hour that exists.
    return pd.DatetimeIndex(wall).tz_localize(config.timezone, nonexistent="shift_forward", ambiguous=False)


def plan_rows(customers: ScoredCustomers, assignment: Assignment, control: np.ndarray, probability: np.ndarray,
              config: DesignConfig) -> pd.DataFrame:
    """One row per planned customer: the action, the arm (``control`` per planned row), the probability of
    both (``probability``) and what the action is expected to earn and cost."""
    df, actions, econ, uplift = customers.frame, customers.actions, customers.econ, customers.uplift
    planned = assignment.planned
    act = assignment.choice[planned]
    pick = (lambda values: np.asarray(values, dtype=object)[act]) if len(actions) else (lambda values: np.array([], dtype=object))
    rows = pd.DataFrame({
        "customer_id": df["customer_id"].to_numpy()[planned],
        "member_id": df["member_id"].to_numpy()[planned],
        "campaign_id": pick([campaign_id(config.cycle_id, a) for a in actions]).astype(str),
        "offer": pick([a.offer.name for a in actions]).astype(str),
        "offer_type": pick([a.offer.offer_type for a in actions]).astype(str),
        "offer_value": pick([a.offer.offer_value for a in actions]).astype(float),
        "channel": pick([a.channel for a in actions]).astype(str),
        "cost_per_contact": pick([a.cost_per_contact for a in actions]).astype(float),
        "arm": np.where(control, "control", "treatment"),
        "assignment_probability": probability.astype(float),
        "exploration": assignment.explore[planned],
        "expected_incremental_value": econ.value[planned, act],
        "expected_cost": econ.cost[planned, act],
        "expected_incremental_margin": econ.margin[planned, act],
        "expected_incremental_revenue": econ.revenue[planned, act],
        "expected_uplift": np.nan_to_num(uplift[planned, act]),
        "expected_retained_value": econ.retained[planned, act],
        "segment": df["segment"].astype(str).to_numpy()[planned],
        # The tier of marts.dim_loyalty_tiers, when the scores carry it (ml.loyalty.attach_value_tiers).
        "value_tier": (df["value_tier"].fillna(UNTIERED).astype(str).to_numpy()[planned] if "value_tier" in df
                       else np.full(len(planned), UNTIERED, dtype=object)),
        "send_at": send_times(df.iloc[planned], pick([a.channel for a in actions]).astype(str), config),
    })
    return rows


def _counts(rows: pd.DataFrame, by: str) -> dict[str, dict[str, int]]:
    table = rows.groupby([by, "arm"]).size().unstack(fill_value=0)
    return {str(k): {arm: int(table.loc[k].get(arm, 0)) for arm in ("treatment", "control")} for k in table.index}


def preference_weight_of(df: pd.DataFrame) -> float | None:
    """The weight the scorer gave the customers' channel preference (ml/engagement.py); None if it did not say."""
    if "preference_weight" not in df or df.empty or pd.isna(df["preference_weight"].iloc[0]):
        return None  # not scored, or scored without randomised evidence to weigh (ml.score)
    return float(df["preference_weight"].iloc[0])


def zero_reach_reason(reach: Mapping[str, int], config: DesignConfig, targeted: int) -> str | None:
    """Why a plan contacts nobody, from the ``reach`` funnel: the first rule that left no one, with its counts;
    None when the plan targets someone."""
    if targeted:
        return None
    channels = ", ".join(config.channels)
    n, recorded, consented = reach["customers"], reach["consent_recorded"], reach["consented"]
    if n == 0:
        return "no customers were scored (the features mart has no customer as of this cycle)"
    if consented == 0 and recorded == 0:
        return (f"no consents landed: none of the {n:,} customers has a consent record on the enabled channels "
                f"({channels}); land a consents export, or set assume_consent to treat members without a record "
                "as opted in")
    if consented == 0:
        unrecorded = n - recorded
        return (f"everyone opted out: all {recorded:,} customers with a consent record opted out on every enabled "
                f"channel ({channels})" + (f"; {unrecorded:,} more have no record (set assume_consent to contact "
                                          "them)" if unrecorded and not config.assume_consent else ""))
    if reach["deliverable"] == 0:
        return f"every consented channel of the {consented:,} consented customers bounced on its newest send"
    if reach["channel_open"] == 0:
        closed = ", ".join(c for c in config.channels if config.channel_budgets.get(c, math.inf) <= 0)
        return (f"channel budgets of 0 close every channel the {reach['deliverable']:,} consented customers can "
                f"be reached on ({closed})")
    if reach["not_unsubscribed"] == 0:
        return f"all {reach['channel_open']:,} consented customers unsubscribed in the last 30 days"
    if reach["under_contact_cap"] == 0:
        return (f"every one of the {reach['not_unsubscribed']:,} consented customers is at the contact cap "
                f"({config.contact_cap} contacts in 30 days)")
    if reach.get("under_frequency_cap", reach["under_contact_cap"]) == 0:
        return (f"every one of the {reach['under_contact_cap']:,} customers under the contact cap is at their own "
                "frequency cap (ml.frequency)")
    if reach["scored"] == 0:
        return (f"none of the {reach.get('under_frequency_cap', reach['under_contact_cap']):,} eligible customers has a purchase probability, "
                "expected spend and margin rate")
    if reach["reachable"] == 0:
        return f"no action of the {reach['scored']:,} eligible customers has an uplift estimate"
    if config.budget <= 0:
        return f"the budget is 0 ({reach['reachable']:,} customers reachable)"
    return (f"no action is worth its cost for any of the {reach['reachable']:,} reachable customers, and "
            f"exploration (epsilon {config.epsilon:g}) drew none within its share of the budget "
            f"({config.budget:,.2f})")


def budget_by_tier(treated: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per value tier of the treatment arm: customers, budget used, expected value and the part of it retained."""
    grouped = treated.groupby("value_tier")
    table = pd.DataFrame({"customers": grouped.size(), "used": grouped["expected_cost"].sum(),
                          "expected_value": grouped["expected_incremental_value"].sum(),
                          "retained_value": grouped["expected_retained_value"].sum()})
    return {str(tier): {k: float(v) for k, v in row.items()} for tier, row in table.iterrows()}


def plan_summary(
    rows: pd.DataFrame, config: DesignConfig, *, reach: dict[str, int], epsilon_eff: float,
    bounced: dict[str, int], preference_weight: float | None, holdout: dict[str, Any], penalty: np.ndarray,
) -> dict[str, Any]:
    """The plan's summary: who it reaches and why not more, its arms by action, channel and segment, what the
    treatment arm is expected to earn and cost, and the budgets."""
    treated = rows[rows["arm"] == "treatment"]
    cost = float(treated["expected_cost"].sum())
    contact_cost = float(treated["cost_per_contact"].sum())
    value = float(treated["expected_incremental_value"].sum())
    by_channel_used = treated.groupby("channel")["expected_cost"].sum()
    return {
        "cycle_id": config.cycle_id,
        "seed": config.seed,
        "method": "lagrangian relaxation (bisection on budget multipliers) + greedy repair and fill",
        "exploration": config.exploration,
        "customers_in": int(reach["customers"]),
        "customers_reachable": int(reach["reachable"]),
        "channels": list(config.channels),
        "timezone": config.timezone,
        "assume_consent": config.assume_consent,
        # Customers left after each contact rule in turn; zero_reach_reason names the rule that left no one.
        "reach": {k: int(v) for k, v in reach.items()},
        # Customers under the global contact_cap whom their own frequency cap (ml.frequency) kept out.
        "frequency_capped": int(reach.get("under_contact_cap", 0) - reach.get("under_frequency_cap",
                                                                             reach.get("under_contact_cap", 0))),
        "zero_reach_reason": zero_reach_reason(reach, config, len(rows)),
        "consents_closed_by_bounce": bounced,
        "channel_preference_weight": preference_weight,
        "customers_targeted": int(len(rows)),
        "treatment": int(len(treated)),
        "control": int(len(rows) - len(treated)),
        "explored": int(rows["exploration"].sum()),
        "epsilon": config.epsilon,
        "epsilon_effective": float(epsilon_eff),
        # Standard errors subtracted from each measured effect before exploitation valued it (0: the mean).
        "uplift_pessimism": config.uplift_pessimism,
        "holdout": {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in holdout.items()},
        "by_action": _counts(rows, "campaign_id"),
        "by_channel": _counts(rows, "channel"),
        "by_segment": _counts(rows, "segment"),
        # Local send hours of the treatment arm: each customer's own (ml.send_time) or their channel's.
        "send_window": list(config.send_window),
        "send_hours": {str(h): int(n) for h, n in sorted(
            pd.DatetimeIndex(treated["send_at"]).tz_convert(config.timezone).hour.value_counts().items())},
        # Totals over the treatment arm: the control arm is not contacted, so it earns and costs nothing.
        "expected": {
            "incremental_revenue": float(treated["expected_incremental_revenue"].sum()),
            "incremental_margin": float(treated["expected_incremental_margin"].sum()),
            "incremental_value": value,
            "retained_value": float(treated["expected_retained_value"].sum()),
            "cost": cost,
            "contact_cost": contact_cost,
            "discount_cost": cost - contact_cost,
            "roi": value / cost if cost > 0 else None,
        },
        "budget": {
            "total": config.budget,
            "used": cost,
            # What the plan would cost if the control arm were contacted too: the optimiser keeps this
            # under the budget, so no outcome of the randomisation can overspend.
            "planned": float(rows["expected_cost"].sum()),
            "by_channel": {
                c: {"budget": config.channel_budgets.get(c), "used": float(by_channel_used.get(c, 0.0))}
                for c in config.channels
            },
            "by_tier": budget_by_tier(treated),
        },
        "value_horizon_weeks": config.value_horizon_weeks,
        "total_multiplier": float(penalty.min()) if len(penalty) else 0.0,
    }
