"""Given the same raw data in DuckDB and PostgreSQL, when dbt builds both, then the marts agree.

The test starts a throwaway PostgreSQL 15 cluster (tests/support/postgres.py) and points the dbt
profile's postgres target at it through CAMPAIGN_LOOP_PG_* variables. Both targets share the
development PII key unless CAMPAIGN_LOOP_PII_KEY (DuckDB) and campaign_loop.pii_key (PostgreSQL, e.g.
via PGOPTIONS) are set alike, so hashes and customer IDs match.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from tests.dbt.conftest import BuiltWorld, run_dbt
from tests.support.postgres import PostgresServer, available, copy_raw, postgres_for_dbt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    if not available():
        pytest.fail("PostgreSQL 15 binaries (initdb, pg_ctl) are missing: apt-get install postgresql-15")
    with postgres_for_dbt(monkeypatch_module) as server:
        yield server


CHECKS = {
    "fct_orders": "select count(*), sum(total_amount), count(customer_id), count(distinct customer_id), sum(margin_amount) from marts.fct_orders",
    "dim_customers": "select count(*), count(member_id), sum(lifetime_orders), min(email_hash), max(customer_id) from marts.dim_customers",
    "int_identity_resolved": "select count(*), count(distinct customer_id), min(customer_id) from intermediate.int_identity_resolved",
    "fct_customer_features": "select count(*), sum(frequency), sum(recency), sum(t), sum(monetary_value), sum(r_score) from marts.fct_customer_features",
    "fct_sessions": "select count(*), sum(n_events), count(customer_id), sum(duration_seconds) from marts.fct_sessions",
    "fct_campaign_sends": "select count(*), sum(case when is_converted then 1 else 0 end), sum(revenue) from marts.fct_campaign_sends",
    "kpi_daily": "select count(*), sum(revenue), sum(new_customers), sum(active_customers) from marts.kpi_daily",
    # The value tiers' grace rule is a window maximum and their changes a lag: both engines must agree on them.
    "fct_loyalty_tiers": "select count(*), sum(value_tier_rank), sum(qualified_tier_rank), count(distinct value_tier), "
                         "sum(revenue_365d) from marts.fct_loyalty_tiers",
    "fct_loyalty_tier_changes": "select count(*), count(from_tier), sum(case when change_type = 'downgrade' then 1 "
                                "else 0 end), min(reason), max(reason) from marts.fct_loyalty_tier_changes",
    "kpi_media_daily": "select count(*), count(distinct channel), sum(spend), sum(revenue), sum(clicks) from marts.kpi_media_daily",
    # The per-arm sums kpi_campaign_lift is inferred from (campaign_loop/lift.py), the pre-period's included.
    "kpi_campaign_arms": "select count(*), sum(converted), sum(revenue_sq), sum(pre_converted), sum(pre_revenue_sq), "
                         "sum(margin_x_pre), sum(revenue_x_orders) from marts.kpi_campaign_arms",
    # Local hours (the time zone conversion) and the journeys' ordered paths (string_agg ... order by).
    "fct_customer_engagement_hours": "select count(*), sum(local_hour * opens), sum(local_hour * sends), sum(clicks) "
                                     "from marts.fct_customer_engagement_hours",
    "fct_marketing_journeys": "select count(*), sum(touches), sum(case when converted then 1 else 0 end), sum(revenue), "
                              "sum(length(path)), sum(case when path like 'email%' then 1 else 0 end) "
                              "from marts.fct_marketing_journeys",
    # The model frames' marts (decision 26): the uplift rows' snapshot choice without an ASOF join, and the
    # contact history's newest send per channel (lead() and a range join) instead of arg_max ... filter.
    "fct_classifier_rows": "select count(*), sum(orders_total), sum(recency_days), sum(case when purchased_next_cycle "
                           "then 1 else 0 end), sum(case when label_complete_churn then 1 else 0 end) "
                           "from marts.fct_classifier_rows",
    "fct_uplift_rows": "select count(*), count(distinct campaign_id), sum(treatment), sum(is_converted), sum(margin), "
                       "sum(orders_total), sum(sends_email_365d), min(as_of_date), max(as_of_date) from marts.fct_uplift_rows",
    # The frequency cap's evidence: a range join of each send on the 30 days of assignments before it.
    "fct_fatigue_rows": "select count(*), sum(planned_before), sum(contacts_before), sum(case when is_treatment "
                        "then 1 else 0 end), count(distinct segment) from marts.fct_fatigue_rows",
    "fct_scoring_rows": "select count(*), sum(contacts_last_30d), sum(case when unsubscribed_recently then 1 else 0 end), "
                        "sum(case when bounced_email then 1 else 0 end), sum(case when bounced_push then 1 else 0 end), "
                        "sum(case when bounced_kakao then 1 else 0 end), count(segment) from marts.fct_scoring_rows",
}


def _normalised(row: tuple) -> tuple:
    # Floats are compared to 6 places: sums of doubles differ in the last bits between engines.
    return tuple(round(float(v), 6) if isinstance(v, (float, Decimal)) else v for v in row)


def test_postgres_build_matches_duckdb(built_world: BuiltWorld, postgres: PostgresServer) -> None:
    copy_raw(built_world.warehouse, postgres)
    result = run_dbt(built_world.home, "build", "--target", "postgres", "--target-path",
                     str(built_world.home / "dbt" / "target-postgres"))
    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(built_world.warehouse), read_only=True) as con, postgres.connect() as pg, pg.cursor() as cur:
        for name, query in CHECKS.items():
            cur.execute(query)
            assert _normalised(cur.fetchone()) == _normalised(con.execute(query).fetchone()), name


def test_a_retailers_postgres_build_without_its_key_is_refused(built_world: BuiltWorld, postgres: PostgresServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is a server setting no Python check sees: unset outside a demo, dbt stops before any model."""
    monkeypatch.setenv("CAMPAIGN_LOOP_DEMO", "false")
    monkeypatch.delenv("CAMPAIGN_LOOP_PII_KEY", raising=False)
    monkeypatch.delenv("PGOPTIONS", raising=False)
    result = run_dbt(built_world.home, "build", "--target", "postgres", "--select", "stg_crm__customers",
                     "--target-path", str(built_world.home / "dbt" / "target-postgres-refused"))
    assert result.returncode != 0
    assert "CAMPAIGN_LOOP_PII_KEY is not set, and this is not a demo run" in result.stdout, result.stdout[-3000:]
