"""One period of the simulated retailer: ``simulate_period(settings, cycle, plan)``.

Cycle 0 creates the world and lands its initial snapshot (CRM, catalogue, consents, purchase history)
with the first week. Every cycle then: new people arrive, consents drift, the campaign plan (or
business as usual) is executed, people buy (both potential outcomes from one uniform per person),
browse, click and review, some drop out. The landing batch goes to ``landing_dir/<source>/<cycle_id>``,
the truth to ``truth_dir``, the state to ``truth_dir/world``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from campaign_loop.actions import ACTIONS
from campaign_loop.config import CHANNELS, Settings, cycle_id
from ingest.contract import load_contract
from sim import faults as fault_injection
from sim import ids
from sim.behaviour import (
    EXTRA_ORDER_RATE,
    ORDER_VALUE_FACTOR,
    baseline_probability,
    discount_share,
    expected_incremental_profit,
    retention_columns,
    uplift,
)
from sim.calendar import DAY_S, HOUR_ONLINE, HOUR_STORE, draw_times, exposure_weeks, intensity, period_days
from sim.campaigns import (
    TRIGGER_SEND_AT,
    Assignment,
    Engagement,
    assign,
    bau_plan,
    campaign_frames,
    coupon_codes,
    engage,
    newsletter_history,
    planned_send_times,
    send_times,
)
from sim.events import Sessions, browse_counts, make_sessions, session_events
from sim.history import arrivals, create_people
from sim.hours import HourResponse, preferred_hour
from sim.landing import Col, Frame, concat_frames, write_source
from sim.media import MEDIA_RESPONSE, expected_revenue, media_orders
from sim.transactions import Purchases, make_transactions
from sim.world import (
    CATEGORIES,
    CITIES,
    GENDERS,
    GIVEN_NAMES,
    RESPONSE_CLASSES,
    SURNAMES,
    TIERS,
    People,
    WorldStore,
    concat_people,
    draw_products,
    email_values,
    identities,
    member_ids,
    phone_values,
    product_choice_keys,
    take_people,
)
from sim.worlds import WorldContext, decay_contact_load, retention

# Random streams of a cycle: np.random.default_rng([seed, cycle, stream]).
ARRIVALS, CONSENT, CRM, PLAN, OUTCOME, ORDERS, SEND, ENGAGE, EVENTS, REVIEWS, ADS, DROPOUT, HISTORY, PAID, NEWSLETTERS = range(10, 25)
DEFECTION = 25  # world r only: a stream of its own, so the other worlds draw exactly what they drew before
TRIGGER_ENGAGE = 26  # the trigger journeys' engagement (opt-in): its own stream, so no other draw moves
MEDIA = 27  # streams 27 and 28 of the opt-in media effect (sim/media.py); unused, and so unchanged, without it
DIRT_STREAM = 100
CONSENT_DRIFT = 0.002  # share of members changing each channel's consent in a week
TIER_CHANGE = 0.003
REVIEW_SHARE = 0.04
HISTORY_EVENT_DAYS = 28  # checkout sessions of the last weeks of history are landed too
# Daily spend per 20k people, CPM, CTR. The spend is about 8 % of the world's revenue (20k people buy
# ~2,700 a day), a retailer's usual marketing share, which puts the media's ROAS near 2 (display's near 1).
PAID_MEDIA: dict[str, tuple[float, float, float]] = {
    "search": (120.0, 8.0, 0.030), "social": (60.0, 5.0, 0.012), "display": (30.0, 2.0, 0.004),
}
# Share of the world's own web/app sessions that arrive from a paid-media click, and the utm_medium it
# tags them with. Most of the media's clicks come from people outside the customer base; these are the
# ones attribution can credit (and ROAS and CAC count).
PAID_ARRIVALS: dict[str, tuple[float, str]] = {"search": (0.06, "cpc"), "social": (0.03, "paid_social"), "display": (0.01, "display")}


@dataclass(frozen=True)
class PeriodSummary:
    cycle: int
    cycle_id: str
    rows: Mapping[str, int]
    files: tuple[Path, ...]
    people: int
    people_alive: int
    purchases: int
    revenue: float
    consent_violations: int
    unknown_members: int
    seconds: float
    timings: Mapping[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 3)
        self.last = now


def _rng(settings: Settings, cycle: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([settings.seed, cycle, stream])


def _const(value: str, n: int) -> pa.Array:
    return ids.vocab((value,), np.zeros(n, dtype=np.int64))


def _member_or_null(people: People, rows: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(~people["member"][rows]), pa.scalar(None, pa.string()), member_ids(rows))


def customer_rows(people: People, rows: np.ndarray, updated_at: np.ndarray) -> Frame:
    pid = people["person_id"][rows]
    no_birth_year = ids.hash64(pid, 5) % np.uint64(100) < np.uint64(12)  # a stable gap in the CRM
    return {
        "member_id": Col("str", member_ids(pid)),
        "email": Col("str", email_values(people, rows)),
        "phone": Col("str", phone_values(pid), ~people["has_phone"][rows]),
        "full_name": Col("str", ids.join(ids.vocab(SURNAMES, people["surname"][rows]), " ",
                                         ids.vocab(GIVEN_NAMES, people["given"][rows]))),
        "birth_year": Col("int", people["birth_year"][rows], no_birth_year),
        "gender": Col("str", ids.vocab(GENDERS, people["gender"][rows])),
        "city": Col("str", ids.vocab(CITIES, people["city"][rows])),
        "loyalty_tier": Col("str", ids.vocab(TIERS, people["tier"][rows])),
        "signup_at": Col("ts", people["signup"][rows]),
        "updated_at": Col("ts", np.asarray(updated_at, dtype=np.int64)),
    }


def consent_rows(people: People, rows: np.ndarray, channel: np.ndarray, opt_in: np.ndarray,
                 changed_at: np.ndarray, source: str) -> Frame:
    return {
        "member_id": Col("str", member_ids(people["person_id"][rows])),
        "channel": Col("str", ids.vocab(CHANNELS, channel)),
        "status": Col("str", ids.vocab(("opt_out", "opt_in"), opt_in.astype(np.int64))),
        "changed_at": Col("ts", changed_at),
        "source": Col("str", _const(source, len(rows))),
    }


def signup_consents(people: People, rows: np.ndarray) -> Frame:
    rows = rows[people["member"][rows]]
    member = np.repeat(rows, len(CHANNELS))
    channel = np.tile(np.arange(len(CHANNELS)), len(rows))
    opt_in = np.stack([people[f"consent_{c}"][rows] for c in CHANNELS], axis=1).ravel()
    return consent_rows(people, member, channel, opt_in, people["signup"][member], "signup")


def product_rows(products: dict[str, np.ndarray], updated_at: int) -> Frame:
    n = len(products["price"])
    number = products["product_number"]
    adjectives = ("Classic", "Everyday", "Premium", "Eco", "Mini", "Urban", "Soft", "Smart")
    return {
        "product_id": Col("str", ids.padded(number + 10_001, 5, "P")),
        "product_name": Col("str", ids.join(ids.vocab(adjectives, number % len(adjectives)), " ",
                                            ids.vocab(CATEGORIES, products["category"]), " ",
                                            ids.padded(number, 3))),
        "category": Col("str", ids.vocab(CATEGORIES, products["category"])),
        "price": Col("cents", products["price"]),
        "unit_cost": Col("cents", products["unit_cost"]),
        "updated_at": Col("ts", np.full(n, updated_at, dtype=np.int64)),
    }


def simulate_period(settings: Settings, cycle: int, plan: pd.DataFrame | None = None,
                    triggered: pd.DataFrame | None = None) -> PeriodSummary:
    """Simulate cycle ``cycle`` and land its batch; see the module docstring and docs/simulator.md.

    ``triggered`` (opt-in; None leaves the period as it was): trigger journeys' plan rows, a second message beside
    the weekly plan's, sent at their own ``send_at`` (clamped into the period); see :func:`_trigger_sends`.
    """
    if cycle < 0:
        raise ValueError(f"cycle must be >= 0, got {cycle}")
    timer = _Timer()
    seed = settings.seed
    store = WorldStore(settings)
    start_day = settings.cycle_start(cycle)
    cid = cycle_id(start_day)
    days = period_days(start_day, settings.cycle_days)
    p_start, p_end = int(days[0]) * DAY_S, (int(days[-1]) + 1) * DAY_S
    weeks = settings.cycle_days / 7
    products = draw_products(seed)
    keys = product_choice_keys(products)
    frames: dict[str, list[Frame]] = defaultdict(list)
    truth_orders: list[pa.Table] = []
    media_truth: list[pa.Table] = []

    if cycle == 0:
        people, h_person, h_ts, h_online = create_people(settings)
        store.write_manifest()
        timer.lap("world")
        members = np.flatnonzero(people["member"])
        frames["customers"].append(customer_rows(people, members, people["signup"][members]))
        frames["consents"].append(signup_consents(people, np.arange(len(people["person_id"]))))
        frames["products"].append(product_rows(products, p_start - 30 * DAY_S))
        rng = _rng(settings, 0, HISTORY)
        n_h = len(h_person)
        none = np.full(n_h, "none")
        nulls = pa.nulls(n_h, pa.string())
        tx = make_transactions(rng, seed, people, products, keys,
                               Purchases(h_person, h_ts, h_online, none, np.zeros(n_h), nulls, nulls), "H")
        for source, frame in tx.frames.items():
            frames[source].append(frame)
        truth_orders.append(tx.truth)
        o = tx.online
        recent = np.flatnonzero(o.ts >= p_start - HISTORY_EVENT_DAYS * DAY_S)
        sessions = make_sessions(rng, people, o.person[recent], o.ts[recent], o.app[recent], o.ident_k[recent],
                                 o.logged_in[recent], o.n_lines[recent], o.n_lines[recent],
                                 order_id=o.order_id.take(pa.array(recent)))
        frames["events"].append(session_events(rng, seed, 0, people, products, keys, sessions))
        for source, parts in newsletter_history(settings, people, NEWSLETTERS).items():
            frames[source] += parts
        if settings.media_effect and settings.history_weeks:
            h_days = period_days(settings.start_date, settings.history_weeks * 7) - settings.history_weeks * 7
            media_truth.append(_media_effect(settings, people, products, keys, _MediaDays(0, h_days, "MH", None),
                                             frames, truth_orders))
        timer.lap("history")
    else:
        store.check_manifest()
        people = store.load_people(cycle - 1)
    first_new = len(people["person_id"]) if cycle > 0 else 0

    # Arrivals: a small weekly acquisition of new people (and CRM members).
    rng = _rng(settings, cycle, ARRIVALS)
    new = arrivals(rng, settings, len(people["person_id"]), p_start, p_end)
    people = concat_people(people, new) if len(new["person_id"]) else people
    n = len(people["person_id"])
    if cycle > 0:
        new_rows = np.arange(first_new, n)
        new_members = new_rows[people["member"][new_rows]]
        frames["customers"].append(customer_rows(people, new_members, people["signup"][new_members]))
        frames["consents"].append(signup_consents(people, new_rows))
    store.identities_path(cycle).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(identities(seed, take_people(people, np.arange(first_new, n))), store.identities_path(cycle))

    # CRM profile changes.
    rng = _rng(settings, cycle, CRM)
    changed = np.flatnonzero(people["member"] & (rng.random(n) < TIER_CHANGE * weeks))
    people["tier"][changed] = np.clip(people["tier"][changed] + rng.choice([-1, 1], len(changed)), 0, len(TIERS) - 1)
    frames["customers"].append(customer_rows(people, changed, rng.integers(p_start, p_end, len(changed))))
    timer.lap("arrivals_consents")

    # The campaign of the period.
    if plan is None:
        plan = bau_plan(_rng(settings, cycle, PLAN), settings, people, cid)
    faults = fault_injection.active_faults(settings, cycle)
    plan = fault_injection.apply_to_plan(settings, cycle, plan, faults)
    a = assign(plan, people)
    t = assign(triggered.assign(**{TRIGGER_SEND_AT: pd.to_datetime(triggered["send_at"])}), people) \
        if triggered is not None and len(triggered) else None

    # Truth of the period's response, from the state at its start.
    world = WorldContext(settings.world, seed, p_start)
    exposure = exposure_weeks(days)
    base = baseline_probability(people, exposure)
    effects: dict[str, pa.Array] = {
        "person_id": pa.array(people["person_id"]),
        "member_id": _member_or_null(people, np.arange(n)),
        "alive": pa.array(people["alive"]),
        "response_class": ids.vocab(RESPONSE_CLASSES, people["response_class"]),
        "baseline_probability": pa.array(base.astype(np.float32)),
    }
    for c in CHANNELS:
        effects[f"consent_{c}"] = pa.array(people[f"consent_{c}"].copy())
    if settings.send_hour_preference:
        # uplift__<action> below is at the preferred hour; a send at another hour gets hour_factor of it.
        effects["preferred_hour"] = pa.array(preferred_hour(people, seed).astype(np.float32))
    for action in ACTIONS:
        lift = uplift(people, base, action.offer.offer_type, action.offer.offer_value, action.channel, world=world)
        effects[f"uplift__{action.name}"] = pa.array(lift.astype(np.float32))
        effects[f"incremental_profit__{action.name}"] = pa.array(expected_incremental_profit(
            people, base, lift, action.offer.offer_type, action.offer.offer_value, action.cost_per_contact
        ).astype(np.float32))
    retained = retention_columns(people, world, settings.cycle_days / 7.0, ACTIONS)
    effects |= {name: pa.array(values.astype(np.float32)) for name, values in retained.items()}
    timer.lap("effects")

    # Potential outcomes from one uniform per person (common random numbers).
    u = _rng(settings, cycle, OUTCOME).random(n)
    rng = _rng(settings, cycle, SEND)
    sent_at = send_times(rng, len(a.person), p_start, settings.cycle_days)
    hours = None
    if settings.send_hour_preference:
        sent_at = planned_send_times(a, sent_at, p_start, settings.cycle_days)
        hours = HourResponse.of(people, a.person, sent_at, seed, settings.timezone)
    p_treated = base.copy()
    p_treated[a.person] = base[a.person] + uplift(
        take_people(people, a.person), base[a.person], a.offer_type, a.offer_value, a.channel, world=world
    ) * (1.0 if hours is None else hours.factor)
    if_untreated = u < base
    if_treated = u < p_treated
    delivered = np.zeros(n, dtype=bool)
    delivered[a.person[a.delivered]] = True
    purchased = np.where(delivered, if_treated, if_untreated)
    if t is not None:
        trig = _trigger_sends(people, t, base, np.where(delivered, p_treated, base), world, p_start, p_end)
        purchased = u < trig.p_final

    buyers = np.flatnonzero(purchased)
    n_orders = 1 + rng.poisson(EXTRA_ORDER_RATE, len(buyers))
    order_person = np.repeat(buyers, n_orders)
    online = rng.random(len(order_person)) < people["online_share"][order_person]
    ts = np.where(online, draw_times(rng, days, len(online), HOUR_ONLINE), draw_times(rng, days, len(online), HOUR_STORE))
    # A recipient's first order of the period comes after the message (coupons and persuasion need it).
    person_sent = np.full(n, -1, dtype=np.int64)
    person_sent[a.person[a.delivered]] = sent_at[a.delivered]
    if t is not None:  # the first of the two messages a member got
        first_t = trig.person_sent >= 0
        person_sent = np.where(first_t & ((person_sent < 0) | (trig.person_sent < person_sent)), trig.person_sent, person_sent)
    order = np.lexsort((ts, order_person))
    order_person, ts, online = order_person[order], ts[order], online[order]
    first = np.r_[True, order_person[1:] != order_person[:-1]]
    sent_o = person_sent[order_person]
    late = first & (sent_o >= 0) & (ts < sent_o)
    ts = np.where(late, np.minimum(sent_o + rng.exponential(1.5 * DAY_S, len(ts)).astype(np.int64), p_end - 60), ts)
    slot = np.full(n, -1, dtype=np.int64)
    slot[a.person] = np.arange(len(a.person))
    o_slot = slot[order_person]
    coupon = first & (o_slot >= 0) & delivered[order_person]
    o_slot_safe = np.maximum(o_slot, 0)
    codes = coupon_codes(seed, cycle, a)
    offer_type = np.where(coupon, a.offer_type[o_slot_safe] if len(a.person) else "none", "none")
    offer_value = np.where(coupon, a.offer_value[o_slot_safe] if len(a.person) else 0.0, 0.0)
    coupon_code = codes.take(pa.array(o_slot_safe)) if len(a.person) else pa.nulls(len(ts), pa.string())
    coupon_code = pc.if_else(pa.array(coupon), coupon_code, pa.scalar(None, pa.string()))
    campaign = pa.array(np.where(coupon, a.campaign_id[o_slot_safe] if len(a.person) else None, None), type=pa.string())
    chrono = np.argsort(ts, kind="stable")
    bought = Purchases(order_person[chrono], ts[chrono], online[chrono], offer_type[chrono], offer_value[chrono],
                       coupon_code.take(pa.array(chrono)), campaign.take(pa.array(chrono)))
    tx = make_transactions(_rng(settings, cycle, ORDERS), seed, people, products, keys, bought, cid.replace("-", ""))
    for source, frame in tx.frames.items():
        frames[source].append(frame)
    truth_orders.append(tx.truth)
    timer.lap("orders")

    # Campaign delivery and engagement; unsubscribes withdraw consent.
    e = engage(_rng(settings, cycle, ENGAGE), people, a, if_treated[a.person], sent_at, p_end, hours)
    for source, frame in e.frames.items():
        frames[source].append(frame)
    for source, frame in campaign_frames(a, e, cid, p_start, p_end).items():
        frames[source].append(frame)
    for c in CHANNELS:
        people[f"consent_{c}"][a.person[e.unsubscribed & (a.channel == c)]] = False
    if t is not None:
        e_t = engage(_rng(settings, cycle, TRIGGER_ENGAGE), people, t, purchased[t.person], trig.sent_at, p_end)
        for source, frame in (e_t.frames | campaign_frames(t, e_t, cid, p_start, p_end)).items():
            frames[source].append(frame)
        for c in CHANNELS:
            people[f"consent_{c}"][t.person[e_t.unsubscribed & (t.channel == c)]] = False
    if settings.world == "d":  # the other worlds carry no contact state, so their saved people stay as they were
        received = a.person[a.delivered & ~e.bounced]
        decay_contact_load(people, np.bincount(received, minlength=n), settings.cycle_days)

    # Consent drift (preference centre) during the period: it binds from the next campaign on.
    rng = _rng(settings, cycle, CONSENT)
    flips = (rng.random((n, len(CHANNELS))) < CONSENT_DRIFT * weeks) & people["member"][:, None]
    rows, chan = np.nonzero(flips)
    for c, name in enumerate(CHANNELS):
        sel = rows[chan == c]
        people[f"consent_{name}"][sel] = ~people[f"consent_{name}"][sel]
    opt_in = np.stack([people[f"consent_{c}"][rows] for c in CHANNELS], axis=1)[np.arange(len(rows)), chan]
    frames["consents"].append(consent_rows(people, rows, chan, opt_in, rng.integers(p_start, p_end, len(rows)),
                                           "preference_center"))

    # Clickstream: browsing, checkouts of online orders, campaign click-throughs.
    rng = _rng(settings, cycle, EVENTS)
    paid = _rng(settings, cycle, PAID)  # its own stream: tagging arrivals changes no other draw
    count = browse_counts(rng, people, exposure)
    who = np.repeat(np.arange(n), count)
    salt = (cycle + 1) * 8
    frames["events"].append(session_events(rng, seed, salt + 1, people, products, keys, _paid_arrivals(paid, make_sessions(
        rng, people, who, draw_times(rng, days, len(who), HOUR_ONLINE)))))
    o = tx.online
    frames["events"].append(session_events(rng, seed, salt + 2, people, products, keys, _paid_arrivals(paid, make_sessions(
        rng, people, o.person, o.ts, o.app, o.ident_k, o.logged_in, o.n_lines, o.n_lines, order_id=o.order_id))))
    click_app = np.isin(e.click_channel, ("push", "kakao"))
    frames["events"].append(session_events(rng, seed, salt + 3, people, products, keys, make_sessions(
        rng, people, e.click_person, e.click_ts, app=click_app,
        utm_source=pa.array(e.click_channel, type=pa.string()),
        utm_campaign=pa.array(e.click_campaign, type=pa.string()))))
    if t is not None:
        frames["events"].append(session_events(rng, seed, salt + 4, people, products, keys, make_sessions(
            rng, people, e_t.click_person, e_t.click_ts, app=np.isin(e_t.click_channel, ("push", "kakao")),
            utm_source=pa.array(e_t.click_channel, type=pa.string()),
            utm_campaign=pa.array(e_t.click_campaign, type=pa.string()))))
    timer.lap("events")

    frames["reviews"].append(_reviews(_rng(settings, cycle, REVIEWS), people, products, tx.first_product,
                                      tx.order_person, tx.order_ts, p_end, cid))
    frames["ad_spend"].append(_ad_spend(_rng(settings, cycle, ADS), settings, days, a, e))
    if settings.media_effect:
        window = _MediaDays(cycle, days, f"M{cid.replace('-', '')}", salt + 4)
        media_truth.append(_media_effect(settings, people, products, keys, window, frames, truth_orders))

    # BG/NBD dropout after each purchase, and purchase counters.
    rng = _rng(settings, cycle, DROPOUT)
    per_person = np.bincount(order_person, minlength=n)
    survive = (1.0 - people["p_drop"].astype(np.float64)) ** per_person
    people["alive"] &= rng.random(n) < survive
    if retained:
        _defect(settings, cycle, people, a, retained["defection_probability"])
    people["n_purchases"] += per_person.astype(np.int32)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, order_person, ts)
    people["last_purchase"] = np.maximum(people["last_purchase"], last)

    outcomes = _outcomes(people, a, purchased, if_untreated, if_treated, tx.revenue_cents, tx.margin_cents)
    timer.lap("behaviour")

    # Landing batch.
    contract = load_contract()
    written: dict[str, int] = {}
    files: list[Path] = []
    late_in = pq.read_table(store.late_path(cycle - 1)) if cycle > 0 and store.late_path(cycle - 1).exists() else None
    late_out = None
    for i, source in enumerate(contract.sources):
        frame = concat_frames(frames.get(source, []))
        is_events = source == "events"
        if not frame and not (is_events and late_in is not None):
            continue
        if fault_injection.drops(source, faults):
            continue
        frame = fault_injection.apply_to_frame(settings, cycle, source, frame, faults)
        path = settings.landing_dir / source / f"{cid}.{settings.file_format}"
        w = write_source(settings, source, frame, path, _rng(settings, cycle, DIRT_STREAM + i),
                         late_in=late_in if is_events else None, hold_late=is_events)
        written[source] = w.rows
        files.append(w.path)
        files += fault_injection.after_write(settings, cycle, source, w.path, faults)
        if is_events:
            late_out = w.late
    if late_out is not None and late_out.num_rows:
        pq.write_table(late_out, store.late_path(cycle))
    else:
        store.late_path(cycle).unlink(missing_ok=True)
    timer.lap("landing")

    # Truth and state.
    truth = settings.truth_dir
    truths = [("effects", pa.table(effects)), ("outcomes", outcomes), ("orders", pa.concat_tables(truth_orders))]
    if t is not None:
        truths.append(("trigger_outcomes", _trigger_outcomes(people, t, trig, purchased)))
    for sub, table in truths:
        (truth / sub).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, truth / sub / f"{cid}.parquet")
    if media_truth:
        (truth / "media").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(media_truth), truth / "media" / f"{cid}.parquet")
    parts = sorted(store.identities_path(0).parent.glob("*.parquet"))
    pq.write_table(pa.concat_tables([pq.read_table(p) for p in parts]), truth / "identities.parquet")
    store.save_people(cycle, people)
    fault_injection.record(settings, cid, faults)
    timer.lap("truth_state")

    period_orders = tx.truth
    return PeriodSummary(
        cycle=cycle,
        cycle_id=cid,
        rows=written,
        files=tuple(files),
        people=n,
        people_alive=int(people["alive"].sum()),
        purchases=period_orders.num_rows,
        revenue=float(np.sum(period_orders.column("total_cents").to_numpy())) / 100.0,
        consent_violations=a.consent_violations,
        unknown_members=a.unknown_members,
        seconds=round(time.perf_counter() - timer.start, 3),
        timings=timer.laps,
    )


def _defect(settings: Settings, cycle: int, people: People, a: Assignment, hazard: np.ndarray) -> None:
    """World r: alive customers defect with the period's ``hazard``, lowered for those an action reached."""
    hazard = hazard.copy()
    sent = a.person[a.delivered]
    if len(sent):
        share = discount_share(take_people(people, sent), a.offer_type[a.delivered], a.offer_value[a.delivered])
        hazard[sent] *= 1.0 - retention(take_people(people, sent), share, a.channel[a.delivered])
    people["alive"] &= _rng(settings, cycle, DEFECTION).random(len(hazard)) >= hazard


@dataclass(frozen=True)
class TriggerSends:
    """The trigger journeys' messages of a period (opt-in), per row of their assignment and per person."""

    sent_at: np.ndarray  # per row: its own send time, clamped into the period
    effect: np.ndarray  # per row: the true uplift of its action, 0 where it could not be delivered (consent)
    p_final: np.ndarray  # per person: purchase probability with every message delivered to them
    person_sent: np.ndarray  # per person: the trigger send time, -1 without one


def _trigger_sends(people: People, t: Assignment, base: np.ndarray, p_weekly: np.ndarray, world: WorldContext,
                   p_start: int, p_end: int) -> TriggerSends:
    """A trigger message is a second message beside the weekly campaign's: its true uplift (the world's response
    to its offer on its channel, as for any delivered action) adds to the member's purchase probability."""
    consented = np.zeros(len(t.person), dtype=bool)
    for c in CHANNELS:
        consented |= (t.channel == c) & people[f"consent_{c}"][t.person]
    effect = uplift(take_people(people, t.person), base[t.person], t.offer_type, t.offer_value, t.channel,
                    world=world) * consented
    p_final = p_weekly.copy()
    sent = t.person[t.delivered]
    p_final[sent] = np.clip(p_final[sent] + effect[t.delivered], 0.0, 1.0)
    assert t.send_at is not None  # assign() reads TRIGGER_SEND_AT, which simulate_period sets
    sent_at = np.clip(t.send_at, p_start, p_end - 3_600)
    person_sent = np.full(len(base), -1, dtype=np.int64)
    person_sent[sent] = sent_at[t.delivered]
    return TriggerSends(sent_at, effect, p_final, person_sent)


def _trigger_outcomes(people: People, t: Assignment, trig: TriggerSends, purchased: np.ndarray) -> pa.Table:
    """One row per trigger assignment: its campaign, arm, the true effect of its action and the outcome."""
    return pa.table({
        "person_id": pa.array(t.person), "member_id": member_ids(t.person),
        "campaign_id": pa.array(t.campaign_id, type=pa.string()), "action": pa.array(t.action, type=pa.string()),
        "arm": pa.array(np.where(t.treatment, "treatment", "control")), "uplift": pa.array(trig.effect),
        "purchased": pa.array(purchased[t.person]),
    })


def _outcomes(people: People, a: Assignment, purchased: np.ndarray, if_untreated: np.ndarray,
              if_treated: np.ndarray, revenue: np.ndarray, margin: np.ndarray) -> pa.Table:
    n = len(purchased)
    campaign = np.full(n, None, dtype=object)
    action = np.full(n, None, dtype=object)
    arm = np.full(n, None, dtype=object)
    if len(a.person):
        campaign[a.person] = a.campaign_id
        action[a.person] = a.action
        arm[a.person] = np.where(a.treatment, "treatment", "control")
    return pa.table({
        "person_id": pa.array(people["person_id"]),
        "member_id": _member_or_null(people, np.arange(n)),
        "campaign_id": pa.array(campaign, type=pa.string()),
        "action": pa.array(action, type=pa.string()),
        "arm": pa.array(arm, type=pa.string()),
        "purchased": pa.array(purchased),
        "purchased_if_untreated": pa.array(if_untreated),
        "purchased_if_treated": pa.array(if_treated),
        "revenue": pa.array(revenue / 100.0),
        "margin": pa.array(margin / 100.0),
    })


def _reviews(rng: np.random.Generator, people: People, products: dict[str, np.ndarray], first_product: np.ndarray,
             order_person: np.ndarray, order_ts: np.ndarray, p_end: int, cid: str) -> Frame:
    rows = np.flatnonzero(rng.random(len(order_person)) < REVIEW_SHARE)
    product = first_product[rows]
    rating = np.clip(np.round(1 + 4 * products["quality"][product] + rng.normal(0, 0.8, len(rows))), 1, 5).astype(np.int64)
    texts = ("Disappointed.", "Not great.", "It is okay.", "Good value.", "Love it!")
    when = np.minimum(order_ts[rows] + rng.exponential(3 * DAY_S, len(rows)).astype(np.int64), p_end - 1)
    person = order_person[rows]
    return {
        "review_id": Col("str", ids.padded(np.arange(len(rows)), 6, f"RV{cid.replace('-', '')}-")),
        "member_id": Col("str", member_ids(person), ~people["member"][person]),
        "product_id": Col("str", ids.padded(products["product_number"][product] + 10_001, 5, "P")),
        "rating": Col("int", rating),
        "review_text": Col("str", ids.vocab(texts, rating - 1)),
        "reviewed_at": Col("ts", when),
    }


def _paid_arrivals(rng: np.random.Generator, sessions: Sessions) -> Sessions:
    """Tag the sessions that a paid-media click started (:data:`PAID_ARRIVALS`) with its UTM fields."""
    n = len(sessions.person)
    shares = np.array([share for share, _ in PAID_ARRIVALS.values()])
    medium = np.searchsorted(np.cumsum(shares), rng.random(n), side="right")  # len(shares): organic
    organic = medium == len(shares)
    source = ids.vocab((*PAID_ARRIVALS, ""), medium)
    mediums = ids.vocab((*(m for _, m in PAID_ARRIVALS.values()), ""), medium)
    campaign = ids.join(source, "_always_on")
    null = pa.scalar(None, pa.string())
    mask = pa.array(organic)
    return dataclasses.replace(sessions, utm_source=pc.if_else(mask, null, source),
                               utm_medium=pc.if_else(mask, null, mediums), utm_campaign=pc.if_else(mask, null, campaign))


def _ad_spend(rng: np.random.Generator, settings: Settings, days: np.ndarray, a: Assignment, e: Engagement) -> Frame:
    scale = settings.customers / 20_000
    day = np.repeat(days, len(PAID_MEDIA))
    media = np.tile(np.arange(len(PAID_MEDIA)), len(days))
    base, cpm, ctr = (np.array([v[i] for v in PAID_MEDIA.values()]) for i in range(3))
    spend = np.round(base[media] * scale * intensity(day) * rng.lognormal(0, 0.15, len(day)) * 100).astype(np.int64)
    if settings.media_effect:  # weekly flights, apart from the season: see sim/media.py
        flights, _ = expected_revenue(settings.seed, days, base * scale, tuple(MEDIA_RESPONSE.values()))
        spend = np.round(flights.ravel() * 100).astype(np.int64)
    impressions = np.round(spend / 100 / cpm[media] * 1_000).astype(np.int64)
    clicks = rng.binomial(impressions, ctr[media])
    frame: Frame = {
        "spend_date": Col("date", day),
        "channel": Col("str", ids.vocab(tuple(PAID_MEDIA), media)),
        "campaign_id": Col("str", pa.nulls(len(day), pa.string()), np.ones(len(day), dtype=bool)),
        "spend": Col("cents", spend),
        "impressions": Col("int", impressions),
        "clicks": Col("int", clicks),
    }
    if not len(a.person):
        return frame
    df = pd.DataFrame({"campaign_id": a.campaign_id, "channel": a.channel, "cost": a.cost * a.delivered,
                       "delivered": a.delivered & ~e.bounced})
    clicks_per = pd.Series(e.click_campaign, dtype=object).value_counts()
    g = df.groupby("campaign_id", sort=True).agg(channel=("channel", "first"), cost=("cost", "sum"),
                                                 delivered=("delivered", "sum")).reset_index()
    g = g[g["delivered"] > 0]
    send_day = int(days[min(1, len(days) - 1)])
    campaign_rows: Frame = {
        "spend_date": Col("date", np.full(len(g), send_day, dtype=np.int64)),
        "channel": Col("str", pa.array(g["channel"], type=pa.string())),
        "campaign_id": Col("str", pa.array(g["campaign_id"], type=pa.string())),
        "spend": Col("cents", np.round(g["cost"].to_numpy() * 100).astype(np.int64)),
        "impressions": Col("int", g["delivered"].to_numpy()),
        "clicks": Col("int", g["campaign_id"].map(clicks_per).fillna(0).to_numpy(np.int64)),
    }
    return concat_frames([frame, campaign_rows])


def _media_spend_frame(settings: Settings, days: np.ndarray, spend: np.ndarray) -> Frame:
    """Paid media rows of days before cycle 0 (the history of spend), impressions and clicks at the usual rates."""
    rng = _rng(settings, 0, MEDIA + 1)
    _, cpm, ctr = (np.array([v[i] for v in PAID_MEDIA.values()]) for i in range(3))
    media = np.tile(np.arange(len(PAID_MEDIA)), len(days))
    cents = np.round(spend.ravel() * 100).astype(np.int64)
    impressions = np.round(cents / 100 / cpm[media] * 1_000).astype(np.int64)
    return {
        "spend_date": Col("date", np.repeat(days, len(PAID_MEDIA))),
        "channel": Col("str", ids.vocab(tuple(PAID_MEDIA), media)),
        "campaign_id": Col("str", pa.nulls(len(media), pa.string()), np.ones(len(media), dtype=bool)),
        "spend": Col("cents", cents),
        "impressions": Col("int", impressions),
        "clicks": Col("int", rng.binomial(impressions, ctr[media])),
    }


@dataclass(frozen=True)
class _MediaDays:
    """The days paid media works on: history before cycle 0 (``salt`` None) or one cycle's days."""

    cycle: int
    days: np.ndarray
    prefix: str  # of the media orders' ids, one per window so they never collide
    salt: int | None  # of the sessions' random streams; None: history, whose spend rows land here, no sessions


def _media_effect(settings: Settings, people: People, products: dict[str, np.ndarray], keys: np.ndarray,
                  window: _MediaDays, frames: dict[str, list[Frame]], truth_orders: list[pa.Table]) -> pa.Table:
    """The orders paid media caused on the window's days (sim/media.py), appended to ``frames``; their truth
    per day and channel."""
    cycle, days, prefix, salt = window.cycle, window.days, window.prefix, window.salt
    response = tuple(MEDIA_RESPONSE.values())
    reference = np.array([v[0] for v in PAID_MEDIA.values()]) * settings.customers / 20_000
    spend, expected = expected_revenue(settings.seed, days, reference, response)
    if salt is None:
        frames["ad_spend"].append(_media_spend_frame(settings, days, spend))
    rng = _rng(settings, cycle, MEDIA)
    alive = people["alive"]
    mean_value = float(np.mean(people["spend"][alive])) * ORDER_VALUE_FACTOR if alive.any() else 1.0
    realised = np.zeros_like(expected)
    counts = np.zeros_like(expected, dtype=np.int64)
    for c, (person, ts) in enumerate(media_orders(rng, alive, days, expected, mean_value, HOUR_ONLINE)):
        n = len(person)
        none = np.full(n, "none")
        nulls = pa.nulls(n, pa.string())
        tx = make_transactions(rng, settings.seed, people, products, keys,
                               Purchases(person, ts, np.ones(n, dtype=bool), none, np.zeros(n), nulls, nulls),
                               f"{prefix}{c}")
        for source, frame in tx.frames.items():
            frames[source].append(frame)
        truth_orders.append(tx.truth)
        day_index = ts // DAY_S - days[0]
        total = tx.truth.column("total_cents").to_numpy() / 100.0
        realised[:, c] = np.bincount(day_index, weights=total, minlength=len(days))
        counts[:, c] = np.bincount(day_index, minlength=len(days))
        if salt is not None and n:
            o = tx.online
            channel = list(PAID_MEDIA)[c]
            sessions = make_sessions(rng, people, o.person, o.ts, o.app, o.ident_k, o.logged_in, o.n_lines, o.n_lines,
                                     order_id=o.order_id)
            medium = PAID_ARRIVALS[channel][1]
            sessions = dataclasses.replace(sessions, utm_source=_const(channel, len(sessions.person)),
                                           utm_medium=_const(medium, len(sessions.person)),
                                           utm_campaign=_const(f"{channel}_always_on", len(sessions.person)))
            frames["events"].append(session_events(rng, settings.seed, salt + c, people, products, keys, sessions))
    k = len(response)
    return pa.table({
        "spend_date": pa.array(np.repeat(days, k).astype("datetime64[D]")),
        "channel": pa.array(np.tile(list(PAID_MEDIA), len(days))),
        "spend": pa.array(spend.ravel()),
        "expected_revenue": pa.array(expected.ravel()),
        "realised_revenue": pa.array(realised.ravel()),
        "orders": pa.array(counts.ravel()),
        "alpha": pa.array(np.tile([r.alpha for r in response], len(days))),
        "lam": pa.array(np.tile([r.lam for r in response], len(days))),
        "beta": pa.array(np.tile([r.beta for r in response], len(days))),
        "reference_spend": pa.array(np.tile(reference, len(days))),
    })
