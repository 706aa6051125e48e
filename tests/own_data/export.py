"""A retailer's own export, as an online gift shop of 2010-2011 would send it (shaped like the UCI
"Online Retail" invoices): members and guest checkouts, credit notes for returns and cancellations, customers
in several countries and currencies, a shop closed over Christmas, most products without a cost price.

Everything is deterministic for a seed; `expected_net_revenue` is computed from the files themselves, so a
test can reconcile the warehouse with what was sent, to the cent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

COUNTRIES = (("GB", "GBP", 0.80), ("DE", "EUR", 0.08), ("FR", "EUR", 0.07), ("US", "USD", 0.05))
FIRST_DAY = date(2010, 9, 1)
LAST_DAY = date(2011, 1, 16)
CLOSED = (date(2010, 12, 24), date(2011, 1, 3))  # [from, to): no trading over Christmas


@dataclass(frozen=True)
class Export:
    orders: pd.DataFrame
    order_lines: pd.DataFrame
    customers: pd.DataFrame
    products: pd.DataFrame
    consents: pd.DataFrame


def build(seed: int = 2011, members: int = 360, first_day: date = FIRST_DAY, last_day: date = LAST_DAY) -> Export:
    rng = random.Random(seed)
    products = []
    for i in range(40):
        price = round(rng.uniform(0.85, 12.75), 2)
        products.append({
            "product_id": f"2{i:04d}",
            "product_name": f"Gift item {i}",
            "category": "" if i % 5 == 0 else rng.choice(["home", "kitchen", "party", "stationery"]),
            "price": f"{price:.2f}",
            # Most catalogues carry no cost price: margins must then be estimated.
            "unit_cost": f"{price * 0.55:.2f}" if i % 4 == 0 else "",
            "updated_at": "2010-08-30",
        })
    customers, consents = [], []
    for m in range(members):
        country, currency = _country(rng)
        member = f"{12346 + m}"
        signup = first_day - timedelta(days=rng.randint(0, 700))
        customers.append({
            "member_id": member, "email": f"buyer{m}@example.org", "full_name": f"Buyer {m}",
            "country": country.lower() if m % 7 == 0 else country,  # the CRM is not consistent about case
            "signup_at": signup.isoformat(), "updated_at": f"{signup.isoformat()} 10:00:00",
        })
        for channel in ("email", "sms"):
            consents.append({
                "member_id": member, "channel": channel,
                "status": "opt_in" if rng.random() < (0.7 if channel == "email" else 0.3) else "opt_out",
                "changed_at": f"{signup.isoformat()} 10:00:00", "source": "signup",
            })
    rates = {c["member_id"]: rng.choice([0.02, 0.05, 0.1, 0.2]) for c in customers}
    orders, lines = [], []
    day = first_day
    number = 536365
    while day <= last_day:
        if not (CLOSED[0] <= day < CLOSED[1]) and day.weekday() != 5:  # closed on Saturdays, like the shop
            buyers = [c for c in customers if rng.random() < rates[c["member_id"]]]
            guests = rng.randint(0, 4)
            for buyer in [*buyers, *([None] * guests)]:
                number += 1
                at = datetime.combine(day, datetime.min.time()) + timedelta(minutes=rng.randint(8 * 60, 18 * 60))
                country, currency = (_country(rng) if buyer is None else
                                     next((c, cur) for c, cur, _ in COUNTRIES if c == buyer["country"].upper()))
                order_lines = _lines(rng, products, f"{number}")
                total = sum(q * p for _, q, p in order_lines)
                orders.append({
                    "order_id": f"{number}", "ordered_at": at.strftime("%Y-%m-%d %H:%M:%S"),
                    "member_id": "" if buyer is None else buyer["member_id"],
                    "total_amount": f"{total:.2f}", "order_type": "sale", "original_order_id": "",
                    "country": country, "currency": currency,
                })
                lines += [{"order_id": f"{number}", "line_number": n + 1, "product_id": pid, "quantity": q,
                           "unit_price": f"{p:.2f}", "order_type": "sale"}
                          for n, (pid, q, p) in enumerate(order_lines)]
                if buyer is not None and rng.random() < 0.06:  # a credit note a few days later
                    number += 1
                    kind = rng.choice(["return", "return", "cancellation"])
                    back = order_lines[:1]
                    credit = sum(q * p for _, q, p in back)
                    orders.append({
                        "order_id": f"C{number}",
                        "ordered_at": (at + timedelta(days=rng.randint(1, 4))).strftime("%Y-%m-%d %H:%M:%S"),
                        "member_id": buyer["member_id"], "total_amount": f"{-credit:.2f}", "order_type": kind,
                        "original_order_id": f"{number - 1}", "country": country, "currency": currency,
                    })
                    lines += [{"order_id": f"C{number}", "line_number": 1, "product_id": back[0][0],
                               "quantity": -back[0][1], "unit_price": f"{back[0][2]:.2f}", "order_type": kind}]
        day += timedelta(days=1)
    # The export was taken on its last day: credit notes dated later are not in it yet.
    orders = [o for o in orders if o["ordered_at"][:10] <= last_day.isoformat()]
    kept = {o["order_id"] for o in orders}
    lines = [line for line in lines if line["order_id"] in kept]
    return Export(pd.DataFrame(orders), pd.DataFrame(lines), pd.DataFrame(customers), pd.DataFrame(products),
                  pd.DataFrame(consents))


def _country(rng: random.Random) -> tuple[str, str]:
    pick = rng.random()
    for country, currency, share in COUNTRIES:
        if pick < share:
            return country, currency
        pick -= share
    return COUNTRIES[0][0], COUNTRIES[0][1]


def _lines(rng: random.Random, products: list[dict[str, str]], order: str) -> list[tuple[str, int, float]]:
    chosen = rng.sample(products, rng.randint(1, 4))
    return [(p["product_id"], rng.choice([1, 2, 3, 6, 12]), float(p["price"])) for p in chosen]


def bare_log(export: Export) -> pd.DataFrame:
    """The least a till system exports: the members' purchases as member, time and amount."""
    sales = export.orders[export.orders["member_id"].ne("") & export.orders["order_type"].eq("sale")]
    return sales[["member_id", "ordered_at", "total_amount"]].reset_index(drop=True)


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def net_revenue(orders: pd.DataFrame) -> float:
    """Sales minus credit notes, whatever sign a credit note's amount was sent with."""
    amounts = orders["total_amount"].astype(float)
    sale = orders["order_type"].fillna("sale").replace("", "sale").eq("sale")
    return round(float(amounts[sale].sum() - amounts[~sale].abs().sum()), 2)
