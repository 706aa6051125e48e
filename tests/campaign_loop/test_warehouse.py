"""The marts' reader: a whole mart or batches of it, the same rows and types from DuckDB and from Spark's
parquet files, and batches from PostgreSQL's server-side cursor."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from campaign_loop.warehouse import (
    DUCKDB_VECTOR_ROWS,
    DuckDBWarehouse,
    PostgresWarehouse,
    SparkWarehouse,
    Warehouse,
    read_whole,
)
from tests.support import postgres

ROWS = 5000  # more than two of DuckDB's vectors, so batches of one vector leave a short last one
MART_SQL = (f"select range as customer_id, cast(range / 7 as decimal(18, 4)) as revenue, "
            f"date '2026-01-05' + cast(range % 28 as integer) as as_of_date, 'c' || range as segment "
            f"from range({ROWS})")


@pytest.fixture()
def duckdb_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.fct_customer_features as {MART_SQL}")
    return path


@pytest.fixture()
def spark_home(tmp_path: Path) -> Path:
    """A Spark target's table as Spark leaves it: a directory of part files under <schema>.db."""
    table = tmp_path / "home" / "spark" / "warehouse" / "marts.db" / "fct_customer_features"
    table.mkdir(parents=True)
    with duckdb.connect() as con:
        for part, where in enumerate(("customer_id < 3000", "customer_id >= 3000")):
            con.execute(f"copy (select * from ({MART_SQL}) where {where}) to '{table}/part-{part:05d}.parquet'")
    return tmp_path / "home"


def _check(warehouse: Warehouse) -> None:
    whole = read_whole(warehouse, "fct_customer_features").sort_values("customer_id", ignore_index=True)
    assert len(whole) == ROWS and list(whole.columns) == ["customer_id", "revenue", "as_of_date", "segment"]
    assert "fct_customer_features" in warehouse.tables("marts")

    batches = list(warehouse.read_mart("fct_customer_features", ["customer_id", "revenue"],
                                       batch_rows=DUCKDB_VECTOR_ROWS))
    assert len(batches) >= 3 and all(len(b) <= DUCKDB_VECTOR_ROWS for b in batches)
    batched = pd.concat(batches).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(batched, whole[["customer_id", "revenue"]])
    _check_where(warehouse, whole)


# Bounds of a date and of a number, as the model frames push them (one as-of date, dates up to a cycle).
WHERE = [("as_of_date", ">=", date(2026, 1, 10)), ("as_of_date", "<", date(2026, 1, 20)), ("customer_id", ">", 100)]


def _check_where(warehouse: Warehouse, whole: pd.DataFrame) -> None:
    dates = pd.to_datetime(whole["as_of_date"])
    expected = whole[(dates >= "2026-01-10") & (dates < "2026-01-20") & (whole["customer_id"] > 100)]
    kept = read_whole(warehouse, "fct_customer_features", where=WHERE).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(kept, expected.reset_index(drop=True))
    batches = list(warehouse.read_mart("fct_customer_features", ["customer_id"], where=WHERE, batch_rows=DUCKDB_VECTOR_ROWS))
    assert sorted(pd.concat(batches)["customer_id"]) == sorted(expected["customer_id"])
    one_day = read_whole(warehouse, "fct_customer_features", where=[("as_of_date", "=", date(2026, 1, 5))])
    assert len(one_day) == ROWS // 28 + 1 and set(one_day["customer_id"] % 28) == {0}
    # The engine drops repeats: 28 dates of 5,000 rows, 10 of them inside the bounds.
    dates = read_whole(warehouse, "fct_customer_features", ["as_of_date"], distinct=True)
    assert len(dates) == 28 and dates["as_of_date"].is_unique
    assert len(read_whole(warehouse, "fct_customer_features", ["as_of_date"], where=WHERE[:2], distinct=True)) == 10
    # A prefix, as the trigger journeys read their campaigns: the pattern is a bound value too.
    prefixed = read_whole(warehouse, "fct_customer_features", ["segment"], where=[("segment", "like", "c12%")])
    assert sorted(prefixed["segment"]) == sorted(s for s in whole["segment"] if s.startswith("c12"))
    assert read_whole(warehouse, "fct_customer_features", where=[("segment", "like", "c12' or '1'='1")]).empty


def test_a_filter_takes_only_its_operators_and_never_splices_a_value(duckdb_file: Path) -> None:
    warehouse = DuckDBWarehouse(duckdb_file)
    with pytest.raises(ValueError, match="unsupported operator"):
        read_whole(warehouse, "fct_customer_features", where=[("segment", "in", "('c1')")])
    # A value is a parameter: quotes in it are compared, not run.
    assert read_whole(warehouse, "fct_customer_features", where=[("segment", "=", "c1' or '1'='1")]).empty


def test_duckdb_reads_a_mart_whole_or_in_batches_with_the_same_rows_and_types(duckdb_file: Path) -> None:
    _check(DuckDBWarehouse(duckdb_file))
    whole = read_whole(DuckDBWarehouse(duckdb_file), "fct_customer_features")
    assert whole["revenue"].dtype == "float64" and whole["as_of_date"].dtype.kind == "M"  # as .df() gives them


def test_duckdb_reads_through_a_connection_it_was_given_and_leaves_it_open(duckdb_file: Path) -> None:
    with duckdb.connect(str(duckdb_file)) as con:
        _check(DuckDBWarehouse(connection=con))
        con.execute("create table marts.written_after (x integer)")  # the gate writes its audit after reading


def test_a_read_leaves_no_connection_behind(duckdb_file: Path) -> None:
    read_whole(DuckDBWarehouse(duckdb_file), "fct_customer_features")
    with duckdb.connect(str(duckdb_file)) as writer:  # a reader left open would hold the file
        writer.execute("drop table marts.fct_customer_features")


def test_spark_s_parquet_files_read_as_duckdb_s_table(duckdb_file: Path, spark_home: Path) -> None:
    _check(SparkWarehouse(spark_home))
    spark = read_whole(SparkWarehouse(spark_home), "fct_customer_features").sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(spark, read_whole(DuckDBWarehouse(duckdb_file), "fct_customer_features"))
    assert SparkWarehouse(spark_home).tables("published") == set()


@pytest.mark.skipif(not postgres.available(), reason="PostgreSQL 15 is not installed")
def test_postgres_reads_a_mart_in_batches_from_a_server_side_cursor() -> None:
    with postgres.throwaway_postgres() as server:
        with server.connect() as con, con.cursor() as cursor:
            cursor.execute("create schema marts; create table marts.fct_customer_features as "
                           f"select g as customer_id, (g / 7.0)::numeric(18, 4) as revenue, 'c' || g as segment "
                           f"from generate_series(0, {ROWS - 1}) g")
        warehouse = PostgresWarehouse(server.dsn)
        assert warehouse.tables("marts") == {"fct_customer_features"}
        batches = list(warehouse.read_mart("fct_customer_features", ["customer_id"], batch_rows=2000))
        assert [len(b) for b in batches] == [2000, 2000, 1000]
        whole = read_whole(warehouse, "fct_customer_features")
        assert sorted(whole["customer_id"]) == sorted(pd.concat(batches)["customer_id"]) == list(range(ROWS))
        kept = list(warehouse.read_mart("fct_customer_features", ["customer_id"], batch_rows=2000,
                                        where=[("customer_id", ">=", 1500), ("revenue", "<", 500)]))
        assert sorted(pd.concat(kept)["customer_id"]) == list(range(1500, 3500))  # 3500 / 7 = 500
        prefixed = read_whole(warehouse, "fct_customer_features", ["customer_id"], where=[("segment", "like", "c12%")])
        assert sorted(prefixed["customer_id"]) == [c for c in range(ROWS) if str(c).startswith("12")]
        with server.connect() as con, con.cursor() as cursor:  # every row of the first 70 twice
            cursor.execute("insert into marts.fct_customer_features select * from marts.fct_customer_features "
                           "where customer_id < 70")
        first = [("customer_id", "<", 70)]
        assert len(read_whole(warehouse, "fct_customer_features", where=first)) == 140
        assert sorted(read_whole(warehouse, "fct_customer_features", where=first, distinct=True)["customer_id"]) == \
            list(range(70))
