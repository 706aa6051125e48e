"""The marts' GX suites on PostgreSQL, through GX's SQL data source: GX pushes every metric down as SQL.

When dbt builds the warehouse on its ``postgres`` target, ``validate_postgres_marts`` runs the committed
``marts.<table>`` suites (the ones the DuckDB gate runs on DataFrames) on table assets of a GX postgres
data source, so no mart is read into memory. The outcome is a ``GateResult`` of ``CheckResult`` rows,
judged, logged and enforced (``require_pass``) as the DuckDB gate's is; results and Data Docs land in the
same runtime GX project under ``<home>/validation``.

Only the GX suites run here: the statistical mart checks (reconciliation, freshness, drift, SRM, ...)
and the audit table are wired to DuckDB in ``marts_gate.py`` and ``gate.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from campaign_loop.config import Settings
from expectations.context import Validator, data_docs_index, open_context
from expectations.gate import GateResult
from expectations.marts_gate import SNAPSHOT_TABLE, missing_mart
from expectations.raw import batch_window
from expectations.results import CheckResult, from_gx
from expectations.suites import load_rules, mart_suite_name
from ingest.warehouse import literal, quote

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.datasource.fluent import PostgresDatasource

log = logging.getLogger(__name__)

DATASOURCE = "campaign_loop_postgres"
# The name GX substitutes the connection string for: the runtime great_expectations.yml keeps
# "${CAMPAIGN_LOOP_GX_PG_URL}", the password stays in memory.
URL_VARIABLE = "CAMPAIGN_LOOP_GX_PG_URL"
# The mart suites have no $PARAMETERs; the DuckDB gate runs them with none either.
MART_PARAMETERS: Mapping[str, Any] = {}


def connection_string_from_env(env: Mapping[str, str] | None = None) -> str:
    """The SQLAlchemy URL of the database dbt's ``postgres`` target builds (``CAMPAIGN_LOOP_PG_*``, same defaults)."""
    from sqlalchemy import URL

    env = os.environ if env is None else env
    url = URL.create(
        "postgresql+psycopg2",
        username=env.get("CAMPAIGN_LOOP_PG_USER", "campaign_loop"),
        password=env.get("CAMPAIGN_LOOP_PG_PASSWORD", "campaign_loop") or None,  # "" = no password (trust, peer)
        host=env.get("CAMPAIGN_LOOP_PG_HOST", "localhost"),
        port=int(env.get("CAMPAIGN_LOOP_PG_PORT", "5432")),
        database=env.get("CAMPAIGN_LOOP_PG_DBNAME", "campaign_loop"),
    )
    return url.render_as_string(hide_password=False)


def _table_batch(datasource: PostgresDatasource, suite: str, schema: str, table: str, cycle_id: str,
                 columns: set[str]) -> BatchDefinition:
    """A whole-table batch of ``table``, found through the connection's search path (the marts schema)."""
    # The asset is named after the suite, as the pandas path names its DataFrame assets: Data Docs show
    # the same table names whichever warehouse ran.
    if suite in datasource.get_asset_names():
        datasource.delete_asset(suite)
    if table == SNAPSHOT_TABLE and "cycle_id" in columns:
        # As in the DuckDB gate, this cycle's snapshot only; a query asset keeps the filter in SQL.
        query = f"SELECT * FROM {quote(schema)}.{quote(table)} WHERE cycle_id = {literal(cycle_id)}"
        asset = datasource.add_query_asset(suite, query=query)
    else:
        asset = datasource.add_table_asset(suite, table_name=table)
    return asset.add_batch_definition_whole_table("batch")


def validate_postgres_marts(
    settings: Settings, connection_string: str, cycle_id: str, *, schema: str | None = None
) -> GateResult:
    """Run the mart suites on the PostgreSQL marts of ``cycle_id``; the verdict as ``run_gate`` gives it.

    ``connection_string`` is a SQLAlchemy URL (``postgresql+psycopg2://...``, see
    ``connection_string_from_env``) or a ``${VARIABLE}`` reference GX resolves from the environment.
    ``schema`` defaults to ``rules.yaml``'s marts schema. A mart dbt did not build is a critical failure.
    """
    import sqlalchemy as sa

    rules = load_rules()["marts"]
    schema = schema or rules.get("schema", "marts")
    batch_window(settings, cycle_id)  # a malformed cycle id fails here, before it reaches SQL or the store

    secrets: dict[str, str] = {}
    if not connection_string.lstrip().startswith("${"):
        secrets[URL_VARIABLE] = connection_string
        connection_string = "${" + URL_VARIABLE + "}"
    context = open_context(settings, secrets)
    validator = Validator(context, run_name=f"marts-{cycle_id}")
    # GX 1.x takes the schema from the connection (a table asset's schema_name is deprecated): the marts
    # schema is the connection's search path, table assets name bare tables.
    search_path = quote(schema).replace("\\", "\\\\").replace(" ", "\\ ")
    datasource = context.data_sources.add_or_update_postgres(
        DATASOURCE, connection_string=connection_string,
        kwargs={"connect_args": {"options": f"-c search_path={search_path}"}},
    )

    inspector = sa.inspect(datasource.get_engine())
    present = set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))
    checks: list[CheckResult] = []
    for table in rules["tables"]:
        if table not in present:
            checks.append(missing_mart(schema, table))
            continue
        suite = mart_suite_name(table)
        columns = {c["name"] for c in inspector.get_columns(table, schema=schema)}
        run = validator.run(suite, _table_batch(datasource, suite, schema, table, cycle_id, columns),
                            parameters=MART_PARAMETERS)
        checks += from_gx(suite, run.result, dict(MART_PARAMETERS))
    validator.build_docs()

    result = GateResult(
        cycle_id=cycle_id, stage="marts", passed=not any(c.critical_failure for c in checks), checks=tuple(checks),
        validation_result_id=validator.audit_id("marts", cycle_id), data_docs=data_docs_index(settings),
    )
    for check in result.failures:
        log.log(logging.ERROR if check.severity == "critical" else logging.WARNING,
                "validation marts (postgres) %s: %s", cycle_id, check.describe())
    log.info("%s", result.summary())
    return result
