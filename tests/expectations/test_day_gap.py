"""The day_gap check tells a lost day's export from a closed business (expectations.deliveries)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from campaign_loop.config import Settings
from expectations.deliveries import check_day_gap

BATCH = "2011-03-07"  # a Monday, nine weeks after the history starts
SOURCES = {"orders": "ordered_at", "events": "occurred_at"}
SEVERITY = {"orders": "critical", "events": "warning"}


def _warehouse(missing: dict[str, set[date]]) -> duckdb.DuckDBPyConnection:
    """Eight weeks of history and the batch's week, 40 rows a day per source but the ``missing`` days."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw._load_log (file_hash VARCHAR, superseded_by VARCHAR)")
    con.execute("INSERT INTO raw._load_log VALUES ('h', NULL)")
    first = date.fromisoformat(BATCH) - timedelta(weeks=8)
    for source, at in SOURCES.items():
        con.execute(f"CREATE TABLE raw.{source} ({at} TIMESTAMP, _batch VARCHAR, _file_hash VARCHAR)")
        rows = pd.DataFrame(
            [(datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=i),
              BATCH if day >= date.fromisoformat(BATCH) else "history", "h")
             for day in (first + timedelta(days=n) for n in range(63)) if day not in missing.get(source, set())
             for i in range(40)], columns=[at, "_batch", "_file_hash"])
        con.register("day_rows", rows)
        con.execute(f"INSERT INTO raw.{source} SELECT * FROM day_rows")
        con.unregister("day_rows")
    return con


def _orders_check(con: duckdb.DuckDBPyConnection, settings: Settings, sources: dict[str, str] = SOURCES):
    checks = check_day_gap(con, settings, BATCH, sources=sources, severity=SEVERITY, share_min=0.1, min_rows=20)
    return next(c for c in checks if c.table == "raw.orders")


WEDNESDAY = date(2011, 3, 9)


def test_a_day_of_orders_lost_while_the_clickstream_traded_is_critical(tmp_path) -> None:
    check = _orders_check(_warehouse({"orders": {WEDNESDAY}}), Settings(home=tmp_path))
    assert not check.success and check.severity == "critical"
    assert "2011-03-09: under 10% of it while events traded: the day's export is missing" in check.details


def test_a_day_no_source_traded_is_a_warning_that_names_closed_dates(tmp_path) -> None:
    check = _orders_check(_warehouse({"orders": {WEDNESDAY}, "events": {WEDNESDAY}}), Settings(home=tmp_path))
    assert not check.success and check.severity == "warning"
    assert "no other source traded: a closure (add it to closed_dates)" in check.details


def test_an_orders_only_export_cannot_corroborate_a_gap_so_warns(tmp_path) -> None:
    con = _warehouse({"orders": {WEDNESDAY}})
    check = _orders_check(con, Settings(home=tmp_path), {"orders": "ordered_at"})
    assert not check.success and check.severity == "warning"


def test_a_declared_closure_is_not_judged(tmp_path) -> None:
    settings = Settings(home=tmp_path, closed_dates="2011-03-08..2011-03-09")
    assert settings.closed_dates == (date(2011, 3, 8), WEDNESDAY)
    check = _orders_check(_warehouse({"orders": {WEDNESDAY}}), settings)
    assert check.success


@pytest.mark.parametrize("value", ["2011-03-09..2011-03-08", "2011-13-01", "tomorrow"])
def test_closed_dates_that_are_not_dates_are_refused(tmp_path, value: str) -> None:
    with pytest.raises(ValueError, match="closed_dates"):
        Settings(home=tmp_path, closed_dates=value)
