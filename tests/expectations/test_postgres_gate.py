"""Given a small world's marts built by dbt on PostgreSQL, the committed mart suites run through GX's SQL
data source (metrics computed by PostgreSQL, nothing read into DataFrames): they pass on the healthy
marts, and a duplicated key and a negative amount written into ``marts.fct_orders`` fail them, critical.

The world is the session's ``world`` (tests/expectations/conftest.py); its raw layer is copied into a
throwaway PostgreSQL cluster and dbt builds the mart suites' tables (and their upstream) on the
``postgres`` target, as tests/dbt/test_postgres_parity.py does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from campaign_loop.config import Settings
from expectations.gate import GateFailed, require_pass
from expectations.sql import DATASOURCE, URL_VARIABLE, validate_postgres_marts
from expectations.suites import load_rules, mart_suite_name
from tests.dbt.conftest import run_dbt
from tests.expectations.conftest import CYCLE
from tests.support.postgres import PostgresServer, available, copy_raw, postgres_for_dbt

# Checked before any fixture runs, so a machine without PostgreSQL does not simulate a world for nothing.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="PostgreSQL binaries (initdb, pg_ctl) are not installed"),
]

MART_TABLES = tuple(load_rules()["marts"]["tables"])
MART_SUITES = {mart_suite_name(t) for t in MART_TABLES}


@pytest.fixture(scope="module")
def postgres(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    with postgres_for_dbt(monkeypatch_module) as server:
        yield server


@pytest.fixture(scope="module")
def pg_home(world: Settings, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home whose warehouse is the PostgreSQL cluster: the world's marts built there by dbt."""
    copy_raw(world.warehouse_path, postgres)
    home = tmp_path_factory.mktemp("pg-gate")
    # `run` of the suites' tables and their upstream only: dbt's own tests and the other marts are the
    # parity test's business, and skipping them keeps this test quick.
    selected = [f"+{table}" for table in MART_TABLES]
    built = run_dbt(home, "run", "--target", "postgres", "--select", *selected,
                    "--target-path", str(home / "dbt" / "target-postgres"))
    assert built.returncode == 0, built.stdout[-4000:]
    return Settings(home=home, customers=world.customers, history_weeks=world.history_weeks, dirt=0.0)


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement a SQLAlchemy engine sends while the test runs."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(f"{conn.dialect.name}: {statement}")

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def _stored_results(home: Settings, run_name: str) -> dict[str, dict]:
    """The validation results GX stored for ``run_name``, by suite."""
    root = home.root / "validation" / "gx" / "uncommitted" / "validations"
    return {f"marts.{path.relative_to(root).parts[1]}": json.loads(path.read_text())
            for path in root.glob(f"marts/*/{run_name}/*/*.json")}


def test_mart_suites_pass_on_postgres_through_gx_sql_datasource(
    pg_home: Settings, postgres: PostgresServer, statements: list[str]
) -> None:
    result = validate_postgres_marts(pg_home, postgres.url, CYCLE)

    assert result.passed, [c.describe() for c in result.failures]
    assert {c.suite for c in result.checks} == MART_SUITES
    assert result.checks and all(c.success and c.severity == "critical" for c in result.checks)

    # GX ran on the postgres data source: SQL batch specs (a table, or the features' cycle query) ...
    stored = _stored_results(pg_home, f"marts-{CYCLE}")
    assert set(stored) == MART_SUITES
    for suite, stored_result in stored.items():
        meta = stored_result["meta"]
        assert meta["active_batch_definition"]["datasource_name"] == DATASOURCE, suite
        spec = meta["batch_spec"]
        assert "batch_data" not in spec, suite  # what a DataFrame batch carries
        assert all(r["result"]["element_count"] > 0 for r in stored_result["results"]), suite  # not vacuous
        if suite == "marts.fct_customer_features":
            assert f"cycle_id = '{CYCLE}'" in spec["query"]
        else:
            assert spec["type"] == "table" and spec["table_name"] == suite.removeprefix("marts.")
    config = yaml.safe_load((pg_home.root / "validation" / "gx" / "great_expectations.yml").read_text())
    datasource = config["fluent_datasources"][DATASOURCE]
    assert datasource["type"] == "postgres"
    assert datasource["connection_string"] == "${" + URL_VARIABLE + "}"  # the URL itself stays in memory
    # ... and PostgreSQL computed the metrics: GX sent aggregate queries over the marts.
    pushed = [s for s in statements if s.startswith("postgresql:") and "fct_orders" in s]
    assert any("count(" in s.lower() for s in pushed), pushed[:5]

    assert result.data_docs.exists()
    pages = Path(result.data_docs).parent / "validations" / "marts"
    assert {f"marts.{p.parts[-4]}" for p in pages.glob(f"*/marts-{CYCLE}/*/{DATASOURCE}-*.html")} == MART_SUITES


@pytest.fixture
def corrupted_orders(pg_home: Settings, postgres: PostgresServer) -> Iterator[None]:
    """One order row twice (a duplicate key) and one negative amount in marts.fct_orders, undone after."""
    with postgres.connect() as pg, pg.cursor() as cur:
        cur.execute("create table marts._fct_orders_clean as select * from marts.fct_orders")
        cur.execute("insert into marts.fct_orders select * from marts.fct_orders "
                    "where order_key = (select min(order_key) from marts.fct_orders)")
        cur.execute("update marts.fct_orders set total_amount = -1 "
                    "where order_key = (select max(order_key) from marts.fct_orders)")
    try:
        yield
    finally:
        with postgres.connect() as pg, pg.cursor() as cur:
            cur.execute("truncate marts.fct_orders; insert into marts.fct_orders select * from marts._fct_orders_clean; "
                        "drop table marts._fct_orders_clean")


def test_corrupted_orders_fail_their_suite_critically(
    pg_home: Settings, postgres: PostgresServer, corrupted_orders: None
) -> None:
    result = validate_postgres_marts(pg_home, postgres.url, CYCLE)

    assert not result.passed
    failed = {(c.suite, c.check, c.column): c for c in result.failures}
    assert set(failed) == {("marts.fct_orders", "key_unique", "order_key"), ("marts.fct_orders", "range", "total_amount")}
    assert all(c.severity == "critical" and c.critical_failure for c in failed.values())
    assert failed["marts.fct_orders", "key_unique", "order_key"].details.startswith("2 of ")  # both copies
    assert failed["marts.fct_orders", "range", "total_amount"].details.startswith("1 of ")
    assert {c.suite for c in result.checks if c.success} >= MART_SUITES - {"marts.fct_orders"}
    with pytest.raises(GateFailed, match="key_unique"):
        require_pass(result)
