"""A retailer's home, history import and the cycles it may run, without Airflow (tests/own_data runs them)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from campaign_loop.config import load_settings, settings_file
from campaign_loop.own_data import OwnDataError, cycles_to_run, import_history, init_home
from ingest import ingest


def home_settings(home: Path, **overrides: object):
    return load_settings(home=home, **overrides)


def test_the_settings_file_sits_below_the_environment_and_flags(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file(tmp_path).write_text("CAMPAIGN_LOOP_BUDGET=500\nCAMPAIGN_LOOP_CONTACT_CAP=2\nCAMPAIGN_LOOP_SEED=3\n")
    monkeypatch.setenv("CAMPAIGN_LOOP_CONTACT_CAP", "3")
    monkeypatch.delenv("CAMPAIGN_LOOP_BUDGET", raising=False)
    monkeypatch.delenv("CAMPAIGN_LOOP_SEED", raising=False)
    settings = home_settings(tmp_path, seed=9)
    assert (settings.budget, settings.contact_cap, settings.seed) == (500, 3, 9)


def test_a_misspelt_key_in_the_settings_file_is_an_error(tmp_path: Path) -> None:
    settings_file(tmp_path).write_text("CAMPAIGN_LOOP_BUDGETT=500\n")
    with pytest.raises(ValidationError, match="campaign_loop_budgett"):
        home_settings(tmp_path)


def test_init_writes_a_home_and_never_overwrites_one(tmp_path: Path) -> None:
    written = init_home(tmp_path / "shop")
    assert settings_file(tmp_path / "shop") in written
    assert home_settings(tmp_path / "shop").demo is False
    assert (tmp_path / "shop" / "landing" / "orders").is_dir()
    assert "order_lines" in (tmp_path / "shop" / "README.md").read_text()
    with pytest.raises(OwnDataError, match="exists already"):
        init_home(tmp_path / "shop")


@pytest.fixture
def export(tmp_path: Path) -> dict[str, Path]:
    orders = pd.DataFrame({
        "order_id": ["1", "2", "3", "4", "C5"],
        "ordered_at": ["2011-01-05 10:00:00", "2011-01-09 23:30:00", "2011-01-10 00:10:00", "not a time",
                       "20110118"],
        "member_id": ["a", "", "b", "c", "a"],
        "total_amount": ["10.00", "5.00", "7.50", "1.00", "-10.00"],
        "order_type": ["sale", "sale", "sale", "sale", "return"],
    })
    lines = pd.DataFrame({"order_id": ["1", "3", "C5", "99"], "line_number": [1, 1, 1, 1],
                          "product_id": ["p"] * 4, "quantity": [1, 1, -1, 1], "unit_price": ["10"] * 4})
    customers = pd.DataFrame({"member_id": ["a", "b"], "updated_at": ["2009-03-01", "2011-01-11"]})
    paths = {}
    for name, frame in (("orders", orders), ("order_lines", lines), ("customers", customers)):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def batches(home: Path, source: str) -> dict[str, list[str]]:
    folder = home / "landing" / source
    return {batch.name: sorted(pd.read_csv(batch / f"{source}.csv", dtype=str)[
        "order_id" if source != "customers" else "member_id"]) for batch in sorted(folder.iterdir())}


def test_import_history_lands_one_batch_per_week_dated_by_each_row(tmp_path: Path, export: dict[str, Path]) -> None:
    home = tmp_path / "shop"
    init_home(home)
    result = import_history(home_settings(home), export, explicit_start=False)
    assert result.start_date == date(2011, 1, 3) and result.start_date_written
    assert home_settings(home).start_date == date(2011, 1, 3)  # written to the settings file
    # 2011-01-09 23:30 UTC is still the first week; the unparseable time lands first, for ingest to quarantine.
    assert batches(home, "orders") == {"2011-01-03": ["1", "2", "4"], "2011-01-10": ["3"], "2011-01-17": ["C5"]}
    # Lines follow their order; an orphan line lands first; an old CRM profile lands with cycle 0.
    assert batches(home, "order_lines") == {"2011-01-03": ["1", "99"], "2011-01-10": ["3"], "2011-01-17": ["C5"]}
    assert batches(home, "customers") == {"2011-01-03": ["a"], "2011-01-10": ["b"]}
    orders = next(i for i in result.sources if i.source == "orders")
    assert (orders.rows, orders.undated_rows) == (5, 1)


def test_an_explicit_calendar_is_kept_and_older_rows_land_with_cycle_0(tmp_path: Path,
                                                                        export: dict[str, Path]) -> None:
    home = tmp_path / "shop"
    init_home(home)
    settings = home_settings(home, start_date=date(2011, 1, 10))
    result = import_history(settings, {"orders": export["orders"]}, explicit_start=True)
    assert not result.start_date_written
    assert "\nCAMPAIGN_LOOP_START_DATE=" not in settings_file(home).read_text()  # only the template's comment
    assert batches(home, "orders") == {"2011-01-10": ["1", "2", "3", "4"], "2011-01-17": ["C5"]}
    assert result.sources[0].before_start_rows == 2


def test_lines_need_their_orders_in_the_same_import(tmp_path: Path, export: dict[str, Path]) -> None:
    with pytest.raises(OwnDataError, match="order_lines is dated by its orders"):
        import_history(home_settings(tmp_path), {"order_lines": export["order_lines"]}, explicit_start=False)


def test_the_cycles_a_run_may_take_are_checked_against_the_landed_data(tmp_path: Path,
                                                                        export: dict[str, Path]) -> None:
    home = tmp_path / "shop"
    init_home(home)
    import_history(home_settings(home), export, explicit_start=False)
    settings = home_settings(home)
    assert cycles_to_run(settings, None, None) == [2]  # a new warehouse: the newest landed batch
    assert cycles_to_run(settings, date(2011, 1, 3), None) == [0, 1, 2]
    with pytest.raises(OwnDataError, match="before start_date 2011-01-03"):
        cycles_to_run(settings, date(2010, 12, 27), None)
    with pytest.raises(OwnDataError, match="not a cycle start.*2011-01-03 and 2011-01-10"):
        cycles_to_run(settings, None, date(2011, 1, 5))
    with pytest.raises(OwnDataError, match="no data yet: the newest landed batch is 2011-01-17"):
        cycles_to_run(settings, None, date(2011, 1, 24))
    with pytest.raises(OwnDataError, match="after --to"):
        cycles_to_run(settings, date(2011, 1, 17), date(2011, 1, 10))
    (home / "landing" / "orders" / "export.csv").write_text("member_id,ordered_at,total_amount\n")
    with pytest.raises(OwnDataError, match="batch 'export' is not a cycle's start date"):
        cycles_to_run(settings, None, None)


def test_a_cycle_ingests_no_batch_of_a_later_cycle(tmp_path: Path, export: dict[str, Path]) -> None:
    home = tmp_path / "shop"
    init_home(home)
    import_history(home_settings(home), export, explicit_start=False)
    first = ingest(home_settings(home), through="2011-01-03")
    assert {r.batch for r in first.files} == {"2011-01-03"}
    later = ingest(home_settings(home), through="2011-01-17")
    assert {r.batch for r in later.files if r.status == "loaded"} == {"2011-01-10", "2011-01-17"}
