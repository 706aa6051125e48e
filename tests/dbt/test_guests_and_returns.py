"""Guests, credit notes and missing costs through the whole warehouse, from a hand-made raw layer.

One small build (no simulator): online orders and store receipts of members and guests, a return and a
cancellation, a credit note of an order already returned by status, and a product without a unit_cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from .conftest import run_dbt
from .raw_fixture import create_raw

T = datetime


def _order(order_id: str, at: datetime, total: str, **extra: object) -> dict[str, object]:
    return {"order_id": order_id, "ordered_at": at, "total_amount": Decimal(total)} | extra


def _line(order_id: str, number: int, product: str, quantity: int, price: str, **extra: object) -> dict[str, object]:
    return {"order_id": order_id, "line_number": number, "product_id": product, "quantity": quantity,
            "unit_price": Decimal(price)} | extra


RAW = {
    "customers": [
        {"member_id": "M1", "country": "kr", "updated_at": T(2025, 12, 1), "signup_at": T(2025, 12, 1)},
        {"member_id": "M2", "updated_at": T(2025, 12, 1), "signup_at": T(2025, 12, 1)},
    ],
    "products": [
        {"product_id": "p1", "category": "shoes", "price": Decimal(10), "unit_cost": Decimal(6)},
        {"product_id": "p2", "price": Decimal(20)},  # no category, no cost: its margin is estimated
    ],
    "orders": [
        _order("o1", T(2026, 1, 5, 10), "30", member_id="M1", currency="krw", country="kr"),
        _order("o2", T(2026, 1, 5, 11), "40"),  # a guest checkout
        # A return sent the way tills send it (negative), naming no customer: it is o1's customer's.
        _order("c1", T(2026, 1, 6, 9), "-10", order_type="return", original_order_id="o1"),
        _order("o3", T(2026, 1, 6, 10), "25", member_id="M2", status="returned"),
        # A credit note of an order the status already took out of revenue: not subtracted twice.
        _order("c2", T(2026, 1, 6, 11), "25", member_id="M2", order_type="return", original_order_id="o3"),
        _order("c3", T(2026, 1, 7, 9), "15", order_type="cancellation", original_order_id="o2"),
    ],
    "order_lines": [
        _line("o1", 1, "p1", 3, "10"),
        _line("o2", 1, "p2", 2, "20"),
        _line("c1", 1, "p1", -1, "10", order_type="return"),
    ],
    "pos_receipts": [
        {"receipt_id": "r1", "store_id": "s1", "purchased_at": T(2026, 1, 5, 3), "total_amount": Decimal("12.34")},
        {"receipt_id": "r2", "store_id": "s1", "purchased_at": T(2026, 1, 5, 4), "total_amount": Decimal("7.66"),
         "member_id": "M2"},
        {"receipt_id": "r3", "store_id": "s1", "purchased_at": T(2026, 1, 6, 4), "total_amount": Decimal("-7.66"),
         "receipt_type": "return", "original_receipt_id": "r2"},
    ],
}
SALES = Decimal("30") + Decimal("40") + Decimal("12.34") + Decimal("7.66")
RETURNS = Decimal("10") + Decimal("15") + Decimal("7.66")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    home = tmp_path_factory.mktemp("guests_returns")
    path = home / "warehouse" / "campaign_loop.duckdb"
    create_raw(Path(path), RAW)
    result = run_dbt(home, "build", "--exclude", "test_type:unit")
    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(path), read_only=True) as con:
        yield con


def test_net_revenue_is_sales_minus_returns_to_the_cent(warehouse: duckdb.DuckDBPyConnection) -> None:
    revenue, returned, net = warehouse.execute(
        "select sum(revenue), sum(returned_amount), sum(net_revenue) from marts.kpi_daily").fetchone()
    assert (revenue, returned, net) == (SALES, RETURNS, SALES - RETURNS)
    assert warehouse.execute("select sum(net_revenue_amount) from marts.fct_orders").fetchone()[0] == SALES - RETURNS
    cycle = warehouse.execute("select revenue, returns, net_revenue, return_rate, guest_orders from marts.kpi_cycle "
                              "where cycle_number = 0").fetchone()
    assert cycle[:3] == (SALES, 3, SALES - RETURNS)
    assert cycle[3] == pytest.approx(float(RETURNS / SALES)) and cycle[4] == 2


def test_credit_notes_link_to_their_originals(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = {r[0]: r[1:] for r in warehouse.execute(
        "select order_key, order_type, original_order_key, is_revenue, is_return, total_amount, net_revenue_amount, "
        "customer_id, customer_order_number from marts.fct_orders").fetchall()}
    o1, c1, c2, c3, r3 = rows["online:o1"], rows["online:c1"], rows["online:c2"], rows["online:c3"], rows["pos:r3"]
    assert c1[:6] == ("return", "online:o1", False, True, Decimal("10"), Decimal("-10"))
    assert c1[6] == o1[6] is not None and c1[7] is None  # o1's customer; no place among their purchases
    assert c2[3:6] == (False, Decimal("25"), Decimal("0"))  # o3 was already returned by status
    assert c3[:6] == ("cancellation", "online:o2", False, True, Decimal("15"), Decimal("-15"))
    assert r3[:6] == ("return", "pos:r2", False, True, Decimal("7.66"), Decimal("-7.66"))
    lines = warehouse.execute("select order_type, quantity from marts.fct_order_lines "
                              "where order_key = 'online:c1'").fetchall()
    assert lines == [("return", 1)]


def test_guests_count_in_revenue_never_in_customer_models(warehouse: duckdb.DuckDBPyConnection) -> None:
    guests = warehouse.execute("select count(*), sum(total_amount) from marts.fct_orders "
                               "where customer_id is null and is_revenue").fetchone()
    assert guests == (2, Decimal("52.34"))  # o2 and r1
    assert warehouse.execute("select member_id from marts.dim_customers order by 1").fetchall() == [("M1",), ("M2",)]
    assert warehouse.execute("select sum(guest_orders), sum(orders) from marts.kpi_daily").fetchone() == (2, 4)
    for table in ("dim_customers", "fct_customer_features", "fct_customer_labels"):
        assert warehouse.execute(f"select count(*) from marts.{table} where customer_id is null").fetchone() == (0,)


def test_customer_marts_net_returns_and_carry_country(warehouse: duckdb.DuckDBPyConnection) -> None:
    m1 = warehouse.execute("select country, lifetime_revenue, lifetime_returns, lifetime_net_revenue "
                           "from marts.dim_customers where member_id = 'M1'").fetchone()
    assert m1 == ("KR", Decimal("30"), 1, Decimal("20"))
    features = warehouse.execute(
        "select revenue_total, returns_total, net_revenue_total from marts.fct_customer_features "
        "where member_id = 'M1' and as_of_date = '2026-01-12'").fetchone()
    assert features == (Decimal("30"), Decimal("10"), Decimal("20"))
    assert warehouse.execute("select currency, country from marts.fct_orders where order_key = 'online:o1'"
                             ).fetchone() == ("KRW", "KR")


def test_a_product_without_cost_has_an_estimated_margin(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = dict((k, v) for k, *v in warehouse.execute(
        "select order_key, margin_amount, is_margin_estimated from marts.fct_orders "
        "where order_key in ('online:o1', 'online:o2')").fetchall())
    # o1: 30 - 3 x 6; o2: 40 - 40 x (1 - 0.3), the default_margin_rate.
    assert rows == {"online:o1": [Decimal("12"), False], "online:o2": [Decimal("12"), True]}
