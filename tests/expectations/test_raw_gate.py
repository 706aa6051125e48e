"""The raw gate on a real (small) simulated batch: clean passes, each fault is caught with its severity."""

from __future__ import annotations

import duckdb
import pytest

from campaign_loop.config import Settings
from expectations.gate import GateFailed, GateResult, require_pass, run_gate
from tests.expectations.conftest import CYCLE


def failed(result: GateResult, check: str, table: str | None = None) -> list:
    return [c for c in result.failures if c.check == check and (table is None or c.table == table)]


def test_a_clean_batch_passes_and_lands_in_the_audit_table(home: Settings) -> None:
    result = run_gate(home, CYCLE, "raw")

    assert result.passed, [c.describe() for c in result.failures]
    assert result.failures == ()
    assert {"schema", "not_null", "accepted_values", "range", "not_in_future", "duplicate_rate",
            "quarantine_rate", "transactions_present"} <= {c.check for c in result.checks}
    assert result.data_docs.name == "index.html" and result.data_docs.exists()
    assert str(home.root) in str(result.data_docs)
    with duckdb.connect(str(home.warehouse_path)) as con:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT validation_result_id) FROM audit.validation_results "
            "WHERE cycle_id = ? AND stage = 'raw'", [CYCLE]).fetchone()
    assert rows == (len(result.checks), 1)

    again = run_gate(home, CYCLE, "raw")  # append-only: a rerun adds its own rows
    with duckdb.connect(str(home.warehouse_path)) as con:
        total = con.execute("SELECT count(*) FROM audit.validation_results").fetchone()[0]
    assert total == len(result.checks) + len(again.checks)
    assert require_pass(again) is again


def test_a_column_with_the_wrong_type_is_critical(home: Settings, sql) -> None:
    sql("ALTER TABLE raw.orders ALTER total_amount TYPE VARCHAR")

    result = run_gate(home, CYCLE, "raw")

    assert not result.passed
    [schema] = failed(result, "schema", "raw.orders")
    assert schema.severity == "critical" and "total_amount:VARCHAR" in schema.details
    with pytest.raises(GateFailed, match="schema"):
        require_pass(result)


def test_an_all_null_required_column_is_critical(home: Settings, sql) -> None:
    sql("UPDATE raw.pos_receipts SET store_id = NULL WHERE _batch = ?", [CYCLE])

    result = run_gate(home, CYCLE, "raw")

    assert not result.passed
    [check] = failed(result, "not_null", "raw.pos_receipts")
    assert check.column == "store_id" and check.severity == "critical" and check.observed == 1.0


def test_a_dropped_source_without_orders_nor_receipts_is_critical(home: Settings, sql) -> None:
    for source in ("orders", "pos_receipts"):
        sql(f"DELETE FROM raw.{source} WHERE _batch = ?", [CYCLE])
        sql("DELETE FROM raw._load_log WHERE source = ? AND batch = ?", [source, CYCLE])

    result = run_gate(home, CYCLE, "raw")

    assert not result.passed
    [check] = failed(result, "transactions_present")
    assert check.severity == "critical" and check.observed == 0


def test_receipts_alone_are_enough(home: Settings, sql) -> None:
    sql("DELETE FROM raw.orders WHERE _batch = ?", [CYCLE])
    sql("DELETE FROM raw._load_log WHERE source = 'orders' AND batch = ?", [CYCLE])

    assert run_gate(home, CYCLE, "raw").passed


def test_a_duplicated_batch_is_a_warning(home: Settings, sql) -> None:
    sql("INSERT INTO raw.orders SELECT * FROM raw.orders WHERE _batch = ?", [CYCLE])

    result = run_gate(home, CYCLE, "raw")

    assert result.passed  # staging dedupes; the gate warns, it does not stop the cycle
    [check] = failed(result, "duplicate_rate", "raw.orders")
    assert check.severity == "warning" and check.observed == 1.0 and check.threshold == pytest.approx(0.05)


def test_timestamps_in_the_future_are_critical(home: Settings, sql) -> None:
    sql("UPDATE raw.events SET occurred_at = occurred_at + INTERVAL 9 DAY WHERE _batch = ?", [CYCLE])

    result = run_gate(home, CYCLE, "raw")

    assert not result.passed
    [check] = failed(result, "not_in_future", "raw.events")
    assert check.column == "occurred_at" and check.severity == "critical" and check.observed > 0.5


def test_a_file_quarantining_too_many_rows_is_critical(home: Settings, sql) -> None:
    sql("UPDATE raw._load_log SET rows_quarantined = rows_in_file // 4 WHERE source = 'events' AND batch = ?", [CYCLE])

    result = run_gate(home, CYCLE, "raw")

    assert not result.passed
    [check] = failed(result, "quarantine_rate", "raw._load_log")
    assert check.severity == "critical" and check.threshold == home.quarantine_rate_max


def test_a_cycle_never_ingested_fails_closed(home: Settings) -> None:
    result = run_gate(home, "2026-03-02", "raw")

    assert not result.passed
    assert failed(result, "transactions_present")


def test_a_bad_stage_or_cycle_is_refused(home: Settings) -> None:
    with pytest.raises(ValueError, match="stage"):
        run_gate(home, CYCLE, "training")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run_gate(home, "last-week", "raw")
