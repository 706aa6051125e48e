"""The raw gate on a real (small) simulated batch: clean passes, each fault is caught with its severity."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from campaign_loop.config import Settings
from expectations.gate import GateFailed, GateResult, require_pass, run_gate
from expectations.publish import _PUBLICATIONS_DDL
from expectations.raw import empty_week
from ingest import ingest
from tests.expectations.conftest import CYCLE

NEXT, LATER = "2026-01-19", "2026-01-26"  # the cycles after the world's two


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


def test_a_warehouse_never_ingested_fails_closed(tmp_path: Path) -> None:
    result = run_gate(Settings(home=tmp_path), CYCLE, "raw")

    assert not result.passed
    [check] = failed(result, "transactions_present")
    assert check.severity == "critical" and "nothing was ever ingested" in check.details


def _publish_everything_so_far(sql) -> None:
    # What publish() records after cycles 0 and 1 passed: their batches are settled.
    sql("CREATE SCHEMA IF NOT EXISTS audit")
    sql(_PUBLICATIONS_DDL)
    sql("INSERT INTO audit.publications VALUES (?, NULL, 1, ?)", [CYCLE, datetime.now(UTC).replace(tzinfo=None)])


def _land(home: Settings, relpath: str, text: str) -> None:
    path = home.landing_dir / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


ORDERS = "order_id,member_id,ordered_at,total_amount\n"


# About the fixture world's median order: the raw gate's scale_shift compares a batch's amounts with the
# published history's, and 10 would be a seventh of it (another scale).
def _orders(batch: str, prefix: str, amount: str = "70") -> str:
    return ORDERS + "".join(f"{prefix}{i},m{i},{batch} 1{i % 10}:00:00,{amount}\n" for i in range(40))


def _receipts(batch: str, prefix: str) -> str:
    return "receipt_id,store_id,member_id,purchased_at,total_amount\n" + "".join(
        f"{prefix}R{i},S1,m{i},{batch} 1{i % 10}:{i:02d}:00,50\n" for i in range(40))


def test_an_empty_week_passes_with_a_warning(home: Settings, sql) -> None:
    _publish_everything_so_far(sql)

    # No batch at all for the cycle: the week the shops were closed.
    nothing = run_gate(home, NEXT, "raw")
    # A batch whose transaction export has a header and no rows.
    _land(home, f"orders/{LATER}.csv", ORDERS)
    ingest(home)
    header_only = run_gate(home, LATER, "raw")

    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        # The marts gate's freshness check reads the same verdict: stale marts are expected that week.
        assert empty_week(con, NEXT) and empty_week(con, LATER) and not empty_week(con, CYCLE)
    for result, says in ((nothing, "no file landed"), (header_only, "hold no rows")):
        assert result.passed, [c.describe() for c in result.critical_failures]
        [check] = failed(result, "empty_week")
        assert check.severity == "warning" and says in check.details and "empty week" in check.details
        assert result.warnings == (check,)


def test_a_rejected_batch_blocks_the_next_cycle_until_a_correction_supersedes_it(home: Settings, sql) -> None:
    _publish_everything_so_far(sql)
    # Cycle NEXT lands an orders export with a broken amount column: the gate rejects it. Each batch also
    # has its store receipts: a week with one channel's export missing is itself critical (source_missing).
    _land(home, f"orders/{NEXT}.csv", _orders(NEXT, "N", amount="12,3x"))
    _land(home, f"pos_receipts/{NEXT}.csv", _receipts(NEXT, "N"))
    ingest(home)
    assert not run_gate(home, NEXT, "raw").passed

    # The next cycle's own batch is clean, but the rejected one was never published: it still blocks.
    _land(home, f"orders/{LATER}.csv", _orders(LATER, "L"))
    _land(home, f"pos_receipts/{LATER}.csv", _receipts(LATER, "L"))
    ingest(home)
    blocked = run_gate(home, LATER, "raw")

    assert not blocked.passed
    [check] = failed(blocked, "quarantine_rate", "raw._load_log")
    assert check.severity == "critical" and check.details.startswith(f"batch {NEXT}")

    # The retailer re-sends the batch's file corrected: the gate re-judges the batch on its live rows.
    _land(home, f"orders/{NEXT}.csv", _orders(NEXT, "N"))
    ingest(home)
    cleared = run_gate(home, LATER, "raw")

    assert cleared.passed, [c.describe() for c in cleared.critical_failures]
    judged = [c for c in cleared.checks if c.check == "transactions_present" and c.success]
    assert {c.details for c in judged} == {f"batch {NEXT}", f"batch {LATER}"}


def test_a_published_batch_is_not_judged_again(home: Settings, sql) -> None:
    sql("UPDATE raw.orders SET total_amount = NULL WHERE _batch = ?", [CYCLE])
    assert not run_gate(home, NEXT, "raw").passed  # unpublished: the broken batch is judged with NEXT's

    _publish_everything_so_far(sql)

    result = run_gate(home, NEXT, "raw")
    assert result.passed and [c.check for c in result.failures] == ["empty_week"]


def test_a_bad_stage_or_cycle_is_refused(home: Settings) -> None:
    with pytest.raises(ValueError, match="stage"):
        run_gate(home, CYCLE, "training")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run_gate(home, "last-week", "raw")
