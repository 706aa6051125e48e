"""Proof (issue 6): every injected fault is caught by the gate with the right severity, and a critical one
leaves what users and the next campaign see untouched (published marts, MLflow champions, the plans).

Each test copies the baseline (cycle 0 run through every step), switches one fault on, runs cycle 1 in
the DAG's order until a gate raises ``GateFailed`` (or to the end), and compares.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.faults.cycle import failed, landing_files, run_cycle, snapshot, validation_rows

pytestmark = pytest.mark.slow

CYCLE = 1
UP_TO_RAW = ["simulate", "ingest"]
UP_TO_MARTS = ["simulate", "ingest", "validate_raw", "dbt"]


def _cid(settings) -> str:
    return settings.cycle_key(CYCLE)


def _assert_nothing_downstream_changed(settings, before) -> None:
    after = snapshot(settings)
    assert after.published == before.published, "published marts changed"
    assert after.publications == before.publications, "a publication was recorded"
    assert after.champions == before.champions, "an MLflow champion moved"
    assert after.registered == before.registered, "a model version was registered"
    assert after.plans == before.plans, "a plan file was written or changed"


# --- the control: the same cycle without a fault passes, so every failure below is the fault's doing ---

def test_without_a_fault_cycle_1_passes_both_gates_and_publishes(faulty_world) -> None:
    # Given the baseline and no fault
    settings, before = faulty_world()
    # When cycle 1 runs to publication
    run = run_cycle(settings, CYCLE, through="publish")
    # Then no gate stops it and the cycle is published
    assert run.failed_at is None, run.error
    rows = validation_rows(settings, _cid(settings))
    assert not [r for r in rows if r["severity"] == "critical" and not r["success"]]
    assert snapshot(settings).publications == before.publications + 1


# --- critical faults: the cycle stops at the gate, nothing downstream runs or changes -------------------

def test_corrupt_type_quarantines_past_the_threshold_and_stops_at_the_raw_gate(faulty_world) -> None:
    # Given text in a quarter of the orders' decimal total_amount
    settings, before = faulty_world("corrupt_type:orders.total_amount")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate fails it on the orders file's quarantine rate, critically
    assert run.failed_at == "validate_raw" and run.ran == UP_TO_RAW, run.ran
    [bad] = [r for r in failed(validation_rows(settings, _cid(settings), "raw"), "quarantine_rate", "critical")]
    assert bad["observed"] > settings.quarantine_rate_max
    [orders] = [r for r in run.outputs["ingest"]["report"] if r["source"] == "orders" and r["batch"] == _cid(settings)]
    assert orders["rows_quarantined"] > settings.quarantine_rate_max * orders["rows_landed"]
    _assert_nothing_downstream_changed(settings, before)


def test_dropping_every_transaction_source_stops_at_the_raw_gate(faulty_world) -> None:
    # Given neither online orders nor store receipts delivered
    settings, before = faulty_world("drop_source:orders", "drop_source:pos_receipts")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then no file of either source landed and the raw gate fails on "transactions present"
    names = {p.parent.name for p in landing_files(settings, _cid(settings))}
    assert "orders" not in names and "pos_receipts" not in names and "order_lines" in names
    assert run.failed_at == "validate_raw" and run.ran == UP_TO_RAW
    assert failed(validation_rows(settings, _cid(settings), "raw"), "transactions_present", "critical")
    _assert_nothing_downstream_changed(settings, before)


def test_timestamps_shifted_into_the_future_stop_at_the_raw_gate(faulty_world) -> None:
    # Given every orders timestamp moved 48 hours later (a time-zone or clock fault)
    settings, before = faulty_world("shift_timestamps:orders:48")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate finds orders after the batch end
    assert run.failed_at == "validate_raw" and run.ran == UP_TO_RAW
    rows = failed(validation_rows(settings, _cid(settings), "raw"), "not_in_future", "critical", "raw.orders")
    assert [r["column"] for r in rows] == ["ordered_at"]
    _assert_nothing_downstream_changed(settings, before)


def test_broken_randomisation_is_a_sample_ratio_mismatch_at_the_marts_gate(faulty_world) -> None:
    # Given the sender contacted most of the designed holdout as treatment
    settings, before = faulty_world("break_randomisation")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw batch passes, dbt builds, and the marts gate fails on sample-ratio mismatch
    assert run.failed_at == "validate_marts" and run.ran == UP_TO_MARTS, run.error
    rows = failed(validation_rows(settings, _cid(settings), "marts"), "srm", "critical")
    assert rows and rows[0]["observed"] < rows[0]["threshold"]
    _assert_nothing_downstream_changed(settings, before)


# --- warning faults: recorded, and the cycle goes on ----------------------------------------------------

def test_a_duplicated_batch_is_a_warning_and_staging_dedupes_it(faulty_world) -> None:
    # Given the orders batch delivered twice (a re-export under a second name)
    settings, before = faulty_world("duplicate_batch:orders")
    # When cycle 1 runs to publication
    run = run_cycle(settings, CYCLE, through="publish")
    # Then both files loaded, the raw gate warns that every key is duplicated, and the cycle is published
    cid = _cid(settings)
    orders = settings.landing_dir / "orders"
    assert sorted(p.relative_to(orders).as_posix() for p in orders.rglob("*") if p.is_file() and cid in str(p)) == [
        f"{cid}.csv", f"{cid}/resent.csv"]
    assert run.failed_at is None, run.error
    [dup] = failed(validation_rows(settings, cid, "raw"), "duplicate_rate", "warning", "raw.orders")
    assert dup["observed"] > 0.95
    assert snapshot(settings).publications == before.publications + 1
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        raw, published = con.execute(
            "select (select count(*) from raw.orders where _batch = ?), "
            "(select count(*) from published.fct_orders where sales_channel = 'online' "
            " and ordered_at >= ? and ordered_at < ?)",
            [cid, settings.cycle_start(CYCLE), settings.cycle_start(CYCLE + 1)]).fetchone()
    assert published < raw * 0.6  # each order once


def test_a_revenue_spike_is_a_volume_anomaly_and_a_kpi_alert(faulty_world) -> None:
    # Given order and receipt amounts multiplied by 3 (inside the raw gate's scale band of 1/5..5x: a
    # spike that may be real, e.g. a sale, is for the marts' anomaly check and the KPI alerts to report)
    settings, before = faulty_world("spike_kpi:3")
    # When cycle 1 runs to publication
    run = run_cycle(settings, CYCLE, through="publish")
    # Then the marts gate records a revenue anomaly (warning), the KPI alert fires, and the cycle goes on
    assert run.failed_at is None, run.error
    [anomaly] = failed(validation_rows(settings, _cid(settings), "marts"), "anomaly", "warning", "marts.fct_orders")
    assert anomaly["column"] == "revenue"
    assert any("revenue" in message for message in run.outputs["kpi_alerts"]["alerts"])
    assert snapshot(settings).publications == before.publications + 1


# --- what changes decisions (issue 22): critical at the raw gate, before dbt ------------------------------

def _stopped_at_raw(settings, before, run, check: str, table: str) -> list[dict]:
    assert run.failed_at == "validate_raw" and run.ran == UP_TO_RAW, (run.ran, run.error)
    rows = failed(validation_rows(settings, _cid(settings), "raw"), check, "critical", table)
    assert rows, [r for r in validation_rows(settings, _cid(settings), "raw") if r["check"] == check]
    _assert_nothing_downstream_changed(settings, before)
    return rows


@pytest.mark.parametrize("spec, table, low, high", [
    ("scale_amounts:orders.total_amount=100", "raw.orders", 50, 200),
    ("scale_amounts:order_lines.unit_price=100", "raw.order_lines", 50, 200),
    ("spike_kpi", "raw.orders", 5, 20),  # x10: the next plan would expect 10x the revenue
])
def test_amounts_on_another_scale_stop_at_the_raw_gate(faulty_world, spec, table, low, high) -> None:
    # Given one amount column of the batch multiplied (cents sent as units, a currency slip)
    settings, before = faulty_world(spec)
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate compares the batch's median with the published history's and stops the cycle
    [row] = _stopped_at_raw(settings, before, run, "scale_shift", table)
    assert low < row["observed"] < high and row["threshold"] == 5


@pytest.mark.parametrize("scope, share", [("day", 0.05), ("all", 0.45)])
def test_orders_resent_under_new_ids_stop_at_the_raw_gate(faulty_world, scope, share) -> None:
    # Given a day's (or all) orders and receipts re-landed under new ids (same customer, time, total)
    settings, before = faulty_world(f"resend_orders:{scope}")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate finds them equal by content to already-loaded documents and stops the cycle
    rows = _stopped_at_raw(settings, before, run, "content_duplicates", None)
    assert {r["table"] for r in rows} == {"raw.orders", "raw.pos_receipts"}
    assert all(r["observed"] > share for r in rows), rows


def test_a_contacted_holdout_stops_at_the_raw_gate(faulty_world) -> None:
    # Given a fifth of the holdout sent to, with delivered and open events
    settings, before = faulty_world("expose_holdout")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate finds control-arm members with a sent_at and with delivery events
    rows = _stopped_at_raw(settings, before, run, "holdout_exposure", None)
    assert {r["table"] for r in rows} == {"raw.campaign_sends", "raw.campaign_events"}
    assert all(r["observed"] >= 1 for r in rows)


def test_orders_shifted_into_a_published_cycle_are_a_restatement(faulty_world) -> None:
    # Given every order timestamp moved 10 days back, into the cycles already published
    settings, before = faulty_world("shift_timestamps:orders:-240")
    # When cycle 1 runs
    run = run_cycle(settings, CYCLE)
    # Then the raw gate refuses to rewrite their published revenue
    rows = _stopped_at_raw(settings, before, run, "restatement", "raw.orders")
    assert any(settings.cycle_key(0) in r["details"] for r in rows)
    assert all(r["observed"] > r["threshold"] for r in rows)


def test_an_approved_restatement_passes_and_is_recorded(faulty_world) -> None:
    # Given the same shift, and the restated cycles approved by name
    settings, _ = faulty_world("shift_timestamps:orders:-240")
    weeks = (settings.cycle_key(-1), settings.cycle_key(0))
    approved = settings.model_copy(update={"approve_restatement": weeks})
    # When cycle 1 runs to the raw gate
    run = run_cycle(approved, CYCLE, through="validate_raw")
    # Then the restatement passes and each approved change is an audit row
    assert run.failed_at is None, run.error
    rows = [r for r in validation_rows(settings, _cid(settings), "raw") if r["check"] == "restatement"]
    assert rows and all(r["success"] and "approved restatement" in r["details"] for r in rows)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        audit = con.execute("select restated_cycle_id, revenue_change from audit.restatement_approvals "
                            "where cycle_id = ? order by 1", [_cid(settings)]).fetchall()
    assert [w for w, _ in audit] == sorted(weeks) and all(change > 0 for _, change in audit)
