"""Trigger journeys: who is due for which trigger now, on which channel, and who of them is held out.

``choose_sends`` applies the rules of :data:`campaign_loop.actions.TRIGGERS` to the events of
``fct_trigger_candidates`` at one moment (``as_of``): an event is due ``delay_hours`` after it happened and
stale ``window_hours`` later; an abandoned session followed by an order is no longer abandoned; win-back needs
the churn model's probability; a member gets a trigger at most once in its ``cap_days`` and one trigger per run.
Consent, bounces, recent unsubscribes and the contact cap are the weekly campaign's
(:mod:`ml.decide.eligibility`), counted over the same 30 days, and the same cycle's weekly plan counts as one
contact in either arm (so who gets a trigger does not depend on the weekly arm, and the weekly holdout stays
comparable). Each eligible member is then held out of the
trigger by a hash of the seed, the trigger and the member ID: the same member stays held out of the same
trigger, and ``assignment_probability`` records the arm's share.

``trigger_lift`` measures each trigger against its holdout, pooling its campaigns (one per cycle) from
``kpi_campaign_arms``' additive sums, with the statistics every campaign is measured by (``campaign_loop.lift``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from campaign_loop.actions import CHANNEL_COST, OFFERS, PLAN_COLUMNS, TriggerRule, trigger_of_campaign

# Events an order after them cancels: a cart bought is not abandoned.
CANCELLED_BY_ORDER: frozenset[str] = frozenset({"cart_abandoned", "browse_abandoned"})
TRIGGER_COLUMNS: tuple[str, ...] = (*PLAN_COLUMNS, "trigger", "offer", "event_key", "event_at", "send_at",
                                    "delay_hours")
NOT_ADDITIVE: frozenset[str] = frozenset({"revenue_per_customer", "assignment_probability"})
FUNNEL_STEPS: tuple[str, ...] = ("events", "due", "not_cancelled", "predicted_churn", "newest_per_member",
                                 "under_trigger_cap", "reachable", "under_contact_cap",
                                 "one_trigger_per_run")


@dataclass(frozen=True)
class TriggerConfig:
    """What one run of the trigger journeys needs besides the data: the moment, the cycle and the shared rules."""

    as_of: datetime  # naive UTC, the moment the rules are evaluated at
    cycle_id: str  # the cycle the sends belong to (their campaign IDs)
    rules: tuple[TriggerRule, ...]
    channels: tuple[str, ...]  # the enabled channels
    contact_cap: int
    holdout_share: float
    seed: int


@dataclass(frozen=True)
class TriggerPlan:
    rows: pd.DataFrame  # TRIGGER_COLUMNS, both arms
    summary: dict[str, Any]


def holdout_draw(seed: int, trigger: str, member_id: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per member, fixed by the seed, the trigger and the member ID."""
    return np.array([
        int.from_bytes(hashlib.sha256(f"{seed}|{trigger}|{m}".encode()).digest()[:8], "big") / 2**64
        for m in member_id.astype(str)
    ], dtype=float)


def due_events(candidates: pd.DataFrame, rule: TriggerRule, as_of: datetime,
               p_churn: pd.Series | None, funnel: dict[str, int]) -> pd.DataFrame:
    """The rule's events due now, the newest per member, with ``due_at``; counts each step into ``funnel``."""
    c = candidates[candidates["trigger_event"] == rule.trigger_event].copy()
    funnel["events"] = len(c)
    if rule.trigger_event == "signup":
        c["event_at"] = _last_anniversary(pd.to_datetime(c["event_at"]), as_of)
        c = c[c["event_at"].notna()]
    c["due_at"] = pd.to_datetime(c["event_at"]) + pd.Timedelta(hours=rule.delay_hours)
    c = c[(c["due_at"] <= as_of) & (c["due_at"] + pd.Timedelta(hours=rule.window_hours) > as_of)]
    funnel["due"] = len(c)
    if rule.trigger_event in CANCELLED_BY_ORDER:
        c = c[c["next_order_at"].isna() | (pd.to_datetime(c["next_order_at"]) > as_of)]
    funnel["not_cancelled"] = len(c)
    if rule.min_p_churn is not None:
        churn = p_churn if p_churn is not None else pd.Series(dtype=float)
        c = c[c["customer_id"].map(churn).fillna(-1.0).to_numpy() >= rule.min_p_churn]
    funnel["predicted_churn"] = len(c)
    c = c.sort_values(["member_id", "event_at", "event_key"]).drop_duplicates("member_id", keep="last")
    funnel["newest_per_member"] = len(c)
    return c


def _last_anniversary(signup: pd.Series, as_of: datetime) -> pd.Series:
    """The newest anniversary of each signup on or before ``as_of`` (a first one at least), NaT before it."""
    years = as_of.year - signup.dt.year
    this_year = [s + pd.DateOffset(years=int(y)) if pd.notna(s) else pd.NaT for s, y in zip(signup, years, strict=True)]
    out = pd.Series(pd.to_datetime(this_year), index=signup.index)
    before = out > as_of
    out[before] = [s - pd.DateOffset(years=1) for s in out[before]]
    return out.where(out >= signup + pd.DateOffset(years=1))


def _channel_of(reach: pd.DataFrame, rule: TriggerRule, channels: tuple[str, ...]) -> pd.Series:
    """The first of the rule's enabled channels the member consents to and whose newest send did not bounce."""
    chosen = pd.Series(None, index=reach.index, dtype=object)
    for channel in (c for c in rule.channels if c in channels):
        ok = reach[f"consent_{channel}"].fillna(False).astype(bool) & ~reach[f"bounced_{channel}"].fillna(False).astype(bool)
        chosen = chosen.where(chosen.notna() | ~ok, channel)
    return chosen


def eligible(due: pd.DataFrame, rule: TriggerRule, config: TriggerConfig, reach: pd.DataFrame,
             history: pd.DataFrame, weekly_members: set[str], funnel: dict[str, int]) -> pd.DataFrame:
    """The due members this trigger may go to: its cap, consent and the contact cap (the weekly plan's included)."""
    since = config.as_of - timedelta(days=rule.cap_days)
    capped = set(history.loc[(history["trigger"] == rule.name) & (history["assigned_at"] > since), "member_id"])
    d = due[~due["member_id"].isin(capped)]
    funnel["under_trigger_cap"] = len(d)
    r = reach.reindex(d["member_id"].to_numpy())
    channel = _channel_of(r, rule, config.channels).to_numpy()
    subscribed = ~r["unsubscribed_recently"].fillna(True).astype(bool).to_numpy()
    d = d.assign(channel=channel)[pd.notna(channel) & subscribed]
    funnel["reachable"] = len(d)
    # The 30 days' contacts the warehouse has seen, and trigger sends planned since that it has not seen yet.
    contacts = r["contacts_last_30d"].reindex(d["member_id"].to_numpy()).fillna(0).to_numpy(float)
    pending = history[(history["arm"] == "treatment") & ~history["landed"]].groupby("member_id").size()
    contacts = contacts + d["member_id"].map(pending).fillna(0).to_numpy(float)
    # The weekly plan's message counts in either arm: the trigger's audience must not depend on the weekly arm,
    # or the weekly holdout would get more trigger messages than its treatment and its lift would shrink.
    contacts = contacts + d["member_id"].isin(weekly_members).to_numpy(float)
    d = d[contacts < config.contact_cap]
    funnel["under_contact_cap"] = len(d)
    return d


def assign_arms(d: pd.DataFrame, rule: TriggerRule, config: TriggerConfig) -> pd.DataFrame:
    """Plan rows of one trigger: the deterministic holdout and the arm's recorded probability."""
    held_out = holdout_draw(config.seed, rule.name, d["member_id"]) < config.holdout_share
    offer = OFFERS[rule.offer]
    send_at = d["due_at"].where(d["due_at"] > config.as_of, pd.Timestamp(config.as_of))
    return pd.DataFrame({
        "member_id": d["member_id"].astype(str).to_numpy(),
        "campaign_id": [rule.campaign_id(config.cycle_id, c) for c in d["channel"].astype(str)],
        "channel": d["channel"].astype(str).to_numpy(),
        "offer_type": offer.offer_type,
        "offer_value": offer.offer_value,
        "arm": np.where(held_out, "control", "treatment"),
        "assignment_probability": np.where(held_out, config.holdout_share, 1.0 - config.holdout_share),
        "cost_per_contact": d["channel"].map(CHANNEL_COST).to_numpy(float),
        "trigger": rule.name,
        "offer": rule.offer,
        "event_key": d["event_key"].astype(str).to_numpy(),
        "event_at": pd.to_datetime(d["event_at"]).to_numpy(),
        "send_at": pd.to_datetime(send_at).to_numpy(),
        "delay_hours": ((pd.to_datetime(send_at) - pd.to_datetime(d["event_at"])).dt.total_seconds() / 3600).to_numpy(),
    })


def choose_sends(candidates: pd.DataFrame, reach: pd.DataFrame, config: TriggerConfig, *,
                 p_churn: pd.Series | None = None, history: pd.DataFrame | None = None,
                 weekly_members: set[str] | None = None) -> TriggerPlan:
    """The trigger sends due at ``config.as_of``, both arms, and a funnel per trigger of who each rule stopped.

    ``candidates``: ``fct_trigger_candidates``. ``reach``: per member ID, ``consent_<channel>``,
    ``bounced_<channel>``, ``unsubscribed_recently`` and ``contacts_last_30d`` (``ml.features.scoring_frame``).
    ``p_churn``: per customer ID (the scores export); without it win-back sends nothing. ``history``: earlier
    trigger assignments (member_id, trigger, arm, assigned_at, landed: whether the warehouse counts it already).
    ``weekly_members``: members of the same cycle's weekly plan, either arm (one contact each).
    """
    history = _empty_history() if history is None else history
    weekly_members = weekly_members or set()
    reach = reach.drop_duplicates("member_id").set_index("member_id")
    parts: list[pd.DataFrame] = []
    funnels: dict[str, dict[str, int]] = {}
    taken: set[str] = set()
    for rule in config.rules:  # priority order: a member due for two triggers gets the first
        funnel: dict[str, int] = {}
        due = due_events(candidates, rule, config.as_of, p_churn, funnel)
        d = eligible(due, rule, config, reach, history, weekly_members, funnel)
        d = d[~d["member_id"].isin(taken)]
        funnel["one_trigger_per_run"] = len(d)
        taken |= set(d["member_id"])
        rows = assign_arms(d, rule, config)
        funnel |= {"treatment": int((rows["arm"] == "treatment").sum()), "control": int((rows["arm"] == "control").sum())}
        funnels[rule.name] = funnel
        parts.append(rows)
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TRIGGER_COLUMNS))
    return TriggerPlan(rows=rows[list(TRIGGER_COLUMNS)], summary=_summary(
        rows, config, funnels, 0 if p_churn is None else int(p_churn.notna().sum())))


def _summary(rows: pd.DataFrame, config: TriggerConfig, funnels: dict[str, dict[str, int]],
             scored: int) -> dict[str, Any]:
    delay = rows.groupby("trigger")["delay_hours"]
    return {
        "as_of": config.as_of.isoformat(), "cycle_id": config.cycle_id, "holdout_share": config.holdout_share,
        "contact_cap": config.contact_cap, "churn_scored_customers": scored,
        "rules": {r.name: {"trigger_event": r.trigger_event, "offer": r.offer, "channels": list(r.channels),
                           "delay_hours": r.delay_hours, "window_hours": r.window_hours, "cap_days": r.cap_days,
                           "min_p_churn": r.min_p_churn} for r in config.rules},
        "funnel": funnels,
        "planned_delay_hours": {t: {"median": float(s.median()), "max": float(s.max())} for t, s in delay},
        "notes": {r.name: ("no churn score: the churn model has no champion yet (its 28-day label is complete "
                           "four weekly cycles after the first feature date), so it flags nobody")
                  for r in config.rules if r.min_p_churn is not None and not scored},
    }


def _empty_history() -> pd.DataFrame:
    return pd.DataFrame({"member_id": pd.Series(dtype=str), "trigger": pd.Series(dtype=str),
                         "arm": pd.Series(dtype=str), "assigned_at": pd.Series(dtype="datetime64[ns]"),
                         "landed": pd.Series(dtype=bool)})


def history_from_sends(sends: pd.DataFrame) -> pd.DataFrame:
    """Trigger assignments the warehouse holds (campaign_id, member_id, arm, assigned_at) as ``history`` rows."""
    trigger = sends["campaign_id"].astype(str).map(trigger_of_campaign)
    kept = sends[trigger.notna()]
    return pd.DataFrame({"member_id": kept["member_id"].astype(str), "trigger": trigger[trigger.notna()],
                         "arm": kept["arm"].astype(str), "assigned_at": pd.to_datetime(kept["assigned_at"]),
                         "landed": True}).reset_index(drop=True)


def trigger_arms(arms: pd.DataFrame) -> pd.DataFrame:
    """``kpi_campaign_arms`` rows of trigger campaigns pooled per trigger and arm (their sums add up), with the
    trigger's name as ``campaign_id``: the input ``campaign_loop.lift.campaign_lift`` measures per trigger."""
    trigger = arms["campaign_id"].astype(str).map(trigger_of_campaign)
    kept = arms[trigger.notna()].assign(campaign_id=trigger[trigger.notna()])
    keys = ["campaign_id", "arm", "variant_id"]
    # Rates and the average probability do not add up; every other column is a count or a sum.
    additive = [c for c in kept.columns if c not in keys and not c.endswith("_rate")
                and c not in NOT_ADDITIVE and not pd.api.types.is_bool_dtype(kept[c])]
    sums = kept[additive].astype(float).assign(**{k: kept[k] for k in keys})
    pooled = sums.groupby(keys, dropna=False, sort=True)[additive].sum().reset_index()
    probability = kept.groupby(keys, dropna=False, sort=True)["assignment_probability"].mean().reset_index(drop=True)
    return pooled.assign(assignment_probability=probability.to_numpy())
