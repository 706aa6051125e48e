"""Row validation: types, time zones, quarantine reasons; and the errors that stop a run before it loads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from ingest import LandingError, ingest

from .conftest import Land, Query

RECEIPTS_HEADER = "receipt_id,store_id,purchased_at,total_amount\n"


def test_one_instant_in_every_timestamp_format_becomes_one_utc_time(
    settings: Settings, land: Land, query: Query
) -> None:
    # 2026-01-05 09:30 in Seoul (UTC+9, no DST) is 00:30 UTC; epoch 1767573000.
    formats = [
        "2026-01-05T09:30:00+09:00",
        "2026-01-05T09:30:00.000+0900",
        "2026-01-05T00:30:00Z",
        "2026-01-05 00:30:00+00:00",
        "2026-01-05 09:30:00",  # naive: the source's declared zone, Asia/Seoul
        "2026-01-05T09:30",
        "1767573000",
        "1767573000000",
    ]
    land("pos_receipts/2026-01-05.csv", RECEIPTS_HEADER + "".join(f"r{i},s1,{v},1\n" for i, v in enumerate(formats)))

    report = ingest(settings)

    assert report.rows_quarantined == 0
    assert query("SELECT DISTINCT purchased_at FROM raw.pos_receipts") == [(datetime(2026, 1, 5, 0, 30),)]


def test_dates_alone_are_local_midnight_of_the_source(settings: Settings, land: Land, query: Query) -> None:
    land("pos_receipts/2026-01-05.csv", RECEIPTS_HEADER + "r1,s1,2026-01-05,1\nr2,s1,20260105,1\n")
    land("orders/2026-01-05.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,1\nm2,20260105,1\n")

    ingest(settings)

    seoul_midnight_in_utc = datetime(2026, 1, 4, 15, 0)
    assert query("SELECT DISTINCT purchased_at FROM raw.pos_receipts") == [(seoul_midnight_in_utc,)]
    assert query("SELECT DISTINCT ordered_at FROM raw.orders") == [(datetime(2026, 1, 5),)]


def test_typed_values(settings: Settings, land: Land, query: Query) -> None:
    land("campaign_sends/2026-01-05.csv", "campaign_id,member_id,arm,converted,revenue,assignment_probability\n"
                                          "c1,m1,treatment,TRUE,  12.345678 ,0.5\nc1,m2,control,No,+3,1\n"
                                          "c1,m3,control,0,.5,0\n")
    land("ad_spend/2026-01-05.csv", "spend_date,channel,spend,clicks\n2026-01-05,search,10,3\n20260106,social,0,4.0\n")

    report = ingest(settings)

    assert report.rows_quarantined == 0
    assert query("SELECT converted, revenue, assignment_probability FROM raw.campaign_sends ORDER BY member_id") == [
        (True, Decimal("12.3457"), Decimal("0.5000")),
        (False, Decimal("3.0000"), Decimal("1.0000")),
        (False, Decimal("0.5000"), Decimal("0.0000")),
    ]
    assert query("SELECT spend_date, clicks FROM raw.ad_spend ORDER BY 1") == [(date(2026, 1, 5), 3), (date(2026, 1, 6), 4)]


@pytest.mark.parametrize(
    ("row", "field", "reason", "value"),
    [
        ("r2,,2026-01-05T09:30:00,1", "store_id", "missing_required", None),
        ("r2,s1,2026-01-05T09:30:00,12,3x", None, "malformed_row", "TOO MANY COLUMNS"),
        ("r2,s1,2026-01-05T09:30:00", "total_amount", "malformed_row", "MISSING COLUMNS"),
        ('r2,s1,2026-01-05T09:30:00,"12,3x"', "total_amount", "bad_type", "12,3x"),
        ("r2,s1,2026-01-05T09:30:00,1e3", "total_amount", "bad_type", "1e3"),
        ("r2,s1,2026-01-05T09:30:00,-0.01", "total_amount", "negative_not_allowed", "-0.01"),  # a negative sale
        ("r2,s1,2026-01-05T09:30:00,1,,-2,,card", "discount_amount", "out_of_range", "-2"),
        ("r2,s1,yesterday,1", "purchased_at", "bad_type", "yesterday"),
        ("r2,s1,2026-02-30T09:30:00,1", "purchased_at", "bad_type", "2026-02-30T09:30:00"),
        ("r2,s1,176757300,1", "purchased_at", "bad_type", "176757300"),  # 9 digits: no epoch
        ("r2,s1,2026-01-05T09:30:00,1,,,,bitcoin", "payment_method", "not_accepted", "bitcoin"),
    ],
)
def test_each_quarantine_reason_names_row_and_field(
    settings: Settings, land: Land, query: Query, row: str, field: str | None, reason: str, value: str | None
) -> None:
    wide = row.count(",") == 7
    header = RECEIPTS_HEADER if not wide else (
        "receipt_id,store_id,purchased_at,total_amount,member_id,discount_amount,coupon_code,payment_method\n"
    )
    good = "r1,s1,2026-01-05T09:30:00,1" + (",,,,card" if wide else "")
    land("pos_receipts/2026-01-05.csv", header + f"{good}\n{row}\n{good.replace('r1', 'r3')}\n")

    report = ingest(settings)

    quarantined = query("SELECT file, row_number, field, reason, value FROM raw._quarantine")
    if reason == "malformed_row" and field is None:
        quarantined = [(f, n, None, r, v) for f, n, _, r, v in quarantined]  # the reader may not name a column
    assert quarantined == [("pos_receipts/2026-01-05.csv", 2, field, reason, value)]
    assert query("SELECT receipt_id, _row_number FROM raw.pos_receipts ORDER BY 2") == [("r1", 1), ("r3", 3)]
    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)


def test_missing_identifier_names_the_group(settings: Settings, land: Land, query: Query) -> None:
    land("coupon_redemptions/2026-01-05.csv", "redemption_id,coupon_code,order_id,receipt_id,redeemed_at,discount_amount\n"
                                              "x1,C10,o1,,2026-01-05T10:00:00Z,5\nx2,C10,,,2026-01-05T10:00:00Z,5\n")

    ingest(settings)

    assert query("SELECT row_number, field, reason FROM raw._quarantine") == [(2, "order_id|receipt_id", "missing_identifier")]


def test_guest_orders_are_loaded_not_quarantined(settings: Settings, land: Land, query: Query) -> None:
    # A guest checkout names no customer; a guest-only export may not even have the identifier columns.
    land("orders/2026-01-05.csv", "order_id,member_id,email,ordered_at,total_amount\n"
                                  "o1,m1,,2026-01-05,10\no2,,,2026-01-05,20\n")
    land("orders/2026-01-06.csv", "order_id,ordered_at,total_amount\no3,2026-01-06,30\n")
    land("pos_receipts/2026-01-05.csv", RECEIPTS_HEADER + "r1,s1,2026-01-05T09:30:00,5\n")

    report = ingest(settings)

    assert report.rows_quarantined == 0
    assert query("SELECT order_id, member_id FROM raw.orders ORDER BY 1") == [("o1", "m1"), ("o2", None), ("o3", None)]
    assert query("SELECT receipt_id, member_id FROM raw.pos_receipts") == [("r1", None)]


def test_only_credit_notes_may_be_negative(settings: Settings, land: Land, query: Query) -> None:
    land("orders/2026-01-05.csv", "order_id,member_id,ordered_at,total_amount,order_type,original_order_id\n"
                                  "o1,m1,2026-01-05,30,,\n"
                                  "c1,m1,2026-01-06,-10,return,o1\n"
                                  "c2,,2026-01-06,20,cancellation,o1\n"
                                  "o2,m2,2026-01-06,-5,,\n"
                                  "o3,m2,2026-01-06,-5,sale,\n"
                                  "c3,m2,2026-01-06,-5,Return,o2\n")
    land("order_lines/2026-01-05.csv", "order_id,line_number,product_id,quantity,unit_price,order_type\n"
                                       "o1,1,p1,3,10,\nc1,1,p1,-1,10,return\nc2,1,p1,2,10,cancellation\n"
                                       "o2,1,p1,-1,5,\nc1,2,p1,0,10,return\n")
    land("pos_receipt_lines/2026-01-05.csv", "receipt_id,line_number,product_id,quantity,unit_price,receipt_type\n"
                                             "r1,1,p1,-2,5,return\nr2,1,p1,-2,5,sale\n")

    report = ingest(settings)

    assert query("SELECT order_id, total_amount, order_type, original_order_id FROM raw.orders ORDER BY 1") == [
        ("c1", Decimal("-10.0000"), "return", "o1"),
        ("c2", Decimal("20.0000"), "cancellation", "o1"),
        ("o1", Decimal("30.0000"), None, None),
    ]
    assert query("SELECT source, row_number, field, reason, value FROM raw._quarantine ORDER BY source, row_number") == [
        ("order_lines", 4, "quantity", "negative_not_allowed", "-1"),
        ("order_lines", 5, "quantity", "out_of_range", "0"),  # a credit note's line still moves a unit
        ("orders", 4, "total_amount", "negative_not_allowed", "-5"),
        ("orders", 5, "total_amount", "negative_not_allowed", "-5"),
        ("orders", 6, "total_amount", "negative_not_allowed", "-5"),  # and order_type: not_accepted (case)
        ("pos_receipt_lines", 2, "quantity", "negative_not_allowed", "-2"),
    ]
    assert report.rows_loaded == 3 + 3 + 1


def test_products_without_category_or_cost_load(settings: Settings, land: Land, query: Query) -> None:
    land("products/2026-01-05.csv", "product_id,price\np1,9.5\n")

    report = ingest(settings)

    assert report.rows_quarantined == 0
    assert query("SELECT product_id, category, unit_cost FROM raw.products") == [("p1", None, None)]


def test_a_row_with_several_problems_is_quarantined_once_with_all_of_them(
    settings: Settings, land: Land, query: Query
) -> None:
    land("reviews/2026-01-05.csv", "review_id,product_id,rating,reviewed_at\nv1,,9,soon\n")

    report = ingest(settings)

    assert query("SELECT row_number, field, reason, value, detail FROM raw._quarantine") == [
        (1, "product_id", "missing_required", None,
         "product_id: missing_required; rating: out_of_range; reviewed_at: bad_type")
    ]
    assert (report.rows_loaded, report.rows_quarantined) == (0, 1)


def test_malformed_rows_among_multiline_values_keep_their_row_numbers(
    settings: Settings, land: Land, query: Query
) -> None:
    land("reviews/2026-01-05.csv", 'review_id,product_id,rating,review_text,reviewed_at\n'
                                   'v1,p1,5,"great\nreally great",2026-01-05T10:00:00Z\n'
                                   'v2,p1,5\n'
                                   'v3,p1,4,ok,2026-01-05T10:00:00Z\n')

    ingest(settings)

    assert query("SELECT review_id, review_text, _row_number FROM raw.reviews ORDER BY 3") == [
        ("v1", "great\nreally great", 1), ("v3", "ok", 3)
    ]
    assert query("SELECT row_number, reason FROM raw._quarantine") == [(2, "malformed_row")]


# --- errors that stop the run before anything is loaded -------------------------------------------------


def test_missing_landing_folder(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "nowhere")

    with pytest.raises(LandingError, match=r"landing folder .*nowhere/landing does not exist"):
        ingest(settings)
    assert not settings.warehouse_path.exists()


def test_unknown_source_folder_names_the_known_sources(settings: Settings, land: Land) -> None:
    land("orders/2026-01-05.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,1\n")
    land("Orders_EU/2026-01-05.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,1\n")

    with pytest.raises(LandingError, match=r"Orders_EU.*unknown source folder.*customers, consents, events, orders"):
        ingest(settings)
    assert not settings.warehouse_path.exists()


def test_unknown_source_argument(settings: Settings) -> None:
    with pytest.raises(LandingError, match=r"unknown source\(s\) 'order'.*orders"):
        ingest(settings, sources=["order"])


@pytest.mark.parametrize("name", ["2026-01-05.xlsx", "2026-01-05.json", "2026-01-05/part.txt"])
def test_file_in_an_unknown_format(settings: Settings, land: Land, name: str) -> None:
    land("orders/2026-01-01.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,1\n")
    land(f"orders/{name}", "whatever")

    with pytest.raises(LandingError, match=rf"{name.split('/')[-1]}: unsupported file format.*\.csv or \.parquet"):
        ingest(settings)
    assert not settings.warehouse_path.exists()


def test_missing_required_column_names_column_and_file_and_loads_nothing(
    settings: Settings, land: Land, query: Query
) -> None:
    land("events/2026-01-05.csv", "event_id,event_type,occurred_at,cookie_id\ne1,page_view,2026-01-05T10:00:00Z,c1\n")
    land("orders/2026-01-05.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,1\n")
    land("orders/2026-01-12.csv", "member_id,amount,ordered_at\nm1,1,2026-01-12\n")

    with pytest.raises(LandingError, match=r"orders/2026-01-12\.csv: required column\(s\) total_amount .*orders"):
        ingest(settings)
    # Files sorted before the bad one were not loaded either: the check runs before any load.
    assert query("SELECT count(*) FROM raw._load_log") == [(0,)]
    assert query("SELECT count(*) FROM raw.events") == [(0,)]


def test_missing_every_identifier_column_is_a_landing_error(settings: Settings, land: Land) -> None:
    land("events/2026-01-05.csv", "event_id,event_type,occurred_at,member_id\ne1,page_view,2026-01-05T10:00:00Z,m1\n")

    with pytest.raises(LandingError, match=r"none of the identifier columns cookie_id, device_id"):
        ingest(settings)


def test_landing_error_message_is_one_line(settings: Settings, land: Land) -> None:
    land("orders/2026-01-05.xlsx", "x")

    with pytest.raises(LandingError) as error:
        ingest(settings)
    assert "\n" not in str(error.value) and "orders/2026-01-05.xlsx" in str(error.value)
