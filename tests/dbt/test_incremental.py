"""Given a world built cycle by cycle with incremental models, when the same raw data is rebuilt with
``dbt run --full-refresh``, then every staging table and mart is identical.

Three cycles of a small world (sim -> ingest -> ``dbt run`` after each, ``build`` after the last), so
the incremental staging models see re-sends, status updates, CRM profile changes and the ~1% of web
events the simulator sends one batch late. Before the last build, the stateful intermediate relations
take their pre-rename names (docs/warehouse.md#names), as in a warehouse built before it: the build must
carry them on under the new names. The full refresh runs on a copy of the warehouse (same raw
tables), so nothing the incremental run left behind can leak into it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.dbt.conftest import run_dbt

CUSTOMERS = 800
CYCLES = (0, 1, 2)
INCREMENTAL_MODELS = (
    "stg_web__events", "stg_shop__orders", "stg_shop__order_lines", "stg_pos__receipts",
    "stg_pos__receipt_lines", "stg_marketing__campaign_sends", "stg_marketing__campaign_events",
    "stg_crm__customers", "stg_crm__consents", "int_web_sessions",
)
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
# Stateful relations renamed in issue 25: new name -> the name a warehouse built before holds them under.
LEGACY_NAMES = {"int_identity_merges": "int_identity__merges", "int_web_sessions": "int_web__sessions"}


@dataclass(frozen=True)
class Builds:
    incremental: Path
    full_refresh: Path
    executed: list[dict[str, tuple[str, str]]]  # per run: model -> (compiled select, statement run)
    merges_before_rename: int  # rows of the merge log when it was given its legacy name


def _executed(home: Path) -> dict[str, tuple[str, str]]:
    """What dbt compiled and ran for each incremental model in its last invocation (target/compiled, target/run)."""
    target = home / "dbt" / "target"
    out = {}
    for model in INCREMENTAL_MODELS:
        [compiled] = (target / "compiled").rglob(f"{model}.sql")
        [ran] = (target / "run").rglob(f"{model}.sql")
        out[model] = (compiled.read_text(), ran.read_text())
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    from campaign_loop.config import Settings
    from ingest import ingest
    from sim import simulate_period

    home = tmp_path_factory.mktemp("incremental")
    settings = Settings(home=home, customers=CUSTOMERS)
    executed = []
    for cycle in CYCLES:
        simulate_period(settings, cycle)
        ingest(settings)
        if cycle == CYCLES[-1]:
            merges_before_rename = _give_legacy_names(settings.warehouse_path)
        # `run` for the early cycles keeps the test short; the last cycle's `build` tests the incremental state.
        result = run_dbt(home, "build" if cycle == CYCLES[-1] else "run")
        assert result.returncode == 0, f"cycle {cycle} build failed:\n{result.stdout[-4000:]}"
        executed.append(_executed(home))

    full_home = tmp_path_factory.mktemp("full_refresh")
    (full_home / "warehouse").mkdir()
    shutil.copy(settings.warehouse_path, full_home / "warehouse" / settings.warehouse_path.name)
    result = run_dbt(full_home, "run", "--full-refresh")
    assert result.returncode == 0, f"full-refresh build failed:\n{result.stdout[-4000:]}"
    return Builds(settings.warehouse_path, full_home / "warehouse" / settings.warehouse_path.name, executed,
                  merges_before_rename)


def _give_legacy_names(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse)) as con:
        for new, old in LEGACY_NAMES.items():
            con.execute(f"alter table intermediate.{new} rename to {old}")
        return con.execute("select count(*) from intermediate.int_identity__merges").fetchone()[0]


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    return con.sql(
        f"select schema_name, table_name from duckdb_tables() where database_name = '{catalog}' "
        "and schema_name in ('staging', 'intermediate', 'marts') order by 1, 2"
    ).fetchall()


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.sql(
        "select column_name, data_type from duckdb_columns() "
        f"where database_name = 'inc' and schema_name = '{schema}' and table_name = '{table}' order by column_index"
    ).fetchall()


def _checksum_sql(catalog: str, schema: str, columns: list[tuple[str, str]], table: str) -> str:
    """Row count plus one order-independent checksum per column (floats rounded: parallel sums differ in the last bit)."""
    parts = ["count(*)"]
    for name, dtype in columns:
        if dtype in FLOAT_TYPES or dtype.startswith("DECIMAL"):
            parts.append(f'round(sum(cast("{name}" as double)), 4)')
        else:
            parts.append(f'sum(hash("{name}"))')
    return f"select {', '.join(parts)} from {catalog}.{schema}.{table}"


def _rows_sql(catalog: str, schema: str, columns: list[tuple[str, str]], table: str) -> str:
    cols = [f'round("{n}", 6)' if t in FLOAT_TYPES else f'"{n}"' for n, t in columns]
    return f"select {', '.join(cols)} from {catalog}.{schema}.{table}"


@pytest.fixture(scope="module")
def con(builds: Builds):
    con = duckdb.connect()
    con.sql(f"attach '{builds.incremental}' as inc (read_only)")
    con.sql(f"attach '{builds.full_refresh}' as fr (read_only)")
    yield con
    con.close()


def test_later_cycles_ran_incrementally(builds: Builds) -> None:
    # The first build creates each table; later ones read only the keys loaded since the model's
    # watermark (a select from the model itself) and delete+insert them.
    def watermark(model: str) -> re.Pattern[str]:
        return re.compile(rf'select max\(loaded_at\) from "campaign_loop"\."\w+"\."{model}"')

    for model, (compiled, ran) in builds.executed[0].items():
        assert not watermark(model).search(compiled) and re.search(r"create\s+table", ran), model
    for executed in builds.executed[1:]:
        for model, (compiled, ran) in executed.items():
            assert watermark(model).search(compiled), model
            assert "delete from" in ran and "insert into" in ran, model


def test_relations_built_before_the_rename_carry_on(builds: Builds, con: duckdb.DuckDBPyConnection) -> None:
    # The last build found only the legacy names: int_web_sessions still ran incrementally (above), and the
    # merge log kept its history.
    names = {t for _, t in _relations(con, "inc")}
    assert set(LEGACY_NAMES) <= names and not names & set(LEGACY_NAMES.values())
    assert 0 < builds.merges_before_rename <= con.execute("select count(*) from inc.intermediate.int_identity_merges").fetchall()[0][0]


def test_same_relations(con: duckdb.DuckDBPyConnection) -> None:
    assert _relations(con, "inc") == _relations(con, "fr")


def test_incremental_equals_full_refresh(con: duckdb.DuckDBPyConnection) -> None:
    """Every mart and every incremental model: same rows (floats to 6 places) and same checksums."""
    # int_identity_merges is history by design (every move of an identifier): a rebuild cannot replay it.
    tables = [(s, t) for s, t in _relations(con, "inc")
              if s == "marts" or t in INCREMENTAL_MODELS or (s == "intermediate" and t != "int_identity_merges")]
    assert any(s == "marts" for s, _ in tables)
    mismatched = {}
    for schema, table in tables:
        columns = _columns(con, schema, table)
        inc_sum = con.sql(_checksum_sql("inc", schema, columns, table)).fetchall()[0]
        fr_sum = con.sql(_checksum_sql("fr", schema, columns, table)).fetchall()[0]
        inc_rows, fr_rows = _rows_sql("inc", schema, columns, table), _rows_sql("fr", schema, columns, table)
        only_inc = con.sql(f"select count(*) from ({inc_rows} except all {fr_rows})").fetchall()[0][0]
        only_fr = con.sql(f"select count(*) from ({fr_rows} except all {inc_rows})").fetchall()[0][0]
        if inc_sum != fr_sum or only_inc or only_fr:
            mismatched[f"{schema}.{table}"] = {
                "rows": (inc_sum[0], fr_sum[0]), "only_incremental": only_inc, "only_full_refresh": only_fr,
                "columns": [name for (name, _), a, b in zip(columns, inc_sum[1:], fr_sum[1:], strict=True) if a != b],
            }
    assert not mismatched, mismatched


def test_world_has_late_events(con: duckdb.DuckDBPyConnection) -> None:
    """The data exercises the late path: events loaded in a later batch than the cycle they happened in."""
    late = con.sql(
        "with batches as (select loaded_at, row_number() over (order by loaded_at) - 1 as batch "
        "                 from (select distinct loaded_at from inc.staging.stg_web__events)) "
        "select count(*) from inc.staging.stg_web__events as e join batches using (loaded_at) "
        "where batch >= 1 and e.occurred_at < (select max(occurred_at) from inc.staging.stg_web__events as p "
        "                                      join batches as pb using (loaded_at) where pb.batch = batches.batch - 1)"
    ).fetchall()[0][0]
    assert late > 0


# Corrections and late sources: a few hand-written landing files, two incremental runs of the staging
# models they feed, then a full refresh of a copy as the reference.
ORDERS = "order_id,member_id,ordered_at,total_amount\n"
LINES = "order_id,line_number,product_id,quantity,unit_price\n"
RECEIPTS = "receipt_id,store_id,purchased_at,total_amount,member_id\n"
CORRECTION_MODELS = ("stg_shop__orders", "stg_shop__order_lines", "stg_pos__receipts", "stg_marketing__campaigns")


@dataclass(frozen=True)
class Corrected:
    incremental: Path
    full_refresh: Path


@pytest.fixture(scope="module")
def corrected(tmp_path_factory: pytest.TempPathFactory) -> Corrected:
    from campaign_loop.config import Settings
    from ingest import ingest

    home = tmp_path_factory.mktemp("corrections")
    settings = Settings(home=home)

    def land(relpath: str, text: str) -> None:
        path = settings.landing_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def run(*args: str) -> None:
        result = run_dbt(home, "run", "-s", *CORRECTION_MODELS, *args)
        assert result.returncode == 0, result.stdout[-4000:]

    land("orders/2025-12-29.csv", ORDERS + "A3,m3,2025-12-30,1\n")
    # A bad export: A1's amount has a sign error, A2 is not an order at all, A3 is re-sent changed.
    land("orders/2026-01-05.csv", ORDERS + "A1,m1,2026-01-05,-5\nA2,m2,2026-01-05,9\nA3,m3,2025-12-30,2\n")
    land("order_lines/2026-01-05.csv", LINES + "A1,1,p1,1,5\nA1,2,p2,1,5\nA2,1,p1,1,9\n")
    ingest(settings)
    run()  # pos_receipts is empty: its staging table is created with no rows
    # The corrected export replaces the bad one; the stores' first file arrives.
    land("orders/2026-01-05.csv", ORDERS + "A1,m1,2026-01-05,5\n")
    land("order_lines/2026-01-05.csv", LINES + "A1,1,p1,1,5\n")
    land("pos_receipts/2026-01-05.csv", RECEIPTS + "R1,s1,2026-01-05 10:00:00,4,m1\n")
    ingest(settings)
    run()

    full_home = tmp_path_factory.mktemp("corrections_full_refresh")
    (full_home / "warehouse").mkdir()
    full = full_home / "warehouse" / settings.warehouse_path.name
    shutil.copy(settings.warehouse_path, full)
    result = run_dbt(full_home, "run", "-s", *CORRECTION_MODELS, "--full-refresh")
    assert result.returncode == 0, result.stdout[-4000:]
    return Corrected(settings.warehouse_path, full)


def _staged(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_a_corrected_file_replaces_the_rows_of_the_bad_one(corrected: Corrected) -> None:
    for warehouse in (corrected.incremental, corrected.full_refresh):
        # A1 corrected; A2, only in the bad file, gone; A3 back to the version of the older live file.
        assert _staged(warehouse, "select order_id, total_amount from staging.stg_shop__orders order by 1") == [
            ("A1", Decimal("5")), ("A3", Decimal("1"))]
        assert _staged(warehouse, "select order_id, line_number from staging.stg_shop__order_lines order by 1, 2") == [
            ("A1", 1)]


def test_a_source_first_landing_after_the_first_build_is_staged(corrected: Corrected) -> None:
    for warehouse in (corrected.incremental, corrected.full_refresh):
        assert _staged(warehouse, "select receipt_id, total_amount from staging.stg_pos__receipts") == [
            ("R1", Decimal("4"))]


def test_corrections_incremental_equals_full_refresh(corrected: Corrected) -> None:
    for model in CORRECTION_MODELS:
        sql = f"select * from staging.{model} order by all"
        assert _staged(corrected.incremental, sql) == _staged(corrected.full_refresh, sql), model
