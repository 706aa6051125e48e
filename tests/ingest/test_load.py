"""Loading: accounting, idempotency, crash safety, layouts and formats."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from campaign_loop.config import Settings
from ingest import LandingError, batch_report, ingest
from ingest import load as load_module
from ingest.contract import load_contract
from ingest.warehouse import LOAD_LOG_DDL

from .conftest import Land, Query

SEOUL = ZoneInfo("Asia/Seoul")
EVENTS_HEADER = "event_id,event_type,occurred_at,cookie_id\n"


def test_every_contract_source_has_a_raw_table_even_with_nothing_landed(settings: Settings, query: Query) -> None:
    report = ingest(settings)

    tables = {t for (t,) in query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'")}
    assert tables == set(load_contract().sources) | {"_load_log", "_quarantine"}
    assert report.batches == ()
    columns = dict(query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = 'orders'"
    ))
    assert columns["total_amount"] == "DECIMAL(18,4)"
    assert columns["ordered_at"] == "TIMESTAMP"
    assert columns["item_count"] == "BIGINT"
    assert columns["_row_number"] == "BIGINT" and columns["_file_hash"] == "VARCHAR"


def test_rows_in_file_equal_rows_loaded_plus_quarantined(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "\n".join([
        "e1,page_view,2026-01-05T10:00:00Z,c1",
        "e1,page_view,2026-01-05T10:00:00Z,c1",  # a duplicate event is loaded: raw keeps duplicates
        "e2,page_view,2026-01-05T10:00:00Z,c1,too,many",  # malformed
        "e3,page_view",  # malformed: too few
        "e4,teleport,2026-01-05T10:00:00Z,c1",  # not_accepted
        "e5,search,not a time,c1",  # bad_type
        "e6,search,2026-01-05T10:00:00Z,",  # missing_identifier
        "e7,search,2026-01-05T10:00:00Z,c2",
    ]) + "\n")
    land("events/2026-01-12.csv", EVENTS_HEADER + "e8,search,2026-01-12T10:00:00Z,c1\n")

    report = ingest(settings)

    per_file = query("""
        SELECT l.file, l.rows_in_file, l.rows_loaded, l.rows_quarantined,
               (SELECT count(*) FROM raw.events e WHERE e._file_hash = l.file_hash),
               (SELECT count(*) FROM raw._quarantine q WHERE q.file_hash = l.file_hash)
        FROM raw._load_log l ORDER BY l.file
    """)
    assert per_file == [
        ("events/2026-01-05.csv", 8, 3, 5, 3, 5),
        ("events/2026-01-12.csv", 1, 1, 0, 1, 0),
    ]
    for file in report.files:
        assert file.rows_in_file == file.rows_loaded + file.rows_quarantined
    assert query("SELECT count(*) FROM raw.events WHERE event_id = 'e1'") == [(2,)]
    # Every data row of the file is accounted for exactly once, by its row number.
    numbers = query("""
        SELECT _row_number FROM raw.events WHERE _file = 'events/2026-01-05.csv'
        UNION ALL SELECT row_number FROM raw._quarantine ORDER BY 1
    """)
    assert [n for (n,) in numbers] == list(range(1, 9))


def test_second_run_loads_nothing_and_counts_files_skipped(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\ne2,oops,x,\n")
    first = ingest(settings)
    snapshot = [query(f"SELECT count(*) FROM raw.{t}") for t in ("events", "_quarantine", "_load_log")]

    second = ingest(settings)
    # The same content under another name is the same file.
    land("events/2026-01-05-resent.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\ne2,oops,x,\n")
    third = ingest(settings)

    assert first.rows_loaded == 1 and first.rows_quarantined == 1
    assert [query(f"SELECT count(*) FROM raw.{t}") for t in ("events", "_quarantine", "_load_log")] == snapshot
    assert second.rows_loaded == second.rows_quarantined == 0
    assert [(b.files, b.files_skipped) for b in second.batches] == [(0, 1)]
    assert sum(b.files_skipped for b in third.batches) == 2 and third.rows_loaded == 0


def test_a_crash_between_inserts_leaves_nothing_and_a_rerun_loads_the_file(
    settings: Settings, land: Land, query: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\ne2,oops,x,\n")
    ingest(settings)  # creates the warehouse; nothing new after this
    land("events/2026-01-12.csv", EVENTS_HEADER + "e3,search,2026-01-12T10:00:00Z,c1\ne4,oops,x,\n")
    before = [query(f"SELECT count(*) FROM raw.{t}") for t in ("events", "_quarantine", "_load_log")]

    def crash(*args: object, **kwargs: object) -> int:
        raise OSError("disk pulled out after the raw rows were inserted")

    monkeypatch.setattr(load_module, "_insert_quarantine", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        ingest(settings)
    after_crash = [query(f"SELECT count(*) FROM raw.{t}") for t in ("events", "_quarantine", "_load_log")]
    monkeypatch.undo()
    rerun = ingest(settings)

    assert after_crash == before
    assert [(b.batch, b.files, b.rows_loaded, b.rows_quarantined) for b in rerun.batches] == [
        ("2026-01-05", 0, 0, 0), ("2026-01-12", 1, 1, 1)
    ]
    assert query("SELECT count(*) FROM raw.events WHERE event_id = 'e3'") == [(1,)]


def test_unknown_column_is_ignored_and_reported(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", "event_id,event_type,occurred_at,cookie_id,Browser,utm_term\n"
                                  "e1,page_view,2026-01-05T10:00:00Z,c1,firefox,shoes\n")

    report = ingest(settings)

    assert [(n.file, n.columns) for n in report.unknown_columns] == [("events/2026-01-05.csv", ("Browser", "utm_term"))]
    assert "Browser, utm_term" in str(report.unknown_columns[0])
    assert query("SELECT unknown_columns FROM raw._load_log") == [("Browser, utm_term",)]
    assert query("SELECT event_id, cookie_id FROM raw.events") == [("e1", "c1")]


def test_headers_match_case_and_whitespace_insensitively_and_absent_columns_are_null(
    settings: Settings, land: Land, query: Query
) -> None:
    land("events/2026-01-05.csv", "Event_ID, event_type ,OCCURRED_AT,device_id\ne1,page_view,2026-01-05T10:00:00Z,d1\n")

    ingest(settings)

    assert query("SELECT event_id, event_type, device_id, cookie_id, platform FROM raw.events") == [
        ("e1", "page_view", "d1", None, None)
    ]


def test_metadata_columns_carry_lineage(settings: Settings, land: Land, query: Query) -> None:
    path = land("events/2026-01-05/part-0001.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\n")

    ingest(settings)

    import hashlib

    ((batch, file, file_hash, row_number, loaded_at),) = query(
        "SELECT _batch, _file, _file_hash, _row_number, _loaded_at FROM raw.events"
    )
    assert (batch, file, row_number) == ("2026-01-05", "events/2026-01-05/part-0001.csv", 1)
    assert file_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(loaded_at, datetime)


def test_parquet_input_with_typed_columns(settings: Settings, land: Land, query: Query) -> None:
    path = settings.landing_dir / "orders" / "2026-01-05.parquet"
    path.parent.mkdir(parents=True)
    table = pa.table({
        "order_id": ["o1", "o2", "o3"],
        "member_id": ["m1", "m2", "m3"],
        "ordered_at": pa.array(
            [datetime(2026, 1, 5, h, m, tzinfo=SEOUL) for h, m in ((9, 30), (10, 0), (11, 0))],
            pa.timestamp("us", tz="Asia/Seoul"),
        ),
        "total_amount": pa.array([12.5, 0.00001, -3.0], pa.float64()),  # an exponent in text; a negative
        "item_count": pa.array([2, 1, 1], pa.int64()),
    })
    pq.write_table(table, path)

    report = ingest(settings)

    assert query("SELECT order_id, ordered_at, total_amount, item_count, _row_number FROM raw.orders ORDER BY 1") == [
        ("o1", datetime(2026, 1, 5, 0, 30), Decimal("12.5000"), 2, 1),
        ("o2", datetime(2026, 1, 5, 1, 0), Decimal("0.0000"), 1, 2),
    ]
    assert query("SELECT row_number, field, reason FROM raw._quarantine") == [(3, "total_amount", "negative_not_allowed")]
    assert report.files[0].rows_in_file == 3


def test_transaction_log_only_export_loads_with_derived_order_ids(settings: Settings, land: Land, query: Query) -> None:
    # Like the CDNOW sample: who bought, when (a compact date), for how much; nothing else.
    land("orders/cdnow.csv", "member_id,ordered_at,total_amount\n00001,19970101,11.77\n00002,19970112,12.00\n"
                             "00002,19970112,12.00\n00003,19970102,20.76\n")

    ingest(settings)
    rows = query("SELECT order_id, member_id, ordered_at, total_amount, _row_number FROM raw.orders ORDER BY _row_number")
    ingest(settings)

    assert [r[1:] for r in rows] == [
        ("00001", datetime(1997, 1, 1), Decimal("11.7700"), 1),
        ("00002", datetime(1997, 1, 12), Decimal("12.0000"), 2),
        ("00002", datetime(1997, 1, 12), Decimal("12.0000"), 3),
        ("00003", datetime(1997, 1, 2), Decimal("20.7600"), 4),
    ]
    order_ids = [r[0] for r in rows]
    assert len(set(order_ids)) == 4 and all(order_ids)
    assert query("SELECT order_id FROM raw.orders ORDER BY _row_number") == [(o,) for o in order_ids]


def test_derived_key_fills_only_empty_values(settings: Settings, land: Land, query: Query) -> None:
    land("orders/2026-01-05.csv", "order_id,member_id,ordered_at,total_amount\nA1,m1,2026-01-05,1\n,m2,2026-01-05,2\n")

    ingest(settings)

    ((kept,), (derived,)) = query("SELECT order_id FROM raw.orders ORDER BY _row_number")
    # The first keyless row with this content: the suffix counts identical purchases, not file rows.
    assert kept == "A1" and derived.startswith("derived-") and derived.endswith("-1")


BARE_LOG = "member_id,ordered_at,total_amount\n"


def test_a_re_sent_bare_log_derives_the_same_order_ids(settings: Settings, land: Land, query: Query) -> None:
    # The first export, then the same purchases re-sent in another batch with another layout: a new row on
    # top, the amounts and dates written differently, columns in another order.
    land("orders/2026-01-05.csv", BARE_LOG + "m1,2026-01-05 10:00:00,12.5\nm2,2026-01-06,30\nm2,2026-01-06,30\n")
    ingest(settings)
    land("orders/2026-01-12.csv", "total_amount,member_id,ordered_at\n"
                                  "7,m3,2026-01-07\n12.50,m1,2026-01-05T10:00:00Z\n30.0,m2,20260106\n30,m2,2026-01-06\n")
    ingest(settings)

    keys = query("SELECT _batch, member_id, order_id FROM raw.orders ORDER BY _batch, _row_number")
    first = {(m, k) for b, m, k in keys if b == "2026-01-05"}
    second = {(m, k) for b, m, k in keys if b == "2026-01-12"}
    assert len(first) == 3  # two identical purchases in one file stay two orders
    assert first <= second and len(second - first) == 1
    # Staging keeps one row per order_id: the re-sent purchases are counted once.
    assert query("SELECT count(DISTINCT order_id) FROM raw.orders") == [(4,)]


def test_a_changed_purchase_derives_a_new_order_id(settings: Settings, land: Land, query: Query) -> None:
    land("orders/a.csv", BARE_LOG + "m1,2026-01-05,12.5\n")
    land("orders/b.csv", BARE_LOG + "m1,2026-01-05,12.6\n")

    ingest(settings)

    assert query("SELECT count(DISTINCT order_id) FROM raw.orders") == [(2,)]


def test_a_corrected_file_supersedes_the_earlier_version(settings: Settings, land: Land, query: Query) -> None:
    land("orders/2026-01-05.csv", "order_id,member_id,ordered_at,total_amount\nA1,m1,2026-01-05,-5\nA2,m2,2026-01-05,9\n")
    land("orders/2026-01-12.csv", "order_id,member_id,ordered_at,total_amount\nB1,m1,2026-01-12,3\n")
    first = ingest(settings)
    old_hash = first.files[0].file_hash
    land("orders/2026-01-05.csv", "order_id,member_id,ordered_at,total_amount\nA1,m1,2026-01-05,5\n")

    second = ingest(settings)

    (corrected,) = [f for f in second.files if f.status == "loaded"]
    assert corrected.supersedes == (old_hash,)
    log = dict(query("SELECT file_hash, superseded_by FROM raw._load_log"))
    assert log[old_hash] == corrected.file_hash and log[corrected.file_hash] is None
    assert sum(v is None for v in log.values()) == 2  # the other batch's file is untouched
    # raw stays append-only: both versions' rows are there, told apart by the log.
    assert query("SELECT count(*) FROM raw.orders WHERE _batch = '2026-01-05'") == [(2,)]
    assert query(
        "SELECT o.order_id FROM raw.orders o JOIN raw._load_log l ON l.file_hash = o._file_hash "
        "WHERE l.superseded_by IS NULL ORDER BY 1"
    ) == [("A1",), ("B1",)]


def test_a_correction_in_another_format_and_a_correction_of_the_correction(
    settings: Settings, land: Land, query: Query
) -> None:
    land("orders/2026-01-05.csv", BARE_LOG + "m1,2026-01-05,1\n")
    ingest(settings)
    (settings.landing_dir / "orders/2026-01-05.csv").unlink()
    table = pa.table({"member_id": ["m1"], "ordered_at": ["2026-01-05"], "total_amount": ["2"]})
    pq.write_table(table, settings.landing_dir / "orders/2026-01-05.parquet")
    ingest(settings)
    land("orders/2026-01-05.csv.gz", gzip.compress((BARE_LOG + "m1,2026-01-05,3\n").encode()))
    ingest(settings)

    chain = query("SELECT file, superseded_by IS NULL FROM raw._load_log ORDER BY loaded_at")
    assert chain == [("orders/2026-01-05.csv", False), ("orders/2026-01-05.parquet", False),
                     ("orders/2026-01-05.csv.gz", True)]
    trail = dict(query("SELECT file_hash, superseded_by FROM raw._load_log"))
    hashes = [h for (h,) in query("SELECT file_hash FROM raw._load_log ORDER BY loaded_at")]
    assert trail[hashes[0]] == hashes[1] and trail[hashes[1]] == hashes[2]


def test_another_file_of_the_batch_is_not_a_correction(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05/part-0.csv", EVENTS_HEADER + "e1,search,2026-01-05T10:00:00Z,c1\n")
    ingest(settings)
    land("events/2026-01-05/part-1.csv", EVENTS_HEADER + "e2,search,2026-01-05T10:00:00Z,c1\n")

    report = ingest(settings)

    assert [f.supersedes for f in report.files if f.status == "loaded"] == [()]
    assert query("SELECT count(*) FROM raw._load_log WHERE superseded_by IS NULL") == [(2,)]


def test_two_new_versions_of_one_file_stop_the_run(settings: Settings, land: Land, query: Query) -> None:
    land("orders/2026-01-05.csv", BARE_LOG + "m1,2026-01-05,1\n")
    land("orders/2026-01-05.csv.gz", gzip.compress((BARE_LOG + "m1,2026-01-05,2\n").encode()))

    with pytest.raises(LandingError, match=r"2026-01-05\.csv\.gz.*same batch file 'orders/2026-01-05'"):
        ingest(settings)
    assert query("SELECT count(*) FROM raw._load_log") == [(0,)]


def test_a_load_log_without_the_superseded_column_is_migrated(settings: Settings, land: Land, query: Query) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(LOAD_LOG_DDL.replace(",\n    superseded_by VARCHAR", ""))
        con.execute("INSERT INTO raw._load_log VALUES ('h0', 'orders', 'b', 'orders/b.csv', 'csv', 1, 1, 0, "
                    "'loaded', NULL, NULL, TIMESTAMP '2026-01-01')")
    land("orders/b.csv", BARE_LOG + "m1,2026-01-05,1\n")

    ingest(settings)

    assert query("SELECT file_hash = 'h0', superseded_by IS NOT NULL FROM raw._load_log ORDER BY loaded_at") == [
        (True, True), (False, False)]


def test_outcome_only_campaign_export_loads(settings: Settings, land: Land, query: Query) -> None:
    land("campaign_sends/2026-01-05.csv", "campaign_id,member_id,arm,converted,revenue\n"
                                          "c1,m1,treatment,1,25.00\nc1,m2,control,0,\nc1,m3,treatment,yes,0\n")

    report = ingest(settings)

    assert report.rows_quarantined == 0
    assert query("SELECT member_id, arm, converted, revenue, sent_at FROM raw.campaign_sends ORDER BY 1") == [
        ("m1", "treatment", True, Decimal("25.0000"), None),
        ("m2", "control", False, None, None),
        ("m3", "treatment", True, Decimal("0.0000"), None),
    ]


def test_assignment_probability_keeps_every_digit(settings: Settings, land: Land, query: Query) -> None:
    # A 3-arm design's 1/3 stored as DECIMAL(18,4) became 0.3333 and moved the sample-ratio test's p.
    land("campaign_sends/2026-01-05.csv", "campaign_id,member_id,arm,assignment_probability\n"
                                          "c1,m1,treatment,0.3333333333333333\nc1,m2,control,1e-05\nc1,m3,control,1.5\n")
    path = settings.landing_dir / "campaign_sends" / "2026-01-06.parquet"
    pq.write_table(pa.table({"campaign_id": ["c2"], "member_id": ["m4"], "arm": ["treatment"],
                             "assignment_probability": pa.array([2 / 3], pa.float64())}), path)

    ingest(settings)

    assert query("SELECT member_id, assignment_probability FROM raw.campaign_sends ORDER BY 1") == [
        ("m1", 1 / 3), ("m2", 1e-05), ("m4", 2 / 3)]
    assert query("SELECT field, reason FROM raw._quarantine") == [("assignment_probability", "out_of_range")]


def test_a_decimal_assignment_probability_column_is_widened(settings: Settings, query: Query) -> None:
    ingest(settings)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("ALTER TABLE raw.campaign_sends ALTER COLUMN assignment_probability TYPE DECIMAL(18,4)")

    ingest(settings)

    assert query("SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw' "
                 "AND table_name = 'campaign_sends' AND column_name = 'assignment_probability'") == [("DOUBLE",)]


@pytest.mark.parametrize(
    ("name", "content"),
    [("garbage.parquet", b"\x00\x17not a parquet file at all\xff" * 20), ("empty.csv", b"")],
)
def test_unreadable_file_is_quarantined_whole_and_the_run_continues(
    settings: Settings, land: Land, query: Query, name: str, content: bytes
) -> None:
    land(f"events/2026-01-05/{name}", content)
    land("events/2026-01-05/good.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\n")

    report = ingest(settings)
    again = ingest(settings)

    log = query("SELECT file, status, error, rows_loaded FROM raw._load_log ORDER BY file")
    assert [(f, s, r) for f, s, _, r in log] == sorted([
        (f"events/2026-01-05/{name}", "quarantined_file", 0), ("events/2026-01-05/good.csv", "loaded", 1)
    ])
    assert all(error for f, _, error, _ in log if f.endswith(name))
    copy = settings.quarantine_dir / "events" / "2026-01-05" / name
    assert copy.read_bytes() == content
    assert "error:" in copy.with_name(name + ".error.txt").read_text()
    (flagged,) = report.flagged
    assert flagged.status == "quarantined_file" and "quarantined whole" in report.to_rows()[0]["flag"]
    assert again.batches[0].files_skipped == 2


def test_files_over_the_quarantine_rate_are_flagged(tmp_path: Path, land: Land) -> None:
    settings = Settings(home=tmp_path, quarantine_rate_max=0.4)
    land("events/2026-01-05.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\ne2,oops,x,\n")
    land("events/2026-01-12.csv", EVENTS_HEADER + "e3,page_view,2026-01-05T10:00:00Z,c1\n" * 3 + "e4,oops,x,\n")

    report = ingest(settings)

    assert [f.file for f in report.flagged] == ["events/2026-01-05.csv"]
    assert not report.ok
    assert [row["flag"] != "" for row in report.to_rows()] == [True, False]


def test_batch_report_reads_the_load_log_per_batch(settings: Settings, land: Land) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\ne2,oops,x,\n")
    land("orders/2026-01-05.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,3\n")
    land("orders/2026-01-12.csv", "member_id,ordered_at,total_amount\nm1,2026-01-12,3\n")
    assert batch_report(settings, "2026-01-05") == []  # no warehouse yet

    ingest(settings)
    ingest(settings)  # skipped files do not count twice

    rows = batch_report(settings, "2026-01-05")
    assert [(r.source, r.files, r.rows_landed, r.rows_loaded, r.rows_quarantined) for r in rows] == [
        ("events", 1, 2, 1, 1), ("orders", 1, 1, 1, 0)
    ]


def test_sources_argument_limits_the_run(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "e1,page_view,2026-01-05T10:00:00Z,c1\n")
    land("orders/2026-01-05.csv", "member_id,ordered_at,total_amount\nm1,2026-01-05,3\n")

    ingest(settings, sources=["orders"])

    assert query("SELECT source FROM raw._load_log") == [("orders",)]


def test_quarantine_record_keeps_the_raw_row(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + 'e1,teleport,2026-01-05T10:00:00Z,"c,1"\n')

    ingest(settings)

    ((record,),) = query("SELECT record FROM raw._quarantine")
    assert json.loads(record) == {
        "event_id": "e1", "event_type": "teleport", "occurred_at": "2026-01-05T10:00:00Z", "cookie_id": "c,1"
    }


def test_header_only_file_loads_zero_rows(settings: Settings, land: Land, query: Query) -> None:
    land("orders/2026-01-05.csv", "member_id,ordered_at,total_amount\n")

    report = ingest(settings)

    assert query("SELECT status, rows_in_file, rows_loaded FROM raw._load_log") == [("loaded", 0, 0)]
    assert report.flagged == ()


@pytest.mark.parametrize("delimiter", [",", "|", ";", "\t"])
def test_the_header_line_decides_the_delimiter_whatever_the_rows_hold(
    settings: Settings, land: Land, query: Query, delimiter: str
) -> None:
    # Rows like these once made DuckDB's sniffer read the header as data and the file "lose" its columns.
    header = delimiter.join(["receipt_id", "store_id", "purchased_at", "total_amount"])
    rows = [
        delimiter.join(["r1", '"a ""quoted"" value"', "2026-01-05T10:00:00Z", "12.5"]),
        delimiter.join(['"r2,|;x"', "s1", "2026-01-05T11:00:00Z", '"13.0"']),
        '"12,3x"',
    ]
    land("pos_receipts/2026-01-05.csv", "\n".join([header, *rows]) + "\n")

    report = ingest(settings)

    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert query("SELECT receipt_id, store_id FROM raw.pos_receipts ORDER BY _row_number") == [
        ("r1", 'a "quoted" value'), ("r2,|;x", "s1"),
    ]
    assert query("SELECT row_number, reason FROM raw._quarantine") == [(3, "malformed_row")]


def test_a_re_sent_bare_log_is_counted_once_after_dbt(settings: Settings, land: Land) -> None:
    from tests.dbt.conftest import run_dbt

    land("orders/2026-01-05.csv", BARE_LOG + "m1,2026-01-05,12.5\nm2,2026-01-06,30\nm2,2026-01-06,30\n")
    land("orders/2026-01-12.csv", BARE_LOG + "m1,2026-01-05,12.50\nm2,2026-01-06,30\nm2,2026-01-06,30\nm3,2026-01-12,7\n")
    ingest(settings)

    result = run_dbt(settings.home, "run", "-s", "stg_shop__orders")

    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        staged = con.execute("SELECT count(*), sum(total_amount) FROM staging.stg_shop__orders").fetchone()
    assert staged == (4, Decimal("79.5"))
