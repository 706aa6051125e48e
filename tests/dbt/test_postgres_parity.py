"""Given the same raw data in DuckDB and PostgreSQL, when dbt builds both, then the marts agree.

The test starts a throwaway PostgreSQL 15 cluster (tests/support/postgres.py) and points the dbt
profile's postgres target at it through CAMPAIGN_LOOP_PG_* variables. Both targets share the
development PII key unless CAMPAIGN_LOOP_PII_KEY (DuckDB) and campaign_loop.pii_key (PostgreSQL, e.g.
via PGOPTIONS) are set alike, so hashes and customer IDs match.
"""

from __future__ import annotations

import io
import os
from decimal import Decimal

import duckdb
import pytest

from tests.dbt.conftest import BuiltWorld, run_dbt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def postgres(monkeypatch_module: pytest.MonkeyPatch):
    from tests.support.postgres import available, throwaway_postgres

    if not available():
        pytest.fail("PostgreSQL 15 binaries (initdb, pg_ctl) are missing: apt-get install postgresql-15")
    with throwaway_postgres() as server:
        for key, value in server.env.items():
            monkeypatch_module.setenv(key, value)
        yield server

CHECKS = {
    "fct_orders": "select count(*), sum(total_amount), count(customer_id), count(distinct customer_id), sum(margin_amount) from marts.fct_orders",
    "dim_customers": "select count(*), count(member_id), sum(lifetime_orders), min(email_hash), max(customer_id) from marts.dim_customers",
    "int_identity__resolved": "select count(*), count(distinct customer_id), min(customer_id) from intermediate.int_identity__resolved",
    "fct_customer_features": "select count(*), sum(frequency), sum(recency), sum(t), sum(monetary_value), sum(r_score) from marts.fct_customer_features",
    "fct_sessions": "select count(*), sum(n_events), count(customer_id), sum(duration_seconds) from marts.fct_sessions",
    "fct_campaign_sends": "select count(*), sum(case when is_converted then 1 else 0 end), sum(revenue) from marts.fct_campaign_sends",
    "kpi_daily": "select count(*), sum(revenue), sum(new_customers), sum(active_customers) from marts.kpi_daily",
    "kpi_campaign_arms": "select count(*), sum(conversion_lift), sum(conversion_lift_p_value) from marts.kpi_campaign_arms",
}


def _pg():
    import psycopg2

    return psycopg2.connect(
        host=os.environ.get("CAMPAIGN_LOOP_PG_HOST", "localhost"),
        port=int(os.environ.get("CAMPAIGN_LOOP_PG_PORT", "5432")),
        user=os.environ.get("CAMPAIGN_LOOP_PG_USER", "campaign_loop"),
        password=os.environ.get("CAMPAIGN_LOOP_PG_PASSWORD", "campaign_loop"),
        dbname=os.environ.get("CAMPAIGN_LOOP_PG_DBNAME", "campaign_loop"),
    )


def _copy_raw(world: BuiltWorld) -> None:
    with duckdb.connect(str(world.warehouse), read_only=True) as con, _pg() as pg, pg.cursor() as cur:
        cur.execute("drop schema if exists raw cascade; create schema raw")
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' and table_name not like '\\_%' escape '\\'"
        ).fetchall()]
        for table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = ? order by ordinal_position", [table]
            ).fetchall()
            ddl = ", ".join(f'"{c}" {t.replace("VARCHAR", "text").replace("DECIMAL", "numeric")}' for c, t in columns)
            cur.execute(f'create table raw."{table}" ({ddl})')
            buffer = io.StringIO()
            con.execute(f'select * from raw."{table}"').df().to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            cur.copy_expert(f'copy raw."{table}" from stdin with (format csv)', buffer)


def _normalised(row: tuple) -> tuple:
    # Floats are compared to 6 places: sums of doubles differ in the last bits between engines.
    return tuple(round(float(v), 6) if isinstance(v, (float, Decimal)) else v for v in row)


def test_postgres_build_matches_duckdb(built_world: BuiltWorld) -> None:
    _copy_raw(built_world)
    result = run_dbt(built_world.home, "build", "--target", "postgres", "--target-path",
                     str(built_world.home / "dbt" / "target-postgres"))
    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(built_world.warehouse), read_only=True) as con, _pg() as pg, pg.cursor() as cur:
        for name, query in CHECKS.items():
            cur.execute(query)
            assert _normalised(cur.fetchone()) == _normalised(con.execute(query).fetchone()), name
