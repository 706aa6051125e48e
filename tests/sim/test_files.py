"""The landing batch: determinism, idempotence, the contract's columns, timestamp formats, dirt."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from campaign_loop.config import Settings
from ingest.contract import load_contract
from sim import simulate_period
from tests.sim.conftest import run_cycles

TIMESTAMP_PATTERNS = {
    "iso_z": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
    "iso_offset": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00",
    "naive_local": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
    "epoch_s": r"\d{10}",
    "epoch_ms": r"\d{13}",
}


def _landing_bytes(settings: Settings) -> dict[str, bytes]:
    return {str(p.relative_to(settings.landing_dir)): p.read_bytes() for p in sorted(settings.landing_dir.rglob("*.*"))}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")


def test_given_the_same_seed_when_simulating_twice_then_files_are_identical(tmp_path: Path) -> None:
    a, _ = run_cycles(tmp_path / "a", cycles=2, customers=500)
    b, _ = run_cycles(tmp_path / "b", cycles=2, customers=500)
    assert _landing_bytes(a) == _landing_bytes(b)


def test_given_another_seed_when_simulating_then_files_differ(tmp_path: Path) -> None:
    a, _ = run_cycles(tmp_path / "a", cycles=1, customers=500)
    b, _ = run_cycles(tmp_path / "b", cycles=1, customers=500, seed=7)
    assert _landing_bytes(a)["orders/2026-01-05.csv"] != _landing_bytes(b)["orders/2026-01-05.csv"]


def test_given_a_simulated_cycle_when_rerun_then_files_and_truth_are_byte_identical(tmp_path: Path) -> None:
    settings, _ = run_cycles(tmp_path, cycles=3, customers=500)
    before = _landing_bytes(settings)
    truth = (settings.truth_dir / "outcomes" / "2026-01-12.parquet").read_bytes()
    simulate_period(settings, 1)
    assert _landing_bytes(settings) == before
    assert (settings.truth_dir / "outcomes" / "2026-01-12.parquet").read_bytes() == truth


def test_given_no_previous_state_when_simulating_cycle_3_then_a_clear_error(tmp_path: Path) -> None:
    settings, _ = run_cycles(tmp_path, cycles=1, customers=500)
    with pytest.raises(FileNotFoundError, match="after cycle 2"):
        simulate_period(settings, 3)


def test_given_any_world_when_landing_then_columns_are_contract_columns(default_world) -> None:
    settings, summaries = default_world
    contract = load_contract()
    for summary in summaries:
        for path in summary.files:
            source = contract.source(path.parent.name)
            header = next(csv.reader(path.open()))
            extra = set(header) - set(source.columns)
            assert len(extra) <= 1, (path, extra)  # at most the one unexpected column dirt adds
            assert set(header) & set(source.columns), path
    for source in ("customers", "consents", "events", "orders", "order_lines", "pos_receipts",
                   "pos_receipt_lines", "products", "campaigns", "campaign_sends", "campaign_events", "ad_spend"):
        assert (settings.landing_dir / source / "2026-01-05.csv").exists(), source


def test_given_dirt_0_when_landing_then_files_are_clean(clean_world) -> None:
    settings, summaries = clean_world
    contract = load_contract()
    for summary in summaries:
        for path in summary.files:
            source = contract.source(path.parent.name)
            rows = list(csv.reader(path.open()))
            header, body = rows[0], rows[1:]
            assert set(header) <= set(source.columns), path
            assert all(len(r) == len(header) for r in body), path
            df = pd.DataFrame(body, columns=header)
            for col in source.required_columns:
                if col in df:
                    assert (df[col] != "").all(), (path, col)
            assert not df.duplicated().any(), path
            if source.name in ("events", "orders", "order_lines", "pos_receipts", "campaign_sends", "reviews"):
                assert not df.duplicated(list(source.key)).any(), path
            for col in source.columns.values():
                if col.type == "decimal" and col.name in df:
                    values = df[col.name][df[col.name] != ""]
                    assert values.str.fullmatch(r"\d+(\.\d+)?").all(), (path, col.name)


def test_given_dirt_when_landing_then_every_kind_of_dirt_appears(dirty_world) -> None:
    settings, summaries = dirty_world
    day = "2026-01-12"
    lines = (settings.landing_dir / "events" / f"{day}.csv").read_text().splitlines()
    n_fields = len(next(csv.reader(lines[:1])))
    events = _read(settings.landing_dir / "events" / f"{day}.csv")
    assert any(len(r) != n_fields for r in csv.reader(lines)), "malformed rows"
    assert events["event_id"].duplicated().any(), "duplicates"
    assert (events["event_id"] == "").any() or (events["occurred_at"] == "").any(), "missing required"
    assert events["cookie_id"].isin(["unknown", "0"]).any(), "junk identifiers"
    assert (events["occurred_at"].str[:10] < day).any(), "late events from the previous cycle"
    orders = _read(settings.landing_dir / "orders" / f"{day}.csv")
    formats = {name for name, pattern in TIMESTAMP_PATTERNS.items() if orders["ordered_at"].str.fullmatch(pattern).any()}
    assert {"iso_offset"} < formats, "mixed timestamp formats"
    bad = pd.concat([_read(p)["total_amount"] for p in (settings.landing_dir / "orders").glob("*.csv")]
                    + [_read(p)["total_amount"] for p in (settings.landing_dir / "pos_receipts").glob("*.csv")])
    assert bad.str.contains("x").any(), "non-numeric amounts"
    contract = load_contract()
    extra = [p for s in summaries for p in s.files
             if set(next(csv.reader(p.open()))) - set(contract.source(p.parent.name).columns)]
    assert extra, "unexpected extra column"


def test_given_clean_files_when_reading_timestamps_then_each_source_uses_its_declared_format(clean_world) -> None:
    settings, _ = clean_world
    expected = {"orders": ("ordered_at", "iso_offset"), "pos_receipts": ("purchased_at", "naive_local"),
                "events": ("occurred_at", "iso_z"), "campaign_events": ("occurred_at", "epoch_ms"),
                "customers": ("updated_at", "iso_z"), "consents": ("changed_at", "iso_z")}
    for source, (column, fmt) in expected.items():
        values = _read(settings.landing_dir / source / "2026-01-12.csv")[column]
        assert values.str.fullmatch(TIMESTAMP_PATTERNS[fmt]).all(), source


def test_given_parquet_format_when_landing_then_parquet_files_with_contract_columns(tmp_path: Path) -> None:
    settings, summaries = run_cycles(tmp_path, cycles=1, customers=300, file_format="parquet", dirt=0.0)
    orders = pd.read_parquet(settings.landing_dir / "orders" / "2026-01-05.parquet")
    assert set(orders.columns) <= set(load_contract().source("orders").columns)
    assert len(orders) == summaries[0].rows["orders"]


def test_given_an_ad_hoc_check_when_listing_files_then_names_are_cycle_ids(default_world) -> None:
    settings, summaries = default_world
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d\.csv", p.name) for s in summaries for p in s.files)
    assert summaries[1].cycle_id == "2026-01-12"
