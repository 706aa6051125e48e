"""Orders and store receipts: lines from category affinities, amounts in cents, coupons, identifiers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sim import ids
from sim.behaviour import FREE_SHIPPING_FROM, SHIPPING_FEE
from sim.landing import Col, Frame
from sim.world import (
    PARAMS,
    People,
    category_affinity,
    choose_products,
    cookie_values,
    device_values,
    email_values,
    member_ids,
    phone_values,
)

PAYMENT_METHODS: tuple[str, ...] = ("card", "mobile", "cash", "gift_card")
PAYMENT_WEIGHT = np.array([0.60, 0.25, 0.10, 0.05])
LOGIN_SHARE = 0.85  # members logged in at checkout
CARD_SHARE = 0.60  # member receipts where the membership card was presented
PHONE_AT_CHECKOUT = 0.5
OTHER_STORE_SHARE = 0.15


@dataclass(frozen=True)
class Purchases:
    """What was bought, before it is written down: one entry per order or receipt."""

    person: np.ndarray
    ts: np.ndarray
    online: np.ndarray
    offer_type: np.ndarray  # 'none' unless the order redeems a coupon
    offer_value: np.ndarray
    coupon_code: pa.Array  # nullable
    campaign_id: pa.Array  # nullable


@dataclass(frozen=True)
class OnlineOrders:
    """What the clickstream needs to draw the checkout session of each online order."""

    order_id: pa.Array
    person: np.ndarray
    ts: np.ndarray
    app: np.ndarray
    ident_k: np.ndarray
    logged_in: np.ndarray
    n_lines: np.ndarray


@dataclass(frozen=True)
class Transactions:
    frames: dict[str, Frame]
    truth: pa.Table
    online: OnlineOrders
    first_product: np.ndarray  # per order (index into products), for reviews
    order_person: np.ndarray
    order_ts: np.ndarray
    revenue_cents: np.ndarray  # per person of the input arrays' people (bincount by person)
    margin_cents: np.ndarray


def make_transactions(
    rng: np.random.Generator,
    seed: int,
    people: People,
    products: dict[str, np.ndarray],
    keys: np.ndarray,
    bought: Purchases,
    id_prefix: str,
) -> Transactions:
    n = len(bought.person)
    person = bought.person
    n_lines = 1 + rng.binomial(3, 0.35, n)
    line_order = np.repeat(np.arange(n), n_lines)
    starts = np.cumsum(n_lines) - n_lines
    line_number = np.arange(len(line_order)) - starts[line_order] + 1
    product = choose_products(rng, products, keys, category_affinity(people, person[line_order]))
    price = products["price"][product]
    # Gamma-Gamma spend: each order's value scatters around the person's mean; units fill the value.
    target = rng.gamma(PARAMS.order_value_shape, people["spend"][person] / PARAMS.order_value_shape) * 100
    quantity = np.clip(np.round(target[line_order] / n_lines[line_order] / price), 1, 12).astype(np.int64)
    line_total = quantity * price
    subtotal = np.bincount(line_order, line_total, minlength=n).astype(np.int64)
    item_count = np.bincount(line_order, quantity, minlength=n).astype(np.int64)
    cost = np.bincount(line_order, quantity * products["unit_cost"][product], minlength=n).astype(np.int64)

    pct = np.where(bought.offer_type == "percent_off", bought.offer_value, 0.0)
    discount = np.round(subtotal * pct / 100).astype(np.int64)
    amount_off = (bought.offer_type == "amount_off")
    discount = np.where(amount_off, np.minimum(np.round(bought.offer_value * 100).astype(np.int64), subtotal), discount)
    # Spread the order's discount over its lines; rounding remainder on line 1.
    line_discount = line_total * discount[line_order] // np.maximum(subtotal[line_order], 1)
    remainder = discount - np.bincount(line_order, line_discount, minlength=n).astype(np.int64)
    line_discount[starts] += remainder
    shipping = np.where(bought.online & (subtotal - discount < FREE_SHIPPING_FROM), SHIPPING_FEE, 0)
    free_ship = (bought.offer_type == "free_shipping") & bought.online
    waived = np.where(free_ship, shipping, 0)
    shipping = shipping - waived
    total = subtotal - discount + shipping
    margin = subtotal - cost - discount - waived
    redeemed = (discount > 0) | (waived > 0)

    online = np.flatnonzero(bought.online)
    pos = np.flatnonzero(~bought.online)
    seq = np.zeros(n, dtype=np.int64)
    seq[online] = np.arange(len(online))
    seq[pos] = np.arange(len(pos))
    store = np.where(rng.random(n) < OTHER_STORE_SHARE, rng.integers(0, 30, n), people["store"][person])
    online_ids = ids.padded(seq[online], 7, f"O{id_prefix}-")
    pos_ids = ids.join("R", ids.padded(store[pos] + 1, 2), f"-{id_prefix}-", ids.padded(seq[pos], 7))
    order_id = np.empty(n, dtype=object)
    order_id[online] = online_ids.to_numpy(zero_copy_only=False)
    order_id[pos] = pos_ids.to_numpy(zero_copy_only=False)
    order_id_arr = pa.array(order_id, type=pa.string())
    frames: dict[str, Frame] = {}

    # Online orders: identifiers as a web shop captures them.
    p_on = person[online]
    member = people["member"][p_on]
    logged_in = member & (rng.random(len(online)) < LOGIN_SHARE)
    app = rng.random(len(online)) < people["app_share"][p_on]
    n_ident = np.where(app, people["n_devices"][p_on], people["n_cookies"][p_on])
    ident_k = np.floor(rng.random(len(online)) * n_ident).astype(np.int64)
    cookie = cookie_values(seed, p_on, ident_k)
    device = device_values(seed, people["device_owner"][p_on], p_on, ident_k)
    phone_given = people["has_phone"][p_on] & (rng.random(len(online)) < PHONE_AT_CHECKOUT)
    frames["orders"] = {
        "order_id": Col("str", online_ids),
        "ordered_at": Col("ts", bought.ts[online]),
        "member_id": Col("str", member_ids(p_on), ~logged_in),
        "email": Col("str", email_values(people, p_on)),
        "phone": Col("str", phone_values(p_on), ~phone_given),
        "cookie_id": Col("str", cookie, app),
        "device_id": Col("str", device, ~app),
        "total_amount": Col("cents", total[online]),
        "discount_amount": Col("cents", discount[online]),
        "shipping_amount": Col("cents", shipping[online]),
        "coupon_code": Col("str", bought.coupon_code.take(pa.array(online)), ~redeemed[online]),
        "item_count": Col("int", item_count[online]),
        "status": Col("str", ids.vocab(("placed",), np.zeros(len(online), dtype=np.int64))),
    }
    p_pos = person[pos]
    card = people["member"][p_pos] & ((rng.random(len(pos)) < CARD_SHARE) | redeemed[pos])
    frames["pos_receipts"] = {
        "receipt_id": Col("str", pos_ids),
        "store_id": Col("str", ids.padded(store[pos] + 1, 2, "S")),
        "purchased_at": Col("ts", bought.ts[pos]),
        "member_id": Col("str", member_ids(p_pos), ~card),
        "total_amount": Col("cents", total[pos]),
        "discount_amount": Col("cents", discount[pos]),
        "coupon_code": Col("str", bought.coupon_code.take(pa.array(pos)), ~redeemed[pos]),
        "payment_method": Col("str", ids.vocab(PAYMENT_METHODS, rng.choice(4, len(pos), p=PAYMENT_WEIGHT))),
    }
    product_id = ids.padded(products["product_number"][product] + 10_001, 5, "P")
    for source, key, rows in (("order_lines", "order_id", online), ("pos_receipt_lines", "receipt_id", pos)):
        sel = np.zeros(n, dtype=bool)
        sel[rows] = True
        lines = np.flatnonzero(sel[line_order])
        frames[source] = {
            key: Col("str", order_id_arr.take(pa.array(line_order[lines]))),
            "line_number": Col("int", line_number[lines]),
            "product_id": Col("str", product_id.take(pa.array(lines))),
            "quantity": Col("int", quantity[lines]),
            "unit_price": Col("cents", price[lines]),
            "discount_amount": Col("cents", line_discount[lines]),
        }
    red = np.flatnonzero(redeemed)
    if len(red):
        frames["coupon_redemptions"] = {
            "redemption_id": Col("str", ids.padded(np.arange(len(red)), 7, f"CR{id_prefix}-")),
            "coupon_code": Col("str", bought.coupon_code.take(pa.array(red))),
            "campaign_id": Col("str", bought.campaign_id.take(pa.array(red))),
            "member_id": Col("str", member_ids(person[red]), ~people["member"][person[red]]),
            "order_id": Col("str", order_id_arr.take(pa.array(red)), ~bought.online[red]),
            "receipt_id": Col("str", order_id_arr.take(pa.array(red)), bought.online[red]),
            "redeemed_at": Col("ts", bought.ts[red]),
            "discount_amount": Col("cents", (discount + waived)[red]),
        }
    truth = pa.table({
        "order_id": order_id_arr,
        "person_id": pa.array(people["person_id"][person]),
        "channel": ids.vocab(("pos", "online"), bought.online.astype(np.int64)),
        "ordered_at": pa.array(bought.ts.astype("datetime64[s]")).cast(pa.timestamp("s", tz="UTC")),
        "subtotal_cents": pa.array(subtotal),
        "discount_cents": pa.array(discount + waived),
        "shipping_cents": pa.array(shipping),
        "total_cents": pa.array(total),
        "total_amount": pa.array(total / 100.0),
        "margin_cents": pa.array(margin),
        "item_count": pa.array(item_count),
        "coupon_code": pa.array(
            np.where(redeemed, bought.coupon_code.to_numpy(zero_copy_only=False), None), type=pa.string()
        ),
    })
    first_line = starts + np.floor(rng.random(n) * n_lines).astype(np.int64)
    n_people = len(people["person_id"])
    return Transactions(
        frames=frames,
        truth=truth,
        online=OnlineOrders(online_ids, p_on, bought.ts[online], app, ident_k, logged_in, n_lines[online]),
        first_product=product[first_line],
        order_person=person,
        order_ts=bought.ts,
        revenue_cents=np.bincount(person, total, minlength=n_people).astype(np.int64),
        margin_cents=np.bincount(person, margin, minlength=n_people).astype(np.int64),
    )
