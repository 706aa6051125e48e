"""Executing a campaign plan: who gets what, sends, delivery and engagement events, coupons, costs.

With no plan the retailer runs business as usual: a random share of consenting members gets a random
action, half held out at random, so randomised campaign data exists from cycle 0. Before cycle 0 the
retailer ran a monthly newsletter on every channel (``newsletter_history``), without a holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_loop.actions import CHANNEL_COST, OFFERS, PLAN_COLUMNS
from campaign_loop.config import CHANNELS, Settings, cycle_id
from sim import ids
from sim.calendar import DAY_S, period_days
from sim.hours import READ_AT_PREFERRED, HourResponse
from sim.landing import Col, Frame
from sim.world import SLEEPING_DOG, People, member_ids, member_numbers

# Per channel: share of an average person's open propensity (sms opens are not tracked) and click base.
OPEN_FACTOR = {"email": 1.0, "push": 0.6, "sms": 0.0, "kakao": 1.6}
CLICK_BASE = {"email": 0.016, "push": 0.012, "sms": 0.010, "kakao": 0.020}
CLICK_IF_BUYING = 0.15  # a recipient about to buy is much likelier to click through
UNSUBSCRIBE = 0.0008
UNSUBSCRIBE_SLEEPING_DOG = 0.015
_MEMBER_INVERSE = pow(7_368_787, -1, 1_000_000_000)
NEWSLETTER_INTERVAL_DAYS = 28
# The newest newsletter's week starts five weeks before cycle 0, so it is outside every contact cap's
# 30 days when the platform designs its first campaign.
NEWSLETTER_GAP_DAYS = 35
# Column of a plan row's own send time (UTC), which only trigger journeys' rows carry (simulate_period's
# ``triggered``); a plan without it is sent as before, on the period's second day.
TRIGGER_SEND_AT = "trigger_send_at"


def person_of_member(member_id: pd.Series, people: People) -> np.ndarray:
    """Person index of each membership ID, -1 when it is not a member of this world."""
    number = pd.to_numeric(member_id.astype(str).str.slice(1), errors="coerce").fillna(-1).to_numpy(np.int64)
    person = ((number - 10_000_019) % 1_000_000_000) * _MEMBER_INVERSE % 1_000_000_000
    n = len(people["person_id"])
    ok = (number >= 0) & member_id.astype(str).str.startswith("M").to_numpy() & (person < n)
    person = np.where(ok, person, -1)
    ok &= people["member"][np.maximum(person, 0)] & (member_numbers(np.maximum(person, 0)) == number)
    return np.where(ok, person, -1)


def bau_plan(rng: np.random.Generator, settings: Settings, people: People, cid: str) -> pd.DataFrame:
    consent = np.stack([people[f"consent_{c}"] for c in CHANNELS], axis=1)
    eligible = np.flatnonzero(consent.any(axis=1))
    chosen = eligible[rng.random(len(eligible)) < settings.bau_contact_share]
    score = np.where(consent[chosen], rng.random((len(chosen), len(CHANNELS))), -1.0)
    channel = np.array(CHANNELS)[score.argmax(axis=1)]
    offer_names = list(OFFERS)
    offer = np.array(offer_names)[rng.integers(0, len(offer_names), len(chosen))]
    control = rng.random(len(chosen)) < 0.5
    return pd.DataFrame({
        "member_id": member_ids(chosen).to_numpy(zero_copy_only=False),
        "campaign_id": pd.Series(offer).radd(f"bau-{cid}-").str.cat(channel, sep="-").to_numpy(),
        "channel": channel,
        "offer_type": [OFFERS[o].offer_type for o in offer],
        "offer_value": [OFFERS[o].offer_value for o in offer],
        "arm": np.where(control, "control", "treatment"),
        "assignment_probability": 0.5,
        "cost_per_contact": [CHANNEL_COST[c] for c in channel],
    })


@dataclass(frozen=True)
class Assignment:
    """The executed plan, one entry per assigned person (first plan row per member)."""

    person: np.ndarray
    campaign_id: np.ndarray
    channel: np.ndarray
    offer_type: np.ndarray
    offer_value: np.ndarray
    treatment: np.ndarray
    probability: np.ndarray
    cost: np.ndarray
    delivered: np.ndarray  # treatment, consented and so actually sent (may still bounce)
    consent_violations: int
    unknown_members: int
    # Epoch seconds each row is to be sent at, -1 unset: the weekly plan's send_at (its time of day is kept on
    # the period's send day) or a trigger journey's own send time; None when the plan has neither.
    send_at: np.ndarray | None = None

    @property
    def action(self) -> np.ndarray:
        names = {(o.offer_type, o.offer_value): name for name, o in OFFERS.items()}
        offer = [names.get((t, float(v)), f"{t}_{v:g}") for t, v in zip(self.offer_type, self.offer_value, strict=True)]
        return np.char.add(np.char.add(np.array(offer, dtype=str), "__"), self.channel.astype(str))


def assign(plan: pd.DataFrame, people: People) -> Assignment:
    missing = set(PLAN_COLUMNS) - set(plan.columns)
    if missing:
        raise ValueError(f"the plan lacks columns {sorted(missing)}; a plan has {list(PLAN_COLUMNS)}")
    plan = plan.drop_duplicates("member_id", keep="first")
    person = person_of_member(plan["member_id"], people)
    known = person >= 0
    plan = plan[known]
    person = person[known]
    channel = plan["channel"].astype(str).to_numpy()
    bad_channel = ~np.isin(channel, CHANNELS)
    if bad_channel.any():
        raise ValueError(f"the plan uses unknown channels {sorted(set(channel[bad_channel]))}")
    treatment = (plan["arm"].astype(str) == "treatment").to_numpy()
    consented = np.zeros(len(person), dtype=bool)
    for c in CHANNELS:
        consented |= (channel == c) & people[f"consent_{c}"][person]
    send_at = None
    if TRIGGER_SEND_AT in plan.columns:
        at = pd.to_datetime(plan[TRIGGER_SEND_AT])
        send_at = np.where(at.notna(), at.to_numpy("datetime64[s]").astype(np.int64), -1)
    return Assignment(
        person=person,
        campaign_id=plan["campaign_id"].astype(str).to_numpy(),
        channel=channel,
        offer_type=plan["offer_type"].astype(str).to_numpy(),
        offer_value=plan["offer_value"].astype(float).to_numpy(),
        treatment=treatment,
        probability=plan["assignment_probability"].astype(float).to_numpy(),
        cost=plan["cost_per_contact"].astype(float).to_numpy(),
        delivered=treatment & consented,
        consent_violations=int((treatment & ~consented).sum()),
        unknown_members=int((~known).sum()),
        send_at=send_at if send_at is not None else _send_at(plan),
    )


def _send_at(plan: pd.DataFrame) -> np.ndarray | None:
    """The plan's ``send_at`` as epoch seconds (-1 where missing); None when the plan has no such column."""
    if "send_at" not in plan.columns:
        return None
    at = pd.to_datetime(plan["send_at"], utc=True, errors="coerce")
    seconds = (at - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.fillna(-1).to_numpy(np.int64)


@dataclass(frozen=True)
class Engagement:
    frames: dict[str, Frame]
    sent_at: np.ndarray  # per assigned person, -1 when not sent
    bounced: np.ndarray
    click_person: np.ndarray
    click_ts: np.ndarray
    click_campaign: np.ndarray
    click_channel: np.ndarray
    unsubscribed: np.ndarray


def send_times(rng: np.random.Generator, n: int, period_start: int, period_days: int) -> np.ndarray:
    # Campaigns go out on the second day of the period at 10-12h Seoul time (01-03h UTC).
    day = min(1, period_days - 1)
    return period_start + day * DAY_S + 3_600 + rng.integers(0, 7_200, n)


def planned_send_times(a: Assignment, default: np.ndarray, period_start: int, period_days: int) -> np.ndarray:
    """The plan's ``send_at`` time of day on the period's send day (the second, as :func:`send_times`'s), the
    retailer's usual time (``default``) where the plan gives none. The plan's date is the cycle's first local
    day, and 08:00 in Seoul is the day before in UTC, the simulator's calendar: the time of day is what the
    plan chose, so it is kept and the day is the simulator's."""
    if a.send_at is None:
        return default
    day = min(1, period_days - 1)
    return np.where(a.send_at >= 0, period_start + day * DAY_S + np.mod(a.send_at, DAY_S), default)


def engage(
    rng: np.random.Generator, people: People, a: Assignment, buys_if_treated: np.ndarray,
    sent_at: np.ndarray, period_end: int, hours: HourResponse | None = None,
) -> Engagement:
    """Delivery, opens, clicks and unsubscribes of the sends that went out. With ``hours`` (the opt-in send-hour
    preference, :mod:`sim.hours`) opens and clicks scale with the send hour's factor, and most opens come at the
    person's next reading hour."""
    sent = a.delivered
    person = a.person
    bounced = np.zeros(len(person), dtype=bool)
    aff = np.zeros(len(person))
    open_factor = np.zeros(len(person))
    click_base = np.zeros(len(person))
    for c in CHANNELS:
        on = a.channel == c
        bounced |= on & people[f"unreachable_{c}"][person]
        aff = np.where(on, people[f"aff_{c}"][person], aff)
        open_factor = np.where(on, OPEN_FACTOR[c], open_factor)
        click_base = np.where(on, CLICK_BASE[c], click_base)
    bounced &= sent
    ok = sent & ~bounced
    last = period_end - 1
    delivered_ts = sent_at + rng.integers(2, 120, len(person))
    # A person opens more on the channels they prefer, as they click more there: channel preference shows
    # in engagement, as CRM teams read it (mean affinity is 1, so each channel's open rate hardly changes).
    seen = 1.0 if hours is None else hours.factor
    opened = ok & (rng.random(len(person)) < np.minimum(people["open_prop"][person] * open_factor * aff * seen, 1.0))
    open_ts = np.minimum(sent_at + rng.exponential(4 * 3_600, len(person)).astype(np.int64), last)
    if hours is not None:
        at_reading = rng.random(len(person)) < READ_AT_PREFERRED
        read_ts = hours.next_read + rng.normal(0.0, 900.0, len(person)).astype(np.int64)
        open_ts = np.where(at_reading, np.clip(read_ts, sent_at + 60, last), open_ts)
    clicked = ok & (rng.random(len(person)) < (click_base * aff + CLICK_IF_BUYING * buys_if_treated) * seen)
    click_ts = np.minimum(np.where(opened, open_ts, sent_at) + rng.exponential(1_800, len(person)).astype(np.int64), last)
    unsub_p = np.where(people["response_class"][person] == SLEEPING_DOG, UNSUBSCRIBE_SLEEPING_DOG, UNSUBSCRIBE)
    unsub = ok & (rng.random(len(person)) < unsub_p)
    unsub_ts = np.minimum(np.maximum(open_ts, delivered_ts) + rng.integers(10, 600, len(person)), last)

    parts = [(bounced, 4, delivered_ts), (ok, 0, delivered_ts), (opened, 1, open_ts), (clicked, 2, click_ts), (unsub, 3, unsub_ts)]
    rows = np.concatenate([np.flatnonzero(m) for m, _, _ in parts])
    etype = np.concatenate([np.full(m.sum(), t) for m, t, _ in parts])
    ts = np.concatenate([t[m] for m, _, t in parts])
    order = np.lexsort((etype, ts))
    rows, etype, ts = rows[order], etype[order], ts[order]
    frames: dict[str, Frame] = {}
    if len(rows):
        frames["campaign_events"] = {
            "campaign_id": Col("str", pa.array(a.campaign_id[rows], type=pa.string())),
            "member_id": Col("str", member_ids(person[rows])),
            "event_type": Col("str", ids.vocab(("delivered", "open", "click", "unsubscribe", "bounce"), etype)),
            "occurred_at": Col("ts", ts),
        }
    un = np.flatnonzero(unsub)
    if len(un):
        frames["consents"] = {
            "member_id": Col("str", member_ids(person[un])),
            "channel": Col("str", pa.array(a.channel[un], type=pa.string())),
            "status": Col("str", ids.vocab(("opt_out",), np.zeros(len(un), dtype=np.int64))),
            "changed_at": Col("ts", unsub_ts[un]),
            "source": Col("str", ids.vocab(("unsubscribe_link",), np.zeros(len(un), dtype=np.int64))),
        }
    return Engagement(frames, np.where(sent, sent_at, -1), bounced, person[clicked], click_ts[clicked],
                      a.campaign_id[clicked], a.channel[clicked], unsub)


def campaign_frames(
    a: Assignment, e: Engagement, cid: str, period_start: int, period_end: int
) -> dict[str, Frame]:
    frames: dict[str, Frame] = {}
    if not len(a.person):
        return frames
    frames["campaign_sends"] = {
        "campaign_id": Col("str", pa.array(a.campaign_id, type=pa.string())),
        "member_id": Col("str", member_ids(a.person)),
        "arm": Col("str", ids.vocab(("control", "treatment"), a.treatment.astype(np.int64))),
        "sent_at": Col("ts", np.maximum(e.sent_at, 0), e.sent_at < 0),
        "assignment_probability": Col("str", pa.array(np.round(a.probability, 6)).cast(pa.string())),
    }
    df = pd.DataFrame({
        "campaign_id": a.campaign_id, "channel": a.channel, "offer_type": a.offer_type,
        "offer_value": a.offer_value, "cost": a.cost, "sent": a.delivered.astype(np.int64),
    })
    first = df.groupby("campaign_id", sort=True).agg(
        channel=("channel", "first"), offer_type=("offer_type", "first"), offer_value=("offer_value", "first"),
        cost=("cost", "first"), sent=("sent", "sum"),
    ).reset_index()
    n = len(first)
    budget = np.round(first["sent"].to_numpy() * first["cost"].to_numpy() * 100).astype(np.int64)
    frames["campaigns"] = {
        "campaign_id": Col("str", pa.array(first["campaign_id"], type=pa.string())),
        "campaign_name": Col("str", pa.array(first["campaign_id"].str.replace("-", " "), type=pa.string())),
        "channel": Col("str", pa.array(first["channel"], type=pa.string())),
        "offer_type": Col("str", pa.array(first["offer_type"], type=pa.string())),
        "offer_value": Col("str", pa.array(first["offer_value"].round(4)).cast(pa.string())),
        "cost_per_contact": Col("str", pa.array(first["cost"].round(6)).cast(pa.string())),
        "budget": Col("cents", budget),
        "starts_at": Col("ts", np.full(n, period_start, dtype=np.int64)),
        "ends_at": Col("ts", np.full(n, period_end - 1, dtype=np.int64)),
        "cycle_id": Col("str", pa.array(np.full(n, cid))),
    }
    return frames


def coupon_codes(seed: int, cycle: int, a: Assignment) -> pa.Array:
    """A personal code per treated recipient of an offer; null for messages and controls."""
    has = a.delivered & (a.offer_type != "none")
    code = ids.join(pa.array(a.campaign_id, type=pa.string()), "-",
                    ids.hex_ids(ids.hash64(seed, cycle, 77, a.person), "", 8))
    return pa.array(np.where(has, code.to_numpy(zero_copy_only=False), None), type=pa.string())


def newsletter_history(settings: Settings, people: People, stream: int) -> dict[str, list[Frame]]:
    """The retailer's monthly newsletter before cycle 0: every member signed up by then gets a message on each
    channel they consent to, with no holdout. Its sends, deliveries, bounces, opens, clicks and
    unsubscribes (which withdraw consent in ``people``) land with cycle 0; what it did to purchases is
    part of the purchase history's baseline, so a click here never marks a purchase.

    This is the engagement history any retailer's CRM holds, and where channel preference first shows.
    """
    frames: dict[str, list[Frame]] = {}
    message = OFFERS["message"]
    for k in range(settings.newsletter_history - 1, -1, -1):
        week = settings.start_date - timedelta(days=NEWSLETTER_GAP_DAYS + k * NEWSLETTER_INTERVAL_DAYS)
        days = period_days(week, 7)
        start, end = int(days[0]) * DAY_S, (int(days[-1]) + 1) * DAY_S
        cid = cycle_id(week)
        for c in CHANNELS:
            # Cycle 0's stream, then the newsletter and the channel; the last number is never 0 because
            # numpy's seeding ignores trailing zeros, which would let a key repeat another cycle's.
            rng = np.random.default_rng([settings.seed, 0, stream, k, CHANNELS.index(c) + 1])
            who = np.flatnonzero(people["member"] & people[f"consent_{c}"] & (people["signup"] < start))
            if not len(who):
                continue
            a = Assignment(
                person=who, campaign_id=np.full(len(who), f"newsletter-{cid}-{c}"), channel=np.full(len(who), c),
                offer_type=np.full(len(who), message.offer_type), offer_value=np.full(len(who), message.offer_value),
                treatment=np.ones(len(who), dtype=bool), probability=np.ones(len(who)),
                cost=np.full(len(who), CHANNEL_COST[c]), delivered=np.ones(len(who), dtype=bool),
                consent_violations=0, unknown_members=0,
            )
            sent_at = send_times(rng, len(who), start, 7)
            hours = (HourResponse.of(people, who, sent_at, settings.seed, settings.timezone)
                     if settings.send_hour_preference else None)
            e = engage(rng, people, a, np.zeros(len(who)), sent_at, end, hours)
            people[f"consent_{c}"][who[e.unsubscribed]] = False
            for source, frame in (e.frames | campaign_frames(a, e, cid, start, end)).items():
                frames.setdefault(source, []).append(frame)
    return frames
