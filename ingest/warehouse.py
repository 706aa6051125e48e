"""The raw layer's tables: one per source, plus the load log and the quarantine."""

from __future__ import annotations

import duckdb

from ingest.contract import Contract, Source

SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DECIMAL(18,4)",
    # Probabilities and other fractions: 4 places turn 1/3 into 0.3333, which moves a sample-ratio test's p.
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",  # naive, always UTC
    "date": "DATE",
}
METADATA_COLUMNS: dict[str, str] = {
    "_batch": "VARCHAR",
    "_file": "VARCHAR",
    "_file_hash": "VARCHAR",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
}
LOAD_LOG_DDL = """
CREATE TABLE IF NOT EXISTS raw._load_log (
    file_hash VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    batch VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    rows_in_file BIGINT,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('loaded', 'quarantined_file')),
    error VARCHAR,
    unknown_columns VARCHAR,
    loaded_at TIMESTAMP NOT NULL,
    superseded_by VARCHAR
)
"""
# Columns added to the load log after warehouses existed: ensure_schema adds them (NULL for old rows).
LOAD_LOG_ADDED = {"superseded_by": "VARCHAR"}
QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw._quarantine (
    source VARCHAR NOT NULL,
    batch VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    file_hash VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    value VARCHAR,
    record VARCHAR,
    detail VARCHAR,
    quarantined_at TIMESTAMP NOT NULL
)
"""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def raw_table(source: Source) -> str:
    return f"raw.{quote(source.name)}"


def ensure_schema(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Create every source's table up front, so downstream dbt always finds all of them."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(LOAD_LOG_DDL)
    con.execute(QUARANTINE_DDL)
    existing: dict[str, set[str]] = {}
    types: dict[tuple[str, str], str] = {}
    for table, column, data_type in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw'"
    ).fetchall():
        existing.setdefault(table, set()).add(column)
        types[(table, column)] = str(data_type).upper()
    for name, sql_type in LOAD_LOG_ADDED.items():
        if name not in existing["_load_log"]:
            con.execute(f"ALTER TABLE raw._load_log ADD COLUMN {quote(name)} {sql_type}")
    for source in contract.sources.values():
        columns = {name: SQL_TYPES[col.type] for name, col in source.columns.items()} | METADATA_COLUMNS
        ddl = ", ".join(f"{quote(name)} {sql_type}" for name, sql_type in columns.items())
        if source.name not in existing:
            con.execute(f"CREATE TABLE {raw_table(source)} ({ddl})")
            continue
        # A column added to the contract later reaches existing warehouses too (NULL for old rows).
        for name, sql_type in columns.items():
            if name not in existing[source.name]:
                con.execute(f"ALTER TABLE {raw_table(source)} ADD COLUMN IF NOT EXISTS {quote(name)} {sql_type}")
            elif sql_type == "DOUBLE" and types[(source.name, name)].startswith("DECIMAL"):
                # A column the contract widened from decimal to double (assignment_probability): old rows keep
                # their 4 places, new ones every digit.
                con.execute(f"ALTER TABLE {raw_table(source)} ALTER COLUMN {quote(name)} TYPE DOUBLE")
