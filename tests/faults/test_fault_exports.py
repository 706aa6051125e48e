"""Proof (issue 22): the export faults a careless upstream makes are stopped at the raw gate (or by ingest),
each by the check written for it, and the ones let through carry a warning that says why.

To keep CI short, faults that touch different sources share a run: each test copies the baseline once,
switches several faults on for cycle 1 and runs it to the raw gate; every fault's own check is asserted.
The frames and files each fault writes are unit-tested in test_fault_specs.py.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from tests.faults.cycle import failed, run_cycle, validation_rows

pytestmark = pytest.mark.slow

CYCLE = 1


def _raw(settings) -> list[dict]:
    return validation_rows(settings, settings.cycle_key(CYCLE), "raw")


def _details(rows: list[dict], check: str, table: str, severity: str = "critical") -> str:
    hits = failed(rows, check, severity, table)
    assert hits, f"{check} on {table} did not fail: {[r for r in rows if r['check'] == check and r['table'] == table]}"
    return " | ".join(r["details"] or "" for r in hits)


def test_rows_broken_on_seven_sources_each_fail_their_own_check(faulty_world) -> None:
    # Given one batch with member ids lost, colliding receipt ids, events dated next week, negative sale
    # quantities, sends to members who had opted out, a consents file of opt-outs only, a cut file and a
    # European-locale file
    settings, _ = faulty_world(
        "null_members:orders", "colliding_ids:pos_receipts:0.3", "future_rows:events",
        "negative_quantities:pos_receipt_lines", "ignore_consent", "revoke_consents", "truncate_file:order_lines",
        "locale_decimals:ad_spend")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate stops it, and each fault is named by its check
    assert run.failed_at == "validate_raw" and run.ran == ["simulate", "ingest"], run.error
    rows = _raw(settings)
    assert "turned members into guests" in _details(rows, "identity_share", "raw.orders")
    assert "different content" in _details(rows, "key_conflicts", "raw.pos_receipts")
    assert failed(rows, "not_in_future", "critical", "raw.events")
    assert "a consent violation" in _details(rows, "consent_violation", "raw.campaign_sends")
    assert "100.0% of" in _details(rows, "consent_mix", "raw.consents")
    cut = settings.cycle_key(CYCLE)
    assert f"order_lines/{cut}.csv (row " in _details(rows, "truncated_file", "raw._load_log")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        reasons = dict(con.execute(
            "SELECT source || ':' || reason, count(*) FROM raw._quarantine WHERE batch = ? GROUP BY 1", [cut]).fetchall())
        rates = dict(con.execute(
            "SELECT source, rows_quarantined / rows_in_file FROM raw._load_log WHERE batch = ?", [cut]).fetchall())
    assert reasons.get("pos_receipt_lines:negative_not_allowed", 0) >= 1
    assert reasons.get("ad_spend:bad_type", 0) >= 1 and rates["ad_spend"] == 1.0  # every spend is "12,50"
    assert failed(rows, "quarantine_rate", "critical")


def test_missing_files_and_a_currency_slip_stop_at_the_raw_gate_and_a_lost_day_warns(faulty_world) -> None:
    # Given orders in another currency, their member_id column renamed, last week's receipts file sent
    # again, a day of clickstream and the opt-outs left out
    settings, _ = faulty_world(
        "currency_switch:orders", "rename_column:orders.member_id=customer_no", "stale_file:pos_receipts",
        "drop_day:events", "drop_optouts")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate stops it on each critical fault, and records the warnings
    assert run.failed_at == "validate_raw", run.error
    rows = _raw(settings)
    assert "another currency" in _details(rows, "scale_shift", "raw.orders")
    assert failed(rows, "scale_shift", "critical", "raw.order_lines")
    assert "0.0% of" in _details(rows, "identity_share", "raw.orders")
    assert "no file for pos_receipts" in _details(rows, "source_missing", "raw.pos_receipts")
    day = (settings.cycle_start(CYCLE) + timedelta(days=2)).isoformat()  # drop_day's default: day 2
    assert f"{day}: under 10%" in _details(rows, "day_gap", "raw.events", "warning")
    # too few consent changes in this small world to block on: a warning naming the filtered export
    assert "filtered by status" in _details(rows, "consent_mix", "raw.consents", "warning")


def test_a_renamed_required_column_stops_ingest_before_anything_loads(faulty_world) -> None:
    # Given the orders file's ordered_at renamed order_date (a new export template)
    settings, _ = faulty_world("rename_column:orders.ordered_at=order_date")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then ingest refuses the landing folder, naming the file and the column, and loads none of the batch
    assert run.failed_at == "ingest" and run.ran == ["simulate"]
    assert f"orders/{settings.cycle_key(CYCLE)}.csv" in run.error and "ordered_at" in run.error
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM raw._load_log WHERE batch = ?", [settings.cycle_key(CYCLE)]).fetchone()
    assert loaded == (0,)


def test_an_orders_file_with_only_its_header_stops_at_the_raw_gate(faulty_world) -> None:
    # Given the orders export delivered its header and no row, while the stores traded
    settings, _ = faulty_world("header_only:orders")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate finds a week of online revenue missing
    assert run.failed_at == "validate_raw", run.error
    assert "files without a loaded row for orders" in _details(_raw(settings), "source_missing", "raw.orders")


def test_a_latin1_file_lost_lines_and_doubled_spend_stop_at_the_gate_and_a_bom_loads(faulty_world) -> None:
    # Given the CRM's profiles re-sent in latin-1 with accented names, orders whose lines lost one each,
    # one paid channel's spend summed twice, and the receipts file behind a UTF-8 byte-order mark
    settings, _ = faulty_world("reencode:customers", "lines_mismatch:order_lines", "double_spend:ad_spend",
                               "reencode:pos_receipts:bom")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate stops it, naming each fault by its check
    assert run.failed_at == "validate_raw" and run.ran == ["simulate", "ingest"], run.error
    rows = _raw(settings)
    assert "have lines that do not add up" in _details(rows, "lines_match", "raw.orders")
    assert not failed(rows, "lines_match", "critical", "raw.pos_receipts")
    assert "on another scale: amounts summed twice" in _details(rows, "spend_scale", "raw.ad_spend")
    assert failed(rows, "quarantine_rate", "critical")
    batch = settings.cycle_key(CYCLE)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        log = {source: (status, error, loaded) for source, status, error, loaded in con.execute(
            "SELECT source, status, error, rows_loaded FROM raw._load_log WHERE batch = ?", [batch]).fetchall()}
        mangled = con.execute("SELECT count(*) FROM raw.customers WHERE full_name LIKE '%\ufffd%'").fetchone()[0]
    # the latin-1 file refused whole, the message naming it and the encoding; no name stored mangled
    status, error, _ = log["customers"]
    assert status == "quarantined_file" and f"customers/{batch}.csv: not UTF-8" in error, log["customers"]
    assert mangled == 0
    # the BOM is UTF-8: the header recognised, every receipt loaded, none quarantined
    status, error, loaded = log["pos_receipts"]
    assert status != "quarantined_file" and loaded and not failed(rows, "source_missing", "critical",
                                                                  "raw.pos_receipts"), log["pos_receipts"]
    receipts = settings.landing_dir / "pos_receipts" / f"{batch}.csv"
    assert receipts.read_bytes().startswith(b"\xef\xbb\xbf") and loaded == receipts.read_text("utf-8-sig").count("\n") - 1
