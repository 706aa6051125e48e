"""Trigger journeys' rules on small hand-made frames: due, cancelled, capped, consent, contact cap, holdout."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import get_args

import numpy as np
import pandas as pd
import pytest

from campaign_loop.actions import TRIGGERS, TriggerRule, cycle_of_trigger_campaign, trigger_of_campaign
from campaign_loop.config import CHANNELS, TriggerName
from ml.triggers import TriggerConfig, choose_sends, holdout_draw, trigger_arms

AS_OF = datetime(2026, 1, 12)


def config(*names: str, **overrides: object) -> TriggerConfig:
    values = {"as_of": AS_OF, "cycle_id": "2026-01-12", "rules": tuple(TRIGGERS[n] for n in names),
              "channels": CHANNELS, "contact_cap": 4, "holdout_share": 0.2, "seed": 42} | overrides
    return TriggerConfig(**values)  # type: ignore[arg-type]


def reach(members: list[str], **columns: object) -> pd.DataFrame:
    frame = pd.DataFrame({"member_id": members, "unsubscribed_recently": False, "contacts_last_30d": 0})
    for c in CHANNELS:
        frame[f"consent_{c}"] = True
        frame[f"bounced_{c}"] = False
    return frame.assign(**columns)


def event(member: str, kind: str, hours_ago: float, next_order_hours_ago: float | None = None, key: str | None = None) -> dict:
    return {"trigger_event": kind, "event_key": key or f"{kind}-{member}-{hours_ago}", "customer_id": f"C{member}",
            "member_id": member, "event_at": AS_OF - timedelta(hours=hours_ago),
            "next_order_at": None if next_order_hours_ago is None else AS_OF - timedelta(hours=next_order_hours_ago)}


def test_the_catalogue_and_the_setting_name_the_same_triggers() -> None:
    assert set(TRIGGERS) == set(get_args(TriggerName))
    campaign = TRIGGERS["win_back"].campaign_id("2026-01-12", "sms")
    assert trigger_of_campaign(campaign) == "win_back" and cycle_of_trigger_campaign(campaign) == "2026-01-12"
    assert trigger_of_campaign("bau-2026-01-12-pct10-email") is None
    with pytest.raises(ValueError, match="trigger x: offer"):
        TriggerRule("x", "purchase", "pct99", ("email",), delay_hours=1, window_hours=1, cap_days=1)


def test_an_abandoned_cart_is_due_after_its_delay_until_its_window_ends_unless_an_order_followed() -> None:
    candidates = pd.DataFrame([
        event("M1", "cart_abandoned", 0.5),  # not due yet (delay 1 h)
        event("M2", "cart_abandoned", 5),
        event("M3", "cart_abandoned", 5, next_order_hours_ago=2),  # bought since: not abandoned
        event("M4", "cart_abandoned", 24 * 8 + 2),  # stale: past delay + window
    ])
    plan = choose_sends(candidates, reach(["M1", "M2", "M3", "M4"]), config("cart_abandonment"))
    assert list(plan.rows["member_id"]) == ["M2"]
    row = plan.rows.iloc[0]
    assert row["campaign_id"] == "trigger-cart_abandonment-2026-01-12-email" and row["channel"] == "email"
    assert row["send_at"] == pd.Timestamp(AS_OF) and row["delay_hours"] == pytest.approx(5)
    funnel = plan.summary["funnel"]["cart_abandonment"]
    assert (funnel["events"], funnel["due"], funnel["not_cancelled"]) == (4, 2, 1)


def test_consent_bounces_unsubscribes_and_the_contact_cap_with_the_weekly_plan_stop_a_send() -> None:
    members = [f"M{i}" for i in range(7)]
    candidates = pd.DataFrame([event(m, "purchase", 80) for m in members])
    r = reach(members)
    r.loc[1, ["consent_email", "consent_kakao"]] = False  # neither of the rule's channels
    r.loc[2, "bounced_email"] = True  # falls back to kakao
    r.loc[3, "unsubscribed_recently"] = True
    r.loc[4, "contacts_last_30d"] = 4  # the shared cap: 4 in 30 days, this one included
    history = pd.DataFrame({"member_id": ["M6"], "trigger": ["cart_abandonment"], "arm": ["treatment"],
                            "assigned_at": [AS_OF - timedelta(hours=1)], "landed": [False]})
    r.loc[5, "contacts_last_30d"] = 3  # 3 seen by the warehouse + the weekly plan's (held out or not)
    r.loc[6, "contacts_last_30d"] = 3  # 3 seen by the warehouse + 1 planned this cycle
    plan = choose_sends(candidates, r, config("post_purchase_cross_sell"), history=history, weekly_members={"M0", "M5"})
    assert dict(zip(plan.rows["member_id"], plan.rows["channel"], strict=True)) == {"M0": "email", "M2": "kakao"}


def test_a_trigger_is_capped_per_member_and_a_member_gets_one_trigger_per_run_in_priority_order() -> None:
    candidates = pd.DataFrame([event("M1", "cart_abandoned", 3), event("M1", "browse_abandoned", 3),
                               event("M2", "browse_abandoned", 3), event("M2", "browse_abandoned", 4)])
    history = pd.DataFrame({"member_id": ["M2"], "trigger": ["browse_abandonment"], "arm": ["control"],
                            "assigned_at": [AS_OF - timedelta(days=6)], "landed": [True]})
    plan = choose_sends(candidates, reach(["M1", "M2"]), config("cart_abandonment", "browse_abandonment"),
                        history=history)
    assert list(zip(plan.rows["member_id"], plan.rows["trigger"], strict=True)) == [("M1", "cart_abandonment")]
    later = choose_sends(candidates, reach(["M1", "M2"]), config("browse_abandonment"), history=history)
    assert sorted(later.rows["member_id"]) == ["M1"]  # M2's browse trigger is within its 7-day cap


def test_win_back_needs_a_predicted_churn_and_the_anniversary_counts_whole_years() -> None:
    candidates = pd.DataFrame([event("M1", "last_purchase", 24 * 70), event("M2", "last_purchase", 24 * 70),
                               event("M3", "signup", 24 * (365 * 2 + 1)), event("M4", "signup", 24 * 100),
                               event("M5", "signup", 24 * 365 * 3 + 24 * 9)])
    members = ["M1", "M2", "M3", "M4", "M5"]
    plan = choose_sends(candidates, reach(members), config("win_back", "membership_anniversary"))
    assert list(plan.rows["member_id"]) == ["M3"]  # no churn scores: no win-back, and the summary says why
    assert list(plan.summary["notes"]) == ["win_back"] and "no champion" in plan.summary["notes"]["win_back"]
    churn = pd.Series({"CM1": 0.8, "CM2": 0.3})
    plan = choose_sends(candidates, reach(members), config("win_back", "membership_anniversary"), p_churn=churn)
    assert plan.summary["notes"] == {}
    assert list(zip(plan.rows["member_id"], plan.rows["trigger"], strict=True)) == [
        ("M1", "win_back"), ("M3", "membership_anniversary")]


def test_the_holdout_is_a_fixed_random_share_per_member_and_trigger_with_its_probability_recorded() -> None:
    members = pd.Series([f"M{i:05d}" for i in range(20_000)])
    draw = holdout_draw(42, "cart_abandonment", members)
    assert np.array_equal(draw, holdout_draw(42, "cart_abandonment", members))
    assert abs((draw < 0.2).mean() - 0.2) < 0.01
    other = holdout_draw(42, "browse_abandonment", members) < 0.2
    assert abs(((draw < 0.2) & other).mean() - 0.04) < 0.005  # independent across triggers
    candidates = pd.DataFrame([event(m, "cart_abandoned", 3) for m in members[:2000]])
    rows = choose_sends(candidates, reach(list(members[:2000])), config("cart_abandonment")).rows
    assert np.array_equal(rows["arm"] == "control", draw[:2000] < 0.2)
    assert set(zip(rows["arm"], rows["assignment_probability"], strict=True)) == {("control", 0.2), ("treatment", 0.8)}


def test_trigger_arms_pool_each_triggers_campaigns_by_adding_their_sums() -> None:
    arms = pd.DataFrame({
        "campaign_id": ["trigger-win_back-2026-01-12-sms", "trigger-win_back-2026-01-19-email",
                        "trigger-win_back-2026-01-12-sms",
                        "bau-2026-01-12-pct10-email"],
        "arm": ["treatment", "treatment", "control", "treatment"], "variant_id": [None] * 4,
        "assigned": [10, 30, 5, 99], "converted": [2, 3, 1, 9], "conversion_rate": [0.2, 0.1, 0.2, 0.1],
        "revenue": [pd.NA] * 4, "assignment_probability": [0.8, 0.8, 0.2, 0.5],
    }).astype({"revenue": object})
    arms["revenue"] = [1.5, 2.5, 1.0, 7.0]
    pooled = trigger_arms(arms).set_index("arm")
    assert set(pooled["campaign_id"]) == {"win_back"} and "conversion_rate" not in pooled
    assert pooled.loc["treatment", ["assigned", "converted", "revenue"]].tolist() == [40, 5, 4.0]
    assert pooled.loc["control", "assignment_probability"] == 0.2


def _arms_row(campaign_id: str, arm: str, n: int, converted: int, pre: int, both: int) -> dict[str, object]:
    """A kpi_campaign_arms row: conversion and its pre-period; revenue, margin and orders all zero."""
    zeros = dict.fromkeys(("revenue", "revenue_sq", "pre_revenue", "pre_revenue_sq", "revenue_x_pre", "margin",
                           "margin_sq", "pre_margin", "pre_margin_sq", "margin_x_pre", "orders", "orders_sq",
                           "revenue_x_orders", "discount"), 0.0)
    return zeros | {"campaign_id": campaign_id, "arm": arm, "variant_id": None, "assigned": n, "converted": converted,
                    "pre_converted": pre, "converted_x_pre": both, "cost": 0.0 if arm == "control" else 1.0,
                    "assignment_probability": 0.2 if arm == "control" else 0.8}


def test_a_trigger_without_conversions_in_either_arm_gets_newcombes_interval_not_zero_width() -> None:
    from campaign_loop.lift import campaign_lift
    from ml.ab import two_proportion_test

    # Win-back's members bought before (the pre-period varies) but nobody bought in either arm this time.
    arms = pd.DataFrame([_arms_row("trigger-win_back-2026-01-12-email", "treatment", 80, 0, 12, 0),
                         _arms_row("trigger-win_back-2026-01-12-email", "control", 20, 0, 3, 0)])
    converted = campaign_lift(trigger_arms(arms)).set_index("metric").loc["converted"]
    newcombe = two_proportion_test(0, 20, 0, 80, ci="newcombe")
    # Zero events in 100 members: a rate up to ~4-17 points is as consistent with them as 0, not [0, 0].
    assert not converted["cuped"] and converted["lift"] == 0.0
    assert (converted["lift_ci_low"], converted["lift_ci_high"]) == pytest.approx((newcombe.ci_low, newcombe.ci_high))
    assert converted["lift_ci_low"] < -0.1 and converted["lift_ci_high"] > 0.04
    # With events and non-events in both arms CUPED still adjusts.
    arms = pd.DataFrame([_arms_row("trigger-win_back-2026-01-12-email", "treatment", 80, 6, 12, 3),
                         _arms_row("trigger-win_back-2026-01-12-email", "control", 20, 1, 3, 1)])
    assert campaign_lift(trigger_arms(arms)).set_index("metric").loc["converted", "cuped"]
