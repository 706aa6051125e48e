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
