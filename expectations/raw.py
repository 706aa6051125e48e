"""The raw layer of one batch as the DataFrames the raw suites validate.

DuckDB does the reading (only the batch's rows and only the columns a suite looks at); GX's pandas
data source does the judging. GX's SQL data source over duckdb-engine failed on every metric here,
while pandas over DuckDB results validates a million rows in well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import pandas as pd

from campaign_loop.config import Settings
from expectations.suites import (
    FILES_SUITE,
    SCHEMA_SUITE,
    load_rules,
    raw_suite_name,
    schema_types,
    suite_specs,
)
from ingest.contract import TRANSACTION_SOURCES, Contract, load_contract
from ingest.warehouse import literal, quote


def batch_window(settings: Settings, cycle_id: str) -> tuple[datetime, datetime]:
    """[start, end) of the cycle whose batch is ``cycle_id`` (the ISO date its period starts), naive UTC."""
    start = datetime.combine(date.fromisoformat(cycle_id), time())
    return start, start + timedelta(days=settings.cycle_days)


def raw_parameters(settings: Settings, cycle_id: str) -> dict[str, Any]:
    """Run-time values of the raw suites' $PARAMETERs: the latest acceptable timestamp, the quarantine limit."""
    _, end = batch_window(settings, cycle_id)
    grace = timedelta(hours=float(load_rules()["raw"].get("future_grace_hours", 0)))
    return {"batch_end": (end + grace).isoformat(), "quarantine_rate_max": settings.quarantine_rate_max}


def _raw_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, column, data_type in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw'"
    ).fetchall():
        out.setdefault(table, {})[column] = str(data_type).upper()
    return out


def schema_frame(con: duckdb.DuckDBPyConnection, contract: Contract) -> pd.DataFrame:
    """One row per column the contract expects: ``column:TYPE`` as the warehouse has it (MISSING if absent)."""
    actual = _raw_columns(con)
    rows = [
        {"source": source, "column": name, "column_type": f"{name}:{actual.get(source, {}).get(name, 'MISSING')}"}
        for source, columns in schema_types(contract).items()
        for name in columns
    ]
    return pd.DataFrame(rows, columns=["source", "column", "column_type"])


_FILES_COLUMNS = ("source", "file", "status", "rows_in_file", "rows_loaded", "rows_quarantined",
                  "quarantine_rate", "transaction_rows_loaded")


def files_frame(con: duckdb.DuckDBPyConnection, cycle_id: str) -> pd.DataFrame:
    """The batch's load log: one row per file, its quarantine rate and the transaction rows it loaded."""
    transactions = ", ".join(literal(s) for s in TRANSACTION_SOURCES)
    if "_load_log" not in _raw_columns(con):
        # Nothing was ever ingested: an empty log fails "transactions present" (fail closed).
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _FILES_COLUMNS})
    return con.execute(
        f"""
        SELECT source, file, status, rows_in_file, rows_loaded, rows_quarantined,
               CASE WHEN status = 'quarantined_file' THEN 1.0
                    ELSE coalesce(rows_quarantined / nullif(rows_in_file, 0), 0.0) END AS quarantine_rate,
               CASE WHEN source IN ({transactions}) THEN rows_loaded ELSE 0 END AS transaction_rows_loaded
        FROM raw._load_log WHERE batch = ? ORDER BY source, file
        """,
        [cycle_id],
    ).df()


def _suite_columns(expectations: tuple[dict[str, Any], ...]) -> list[str]:
    columns: list[str] = []
    for e in expectations:
        for name in [e["kwargs"].get("column"), *e["kwargs"].get("column_list", ())]:
            if name and name not in columns:
                columns.append(name)
    return columns


def source_frames(con: duckdb.DuckDBPyConnection, cycle_id: str, contract: Contract) -> Iterator[tuple[str, pd.DataFrame]]:
    """(suite name, the batch's rows of one source) for every source with rows in the batch.

    Only the columns the suite reads are fetched; a column missing from the warehouse is left out, so
    its expectations fail (and the schema suite says why) instead of the whole gate crashing.
    """
    actual = _raw_columns(con)
    specs = {s.name: s for s in suite_specs(contract)}
    for source in contract.sources:
        if source not in actual or "_batch" not in actual[source]:
            continue
        name = raw_suite_name(source)
        columns = [c for c in _suite_columns(specs[name].expectations) if c in actual[source]]
        select = ", ".join(quote(c) for c in columns) or "1 AS _present"
        frame = con.execute(f"SELECT {select} FROM raw.{quote(source)} WHERE _batch = ?", [cycle_id]).df()
        if len(frame):
            yield name, frame


def raw_frames(con: duckdb.DuckDBPyConnection, cycle_id: str, contract: Contract | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """Every raw suite's DataFrame for the batch, schema and load log first."""
    contract = contract or load_contract()
    yield SCHEMA_SUITE, schema_frame(con, contract)
    yield FILES_SUITE, files_frame(con, cycle_id)
    yield from source_frames(con, cycle_id, contract)
