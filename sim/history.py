"""Creating the world: people with their traits and a BG/NBD purchase history before ``start_date``.

The history is drawn per person at once, not week by week: each person's lifetime number of purchases
before dropping out is Geometric(p); purchases before the history window only matter for who is still
alive, purchases inside it are a thinned Poisson process (season-shaped) cut at the dropout.
"""

from __future__ import annotations

import numpy as np

from campaign_loop.config import Settings
from sim.calendar import (
    DAY_S,
    HOUR_ONLINE,
    HOUR_STORE,
    MAX_INTENSITY,
    epoch_day,
    intensity,
    local_time_of_day,
)
from sim.world import PARAMS, People, draw_people

WEEK_S = 7 * DAY_S
PRE_WINDOW_SHARE = 0.55  # people already customers before the history window starts
MAX_PRE_WEEKS = 156  # how long before the window they may have started


def create_people(settings: Settings) -> tuple[People, np.ndarray, np.ndarray, np.ndarray]:
    """People after the history, and the history's purchases (person, timestamp, online)."""
    rng = np.random.default_rng([settings.seed, 0, 2])
    n = settings.customers
    start = epoch_day(settings.start_date) * DAY_S
    window = settings.history_weeks * WEEK_S
    lo = start - window
    before = rng.random(n) < PRE_WINDOW_SHARE
    born = np.where(
        before,
        lo - (rng.random(n) * MAX_PRE_WEEKS * WEEK_S).astype(np.int64),
        lo + (rng.random(n) * max(window, 1)).astype(np.int64),
    )
    if window == 0:
        born = np.where(before, born, start - 1 - rng.integers(0, DAY_S, n))
    people = draw_people(rng, n, 0, born)
    lam = people["lam"].astype(np.float64)
    lifetime = rng.geometric(people["p_drop"].astype(np.float64))  # purchases until dropout
    pre_weeks = np.maximum(lo - born, 0) / WEEK_S
    pre = rng.poisson(lam * pre_weeks)
    remaining = lifetime - np.minimum(pre, lifetime)
    # Candidates of a Poisson process at the peak seasonal rate, thinned to the season's shape.
    in_weeks = (start - np.maximum(born, lo)) / WEEK_S
    m = rng.poisson(lam * in_weeks * MAX_INTENSITY)
    cand_person = np.repeat(np.arange(n), m)
    first = np.maximum(born, lo)[cand_person]
    t = first + (rng.random(len(cand_person)) * (start - first)).astype(np.int64)
    keep = rng.random(len(t)) < intensity(t // DAY_S) / MAX_INTENSITY
    cand_person, t = cand_person[keep], t[keep]
    order = np.lexsort((t, cand_person))
    cand_person, t = cand_person[order], t[order]
    count = np.bincount(cand_person, minlength=n)
    rank = np.arange(len(t)) - np.repeat(np.cumsum(count) - count, count)
    bought = rank < remaining[cand_person]
    person, ts = cand_person[bought], t[bought]
    kept = np.bincount(person, minlength=n)
    people["alive"] = (pre < lifetime) & (kept < remaining)
    people["n_purchases"] = (np.minimum(pre, lifetime) + kept).astype(np.int32)
    last = np.full(n, -1, dtype=np.int64)
    last[person] = ts  # sorted by time within person, so the last write is the latest purchase
    had_pre = (last < 0) & (pre > 0)
    last[had_pre] = lo - (rng.random(had_pre.sum()) * (lo - born[had_pre])).astype(np.int64)
    people["last_purchase"] = last
    value = people["n_purchases"] * people["spend"]
    member = people["member"]
    cuts = np.quantile(value[member], [0.65, 0.90, 0.98]) if member.any() else np.zeros(3)
    people["tier"] = np.searchsorted(cuts, value).astype(np.int8)
    # Times of day by where the purchase happens.
    online = rng.random(len(person)) < people["online_share"][person]
    day = ts // DAY_S * DAY_S
    ts = day + np.where(online, local_time_of_day(rng, len(ts), HOUR_ONLINE), local_time_of_day(rng, len(ts), HOUR_STORE))
    ts = np.minimum(ts, start - 1)
    order = np.argsort(ts, kind="stable")
    return people, person[order], ts[order], online[order]


def arrivals(rng: np.random.Generator, settings: Settings, first_id: int, period_start: int, period_end: int) -> People:
    n = int(rng.poisson(settings.customers * PARAMS.weekly_arrival_share * settings.cycle_days / 7))
    born = rng.integers(period_start, period_end, n)
    return draw_people(rng, n, first_id, born)
