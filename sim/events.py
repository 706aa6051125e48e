"""Web and app clickstream: sessions turned into page_view -> product_view -> cart -> checkout -> purchase."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sim import ids
from sim.landing import Col, Frame
from sim.world import (
    CATEGORIES,
    LINKED_IDENTS,
    People,
    category_affinity,
    choose_products,
    cookie_values,
    device_values,
    member_ids,
)

EVENT_TYPES: tuple[str, ...] = ("page_view", "search", "product_view", "add_to_cart", "checkout", "purchase")
PAGE_URLS: tuple[str, ...] = ("/", "/search", "", "/cart", "/checkout", "/order/complete")
SEARCH_WORDS: tuple[str, ...] = ("sale", "new", "best", "gift", "set", "mini", "premium", "kids", "winter", "summer")
BROWSE_BASE_RATE = 0.15  # sessions per week of an online-only person beyond what purchase intent drives
BROWSE_PER_RATE = 3.0
LOGIN_SHARE_WEB = 0.45  # sessions of members on a browser / app that has carried their login before
LOGIN_SHARE_APP = 0.85
# A member on a browser or app install that never carried their login logs in (member prices, order history,
# saved cart): anonymous browsing on a new cookie or device is linked by a login in its first sessions.
# The rest are visits that end before a login (cookie cleared, private window); the next visit tries again.
NEW_IDENT_LOGIN_WEB = 0.90
NEW_IDENT_LOGIN_APP = 0.97


@dataclass(frozen=True)
class Sessions:
    person: np.ndarray
    anchor: np.ndarray  # start time, or the purchase time for checkout sessions (anchored at the end)
    app: np.ndarray
    ident_k: np.ndarray
    logged_in: np.ndarray
    n_views: np.ndarray
    n_carts: np.ndarray
    search: np.ndarray
    order_id: pa.Array | None = None  # checkout sessions
    utm_source: pa.Array | None = None  # campaign click sessions, paid-media arrivals (null where organic)
    utm_campaign: pa.Array | None = None
    utm_medium: pa.Array | None = None  # "crm" when not given


def browse_counts(rng: np.random.Generator, people: People, exposure: float) -> np.ndarray:
    rate = people["online_share"] * (BROWSE_BASE_RATE + BROWSE_PER_RATE * people["lam"])
    rate = np.where(people["alive"], rate, 0.01 * people["online_share"])
    return rng.poisson(rate * exposure)


def make_sessions(
    rng: np.random.Generator, people: People, person: np.ndarray, anchor: np.ndarray,
    app: np.ndarray | None = None, ident_k: np.ndarray | None = None, logged_in: np.ndarray | None = None,
    min_views: np.ndarray | int = 0, carts: np.ndarray | None = None, order_id: pa.Array | None = None,
    utm_source: pa.Array | None = None, utm_campaign: pa.Array | None = None,
) -> Sessions:
    n = len(person)
    if app is None:
        app = rng.random(n) < people["app_share"][person]
    if ident_k is None:
        n_ident = np.where(app, people["n_devices"][person], people["n_cookies"][person])
        ident_k = np.floor(rng.random(n) * n_ident).astype(np.int64)
    if logged_in is None:
        logged_in = _logins(rng, people, person, anchor, app, ident_k)
    _record_logins(people, person[logged_in], app[logged_in], ident_k[logged_in])
    views = np.maximum(rng.geometric(0.45, n) - 1 + (order_id is not None), min_views)
    n_carts = carts if carts is not None else rng.binomial(views, 0.12)
    return Sessions(person, anchor, app, ident_k, logged_in, views, n_carts, rng.random(n) < 0.25,
                    order_id, utm_source, utm_campaign)


def _ident_bit(app: np.ndarray, ident_k: np.ndarray) -> np.ndarray:
    """Bit of a person's identifier in ``people[LINKED_IDENTS]``: cookies 0-3, devices 4-5."""
    return np.where(app, 4 + ident_k, ident_k).astype(np.uint8)


def _logins(
    rng: np.random.Generator, people: People, person: np.ndarray, anchor: np.ndarray, app: np.ndarray,
    ident_k: np.ndarray,
) -> np.ndarray:
    """Logged-in flags of members' sessions: a cookie or device without a login so far logs in with
    ``NEW_IDENT_LOGIN_*`` until it has one (in time order), then with ``LOGIN_SHARE_*`` per session."""
    n = len(person)
    u = rng.random(n)
    member = people["member"][person]
    bit = _ident_bit(app, ident_k)
    linked_before = ((people[LINKED_IDENTS][person] >> bit) & 1).astype(bool)
    first_share = np.where(app, NEW_IDENT_LOGIN_APP, NEW_IDENT_LOGIN_WEB)
    # Sessions of one identifier in time order: a login earlier in the batch links the identifier too.
    order = np.lexsort((anchor, person * 8 + bit))
    key = (person * 8 + bit)[order]
    attempt = (member & ~linked_before & (u < first_share))[order].astype(np.int64)
    starts = np.r_[True, key[1:] != key[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    cum = np.cumsum(attempt)
    earlier = np.empty(n, dtype=bool)
    earlier[order] = (cum - attempt - (cum - attempt)[group_start]) > 0
    linked = linked_before | earlier
    return member & (u < np.where(linked, np.where(app, LOGIN_SHARE_APP, LOGIN_SHARE_WEB), first_share))


def _record_logins(people: People, person: np.ndarray, app: np.ndarray, ident_k: np.ndarray) -> None:
    """Remember which identifiers carried a login (state persisted with the people between cycles)."""
    np.bitwise_or.at(people[LINKED_IDENTS], person, (np.uint8(1) << _ident_bit(app, ident_k)).astype(np.uint8))


def session_events(
    rng: np.random.Generator, seed: int, salt: int, people: People, products: dict[str, np.ndarray],
    keys: np.ndarray, s: Sessions,
) -> Frame:
    n_s = len(s.person)
    if n_s == 0:
        return {}
    checkout = s.order_id is not None
    n_ev = 1 + s.search + s.n_views + s.n_carts + (2 if checkout else 0)
    sess = np.repeat(np.arange(n_s), n_ev)
    pos = np.arange(len(sess)) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)
    k = pos - 1 - s.search[sess]
    views, carts = s.n_views[sess], s.n_carts[sess]
    etype = np.select(
        [pos == 0, s.search[sess] & (pos == 1), k < views, k < views + carts, k == views + carts],
        [0, 1, 2, 3, 4], default=5,
    )
    gap = rng.uniform(15, 120, n_s)[sess]
    if checkout:
        ts = s.anchor[sess] - np.round((n_ev[sess] - 1 - pos) * gap).astype(np.int64)
    else:
        ts = s.anchor[sess] + np.round(pos * gap).astype(np.int64)
    person = s.person[sess]
    has_product = (etype == 2) | (etype == 3)
    prod_rows = np.flatnonzero(has_product)
    product = np.zeros(len(sess), dtype=np.int64)
    product[prod_rows] = choose_products(rng, products, keys, category_affinity(people, person[prod_rows]))
    product_id = ids.padded(products["product_number"][product] + 10_001, 5, "P")
    url = ids.vocab(PAGE_URLS, etype)
    url = pa.array(np.where(has_product, ids.join("/p/", product_id).to_numpy(zero_copy_only=False),
                            url.to_numpy(zero_copy_only=False)), type=pa.string())
    query = ids.join(ids.vocab(CATEGORIES, rng.integers(0, len(CATEGORIES), len(sess))), " ",
                     ids.vocab(SEARCH_WORDS, rng.integers(0, len(SEARCH_WORDS), len(sess))))
    app = s.app[sess]
    ident_k = s.ident_k[sess]
    first = pos == 0
    frame: Frame = {
        "event_id": Col("str", ids.hex_ids(ids.hash64(seed, salt, np.arange(len(sess))), "e", 16)),
        "event_type": Col("str", ids.vocab(EVENT_TYPES, etype)),
        "occurred_at": Col("ts", ts),
        "platform": Col("str", ids.vocab(("web", "app"), app.astype(np.int64))),
        "cookie_id": Col("str", cookie_values(seed, person, ident_k), app),
        "device_id": Col("str", device_values(seed, people["device_owner"][person], person, ident_k), ~app),
        "member_id": Col("str", member_ids(person), ~s.logged_in[sess]),
        "session_id": Col("str", ids.hex_ids(ids.hash64(seed, salt, 1 << 40, sess), "s", 12)),
        "page_url": Col("str", url),
        "product_id": Col("str", product_id, ~has_product),
        "search_query": Col("str", query, etype != 1),
    }
    if checkout:
        frame["order_id"] = Col("str", s.order_id.take(pa.array(sess)), etype != 5)
    if s.utm_source is not None and s.utm_campaign is not None:
        source = s.utm_source.take(pa.array(sess))
        tagged = first & ~np.asarray(source.is_null(), dtype=bool)
        medium = (s.utm_medium.take(pa.array(sess)) if s.utm_medium is not None
                  else ids.vocab(("crm",), np.zeros(len(sess), dtype=np.int64)))
        frame["utm_source"] = Col("str", source, ~tagged)
        frame["utm_medium"] = Col("str", medium, ~tagged)
        frame["utm_campaign"] = Col("str", s.utm_campaign.take(pa.array(sess)), ~tagged)
    return frame
