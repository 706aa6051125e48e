"""The fault switches: parsing, the setting (env var and CLI flag), and determinism of what they do."""

from __future__ import annotations

import filecmp

import pandas as pd
import pytest
from pydantic import ValidationError

from campaign_loop.cli import build_parser
from campaign_loop.config import Settings
from sim.faults import Fault, FaultSpecError, active_faults, apply_to_plan, parse_fault


def test_specs_parse_into_faults() -> None:
    assert parse_fault("corrupt_type:orders.total_amount") == Fault(
        "corrupt_type", "orders", "total_amount", spec="corrupt_type:orders.total_amount")
    assert parse_fault("shift_timestamps:pos_receipts:-9@3").value == -9.0
    assert parse_fault("shift_timestamps:pos_receipts:-9@3").cycle == 3
    assert parse_fault("break_randomisation").value == 0.9
    assert parse_fault("spike_kpi:4").value == 4.0
    assert parse_fault("scale_amounts:order_lines.unit_price=100") == Fault(
        "scale_amounts", "order_lines", "unit_price", value=100.0, spec="scale_amounts:order_lines.unit_price=100")
    assert parse_fault("resend_orders:day@2").scope == "day"
    assert parse_fault("expose_holdout").value == 0.2


@pytest.mark.parametrize("spec", [
    "corrupt_type:orders", "corrupt_type:orders.nope", "corrupt_type:orders.member_id", "drop_source:shop",
    "shift_timestamps:orders", "shift_timestamps:orders:soon", "break_randomisation:1.5", "spike_kpi:0",
    "explode", "drop_source:orders@x", "scale_amounts:orders.total_amount", "scale_amounts:orders.member_id=2",
    "scale_amounts:orders.total_amount=0", "resend_orders", "resend_orders:week", "expose_holdout:0",
])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def test_the_setting_reads_a_comma_separated_env_var_and_refuses_bad_specs(monkeypatch) -> None:
    monkeypatch.setenv("CAMPAIGN_LOOP_FAULTS", "corrupt_type:orders.total_amount, drop_source:pos_receipts")
    assert Settings().faults == ("corrupt_type:orders.total_amount", "drop_source:pos_receipts")
    monkeypatch.setenv("CAMPAIGN_LOOP_FAULTS", "")
    assert Settings().faults == ()
    monkeypatch.setenv("CAMPAIGN_LOOP_FAULTS", "drop_source:nowhere")
    with pytest.raises(ValidationError, match="unknown source"):
        Settings()


def test_the_cli_has_a_faults_flag() -> None:
    args = build_parser().parse_args(["demo", "--faults", "spike_kpi,drop_source:orders@2"])
    assert args.faults == "spike_kpi,drop_source:orders@2"


def test_faults_apply_from_cycle_1_or_to_the_cycle_named() -> None:
    settings = Settings(faults=("spike_kpi", "drop_source:orders@2"))
    assert active_faults(settings, 0) == ()
    assert [f.kind for f in active_faults(settings, 1)] == ["spike_kpi"]
    assert [f.kind for f in active_faults(settings, 2)] == ["spike_kpi", "drop_source"]


def test_breaking_randomisation_moves_most_of_the_control_arm_deterministically() -> None:
    settings = Settings(faults=("break_randomisation",))
    plan = pd.DataFrame({"member_id": [f"M{i}" for i in range(1000)], "arm": ["control", "treatment"] * 500})
    broken = apply_to_plan(settings, 1, plan, active_faults(settings, 1))
    assert 0.92 < (broken["arm"] == "treatment").mean() < 0.98  # 500 + ~0.9 * 500 of 1000
    assert (plan["arm"] == "control").sum() == 500  # the caller's plan is not modified
    assert broken.equals(apply_to_plan(settings, 1, plan, active_faults(settings, 1)))


def test_a_faulty_batch_is_written_the_same_way_twice(tmp_path) -> None:
    from sim import simulate_period

    faults = ("corrupt_type:orders.total_amount", "duplicate_batch:orders", "spike_kpi", "shift_timestamps:orders:5")
    for name in ("a", "b"):
        settings = Settings(home=tmp_path / name, customers=300, history_weeks=2, faults=faults)
        simulate_period(settings, 0)
        simulate_period(settings, 1)
    a, b = tmp_path / "a" / "landing", tmp_path / "b" / "landing"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(p.as_posix().endswith("2026-01-12/resent.csv") for p in files)
    assert all(filecmp.cmp(a / p, b / p, shallow=False) for p in files)


# --- the export faults of issue 22: parsing, and what each does to a frame or a file -----------------

def test_export_fault_specs_parse() -> None:
    assert parse_fault("null_members:orders").value == 0.9
    assert parse_fault("colliding_ids:pos_receipts:0.3@2") == Fault(
        "colliding_ids", "pos_receipts", value=0.3, cycle=2, spec="colliding_ids:pos_receipts:0.3@2")
    assert parse_fault("rename_column:orders.member_id=customer_no").scope == "customer_no"
    assert parse_fault("currency_switch:orders").value == 1350.0
    assert parse_fault("drop_day:events:4").value == 4.0
    assert parse_fault("drop_optouts").source == "consents"
    assert parse_fault("ignore_consent").value == 0.1
    assert parse_fault("stale_file:orders").source == "orders"


@pytest.mark.parametrize("spec", [
    "null_members:order_lines", "null_members:orders:0", "rename_column:orders.member_id",
    "rename_column:orders.member_id=email", "rename_column:orders.nope=x", "locale_decimals",
    "colliding_ids:order_lines", "negative_quantities:orders", "currency_switch:orders:1", "currency_switch:events",
    "drop_optouts:consents", "ignore_consent:2", "truncate_file:orders:1.5", "drop_day:events:1.5",
    "drop_day:events:-1", "header_only", "future_rows:nowhere",
])
def test_bad_export_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def _frame(n: int) -> dict:
    import numpy as np
    import pyarrow as pa

    from sim.landing import Col

    return {
        "order_id": Col("str", pa.array([f"O{i}" for i in range(n)])),
        "member_id": Col("str", pa.array([f"M{i}" for i in range(n)])),
        "ordered_at": Col("ts", np.arange(n, dtype=np.int64) * 3_600 + 1_768_176_000),  # from 2026-01-12
        "total_amount": Col("cents", np.full(n, 1_000, dtype=np.int64)),
    }


def test_row_faults_change_what_they_name_and_nothing_else() -> None:
    import numpy as np

    from sim.faults import apply_to_frame

    def run(spec: str, source: str = "orders") -> dict:
        settings = Settings(faults=(spec,))
        return apply_to_frame(settings, 1, source, _frame(200), active_faults(settings, 1))

    nulled = run("null_members:orders:0.5")
    assert 60 < nulled["member_id"].mask.sum() < 140 and nulled["order_id"].mask is None
    ids = run("colliding_ids:orders:0.1")["order_id"].values.to_pylist()
    assert 5 < 200 - len(set(ids)) < 40  # ids repeated, never invented
    assert set(ids) <= {f"O{i}" for i in range(200)}
    later = run("future_rows:orders:0.1")["ordered_at"].values - _frame(200)["ordered_at"].values
    assert set(np.unique(later)) == {0, 7 * 86_400}
    switched = run("currency_switch:orders")
    assert set(switched["total_amount"].values) == {1_350_000}
    assert set(switched["currency"].values.to_pylist()) == {"KRW"}
    kept = run("drop_day:orders:2")["ordered_at"].values
    assert len(kept) == 176 and not ((kept >= 1_768_348_800) & (kept < 1_768_435_200)).any()
    assert run("null_members:pos_receipts")["member_id"].mask is None  # another source's fault


def test_consent_faults_filter_revoke_and_backdate() -> None:
    import numpy as np
    import pyarrow as pa

    from sim.faults import apply_to_frame
    from sim.landing import Col

    consents = {
        "member_id": Col("str", pa.array(["M1", "M2", "M3", "M4"])),
        "channel": Col("str", pa.array(["email", "sms", "push", "email"])),
        "status": Col("str", pa.array(["opt_in", "opt_out", "opt_in", "opt_out"])),
        "changed_at": Col("ts", np.full(4, 1_768_300_000, dtype=np.int64)),
        "source": Col("str", pa.array(["signup"] * 4)),
    }

    def run(spec: str, plan: pd.DataFrame | None = None) -> dict:
        settings = Settings(faults=(spec,))
        faults = active_faults(settings, 1)
        if plan is not None:
            apply_to_plan(settings, 1, plan, faults)
        return apply_to_frame(settings, 1, "consents", consents, faults)

    assert run("drop_optouts")["status"].values.to_pylist() == ["opt_in", "opt_in"]
    assert set(run("revoke_consents")["status"].values.to_pylist()) == {"opt_out"}
    plan = pd.DataFrame({"member_id": [f"T{i}" for i in range(100)], "arm": ["treatment"] * 100,
                         "channel": ["kakao"] * 100})
    added = run("ignore_consent:0.2", plan)
    assert 4 + 10 < len(added["member_id"]) < 4 + 35
    backdated = added["changed_at"].values[4:]
    assert set(backdated) == {1_768_176_000 - 86_400}  # the day before cycle 1 (2026-01-12) starts
    assert set(added["status"].values.to_pylist()[4:]) == {"opt_out"}


def test_file_faults_rewrite_the_written_csv(tmp_path) -> None:
    from sim.faults import after_write

    text = '"order_id","ordered_at","total_amount"\n"O1","2026-01-12T01:00:00Z","12.50"\n"O2","2026-01-12T02:00:00Z","7.25"\n'

    def run(spec: str) -> str:
        path = tmp_path / "orders" / "2026-01-12.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        settings = Settings(home=tmp_path, faults=(spec,))
        assert after_write(settings, 1, "orders", path, active_faults(settings, 1)) == []
        return path.read_text()

    assert run("header_only:orders") == text.splitlines()[0] + "\n"
    assert run("rename_column:orders.ordered_at=order_date").startswith("order_id,order_date,total_amount\n")
    assert run("locale_decimals:orders").splitlines()[1] == "O1;2026-01-12T01:00:00Z;12,50"
    cut = run("truncate_file:orders:0.6")
    assert text.startswith(cut) and not cut.endswith(("\n", '"')) and cut.count("\n") >= 1
    (tmp_path / "orders" / "2026-01-05.csv").write_text("old\n")
    assert run("stale_file:orders") == "old\n"


# --- reencode, lines_mismatch, double_spend (issue 22's kinds 24-26) --------------------------------------

@pytest.mark.parametrize("spec", [
    "reencode", "reencode:orders:utf16", "reencode:nowhere", "lines_mismatch:orders", "lines_mismatch:order_lines:0",
    "double_spend", "double_spend:orders", "double_spend:ad_spend:",
])
def test_bad_specs_of_the_newer_export_faults_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def test_newer_export_fault_specs_parse() -> None:
    assert parse_fault("reencode:customers").scope == "latin1"
    assert parse_fault("reencode:orders:bom").scope == "bom"
    assert parse_fault("lines_mismatch:pos_receipt_lines").value == 0.3
    assert parse_fault("double_spend:ad_spend").scope is None
    assert parse_fault("double_spend:ad_spend:search@2") == Fault(
        "double_spend", "ad_spend", scope="search", cycle=2, spec="double_spend:ad_spend:search@2")


def test_lines_mismatch_drops_one_line_of_a_share_of_multi_line_orders_and_double_spend_one_channel() -> None:
    import numpy as np
    import pyarrow as pa

    from sim.faults import apply_to_frame
    from sim.landing import Col

    # 100 orders: even ones with 3 lines, odd ones with 1
    order = np.repeat(np.arange(100), np.where(np.arange(100) % 2 == 0, 3, 1))
    lines = {"order_id": Col("str", pa.array([f"O{i}" for i in order])),
             "line_number": Col("int", np.ones(len(order), dtype=np.int64)),
             "unit_price": Col("cents", np.full(len(order), 500, dtype=np.int64))}
    settings = Settings(faults=("lines_mismatch:order_lines:0.5",))
    cut = apply_to_frame(settings, 1, "order_lines", lines, active_faults(settings, 1))
    counts = pd.Series(cut["order_id"].values.to_pylist()).value_counts()
    assert len(counts) == 100  # every order keeps a line
    assert set(counts[[f"O{i}" for i in range(1, 100, 2)]]) == {1}  # single-line orders untouched
    assert 12 < (counts[[f"O{i}" for i in range(0, 100, 2)]] == 2).sum() < 38  # ~half of 50 lost one line
    assert apply_to_frame(settings, 1, "pos_receipt_lines", lines, active_faults(settings, 1)) == lines

    spend = {"channel": Col("str", pa.array(["search", "social", "search", "social"])),
             "spend": Col("cents", np.array([100, 900, 300, 50], dtype=np.int64)),
             "impressions": Col("int", np.array([10, 10, 10, 10], dtype=np.int64))}
    for spec, expected in (("double_spend:ad_spend", [100, 1800, 300, 100]),
                           ("double_spend:ad_spend:search", [200, 900, 600, 50])):
        settings = Settings(faults=(spec,))
        doubled = apply_to_frame(settings, 1, "ad_spend", dict(spend), active_faults(settings, 1))
        assert list(doubled["spend"].values) == expected
        assert list(doubled["impressions"].values) == [10, 10, 10, 10]


def test_reencode_writes_latin1_with_accented_names_or_a_bom(tmp_path) -> None:
    from sim.faults import after_write

    rows = "".join(f"M{i},Kim Minjun {i},Seoul\n" for i in range(40))
    text = "member_id,full_name,city\n" + rows

    def run(spec: str) -> bytes:
        path = tmp_path / "customers" / "2026-01-12.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        settings = Settings(home=tmp_path, faults=(spec,))
        assert after_write(settings, 1, "customers", path, active_faults(settings, 1)) == []
        return path.read_bytes()

    assert run("reencode:customers:bom") == b"\xef\xbb\xbf" + text.encode()
    latin = run("reencode:customers")
    with pytest.raises(UnicodeDecodeError):
        latin.decode("utf-8")
    decoded = latin.decode("latin-1")
    assert 3 <= decoded.count("K\u00edm Minjun") <= 25 and decoded.count("S\u00e9oul") == decoded.count("K\u00edm")
    assert decoded.replace("\u00ed", "i").replace("\u00e9", "e") == text  # only the accents differ
