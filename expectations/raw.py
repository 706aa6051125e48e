"""The raw layer of the batches a cycle must judge, as the DataFrames the raw suites validate.

A cycle judges every batch not yet published (``pending_batches``): its own, and any batch loaded or
corrected since the last publication, so a batch the gate rejected blocks every later cycle until a
corrected file supersedes the bad one. Only live rows count: rows of a superseded file are not judged.

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
from expectations.results import CheckResult
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


def raw_parameters(settings: Settings, cycle_id: str, batch: str | None = None) -> dict[str, Any]:
    """Run-time values of the raw suites' $PARAMETERs: the latest acceptable timestamp, the quarantine limit.

    A ``batch`` named by a date is judged against its own period; any other name (an export's own batch
    id) against the cycle's, the latest end a batch judged in this cycle can have.
    """
    try:
        _, end = batch_window(settings, batch or cycle_id)
    except ValueError:
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


_FILES_COLUMNS = ("source", "file", "status", "rows_in_file", "rows_loaded", "rows_quarantined", "quarantine_rate")
# Rows of a file a correction superseded are history, not data (docs/landing-contract.md#corrections).
_LIVE = "superseded_by IS NULL"


def _has_load_log(con: duckdb.DuckDBPyConnection) -> bool:
    return "_load_log" in _raw_columns(con)


def _last_publication(con: duckdb.DuckDBPyConnection) -> datetime | None:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'audit' AND table_name = 'publications'"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = con.execute("SELECT max(published_at) FROM audit.publications").fetchone()
    return row[0] if row else None


def pending_batches(con: duckdb.DuckDBPyConnection, cycle_id: str) -> tuple[str, ...]:
    """``cycle_id``'s batch and every batch with a live file loaded since the last publication, sorted.

    A publication follows a passed gate, so a batch loaded before it was judged and published; one loaded
    (or corrected) after it was not, whichever cycle it belongs to. A file landing while a cycle is between
    its raw gate and its publication counts as published with it: run ingest before the gate, as the DAG does.
    """
    if not _has_load_log(con):
        return (cycle_id,)
    published = _last_publication(con)
    since = "" if published is None else "AND loaded_at > ?"
    rows = con.execute(
        f"SELECT DISTINCT batch FROM raw._load_log WHERE {_LIVE} {since}", [] if published is None else [published]
    ).fetchall()
    return tuple(sorted({cycle_id, *(b for (b,) in rows)}))


def files_frame(con: duckdb.DuckDBPyConnection, batch: str) -> pd.DataFrame:
    """The batch's live files in the load log: one row per file and its quarantine rate."""
    if not _has_load_log(con):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _FILES_COLUMNS})
    return con.execute(
        f"""
        SELECT source, file, status, rows_in_file, rows_loaded, rows_quarantined,
               CASE WHEN status = 'quarantined_file' THEN 1.0
                    ELSE coalesce(rows_quarantined / nullif(rows_in_file, 0), 0.0) END AS quarantine_rate
        FROM raw._load_log WHERE batch = ? AND {_LIVE} ORDER BY source, file
        """,
        [batch],
    ).df()


def empty_week(con: duckdb.DuckDBPyConnection, batch: str) -> bool:
    """Whether ``batch`` is a week without transactions: no live file, or transaction files without rows,
    in a warehouse that ingested something (the raw gate's ``empty_week`` warning)."""
    if not _has_load_log(con):
        return False
    transactions = ", ".join(literal(s) for s in TRANSACTION_SOURCES)
    anything, files, rows = con.execute(
        f"""
        SELECT (SELECT count(*) FROM raw._load_log WHERE {_LIVE}),
               count(*), coalesce(sum(rows_loaded) FILTER (WHERE source IN ({transactions})), 0)
        FROM raw._load_log WHERE batch = ? AND {_LIVE}
        """,
        [batch],
    ).fetchone()
    has_transaction_file = con.execute(
        f"SELECT count(*) FROM raw._load_log WHERE batch = ? AND {_LIVE} AND source IN ({transactions})", [batch]
    ).fetchone()[0]
    return anything > 0 and (files == 0 or (has_transaction_file > 0 and rows == 0))


def transaction_checks(
    con: duckdb.DuckDBPyConnection, cycle_id: str, batches: tuple[str, ...], severity: dict[str, str]
) -> list[CheckResult]:
    """Per batch: does it hold transactions? One row each; ``transactions_present`` and ``empty_week``.

    Nothing ingested ever, or a batch whose files hold no orders nor receipts file (an export dropped), is
    critical: nothing to learn from, or something lost. A week without transactions (a closed holiday week)
    is a warning that says so: transaction files without rows, or no batch at all for the cycle.
    """
    transactions = ", ".join(literal(s) for s in TRANSACTION_SOURCES)
    table, names = "raw._load_log", " nor ".join(TRANSACTION_SOURCES)
    anything = _has_load_log(con) and con.execute(f"SELECT count(*) FROM raw._load_log WHERE {_LIVE}").fetchone()[0] > 0
    checks: list[CheckResult] = []
    for batch in batches:
        files, transaction_files, rows = (0, 0, 0) if not anything else con.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE source IN ({transactions})),
                   coalesce(sum(rows_loaded) FILTER (WHERE source IN ({transactions})), 0)
            FROM raw._load_log WHERE batch = ? AND {_LIVE}
            """,
            [batch],
        ).fetchone()
        where = f"batch {batch}"
        if not anything:
            checks.append(CheckResult("transactions_present", table, None, severity["transactions_present"], False,
                                      0, 1, f"{where}: nothing was ever ingested (fail closed)"))
        elif files == 0:
            checks.append(CheckResult("empty_week", table, None, severity["empty_week"], False, 0, 1,
                                      f"{where}: no file landed; an empty week (a closed holiday week?) - "
                                      "if files were expected, their export failed"))
        elif transaction_files == 0:
            checks.append(CheckResult("transactions_present", table, None, severity["transactions_present"], False,
                                      0, 1, f"{where}: {files} file(s) but no {names} file: a transaction export "
                                      "was dropped"))
        elif rows == 0:
            checks.append(CheckResult("empty_week", table, None, severity["empty_week"], False, 0, 1,
                                      f"{where}: its {names} files hold no rows: an empty week "
                                      "(a closed holiday week?)"))
        else:
            checks.append(CheckResult("transactions_present", table, None, severity["transactions_present"], True,
                                      float(rows), 1, where))
    return checks


def _suite_columns(expectations: tuple[dict[str, Any], ...]) -> list[str]:
    columns: list[str] = []
    for e in expectations:
        for name in [e["kwargs"].get("column"), *e["kwargs"].get("column_list", ())]:
            if name and name not in columns:
                columns.append(name)
    return columns


def source_frames(con: duckdb.DuckDBPyConnection, batch: str, contract: Contract) -> Iterator[tuple[str, pd.DataFrame]]:
    """(suite name, the batch's live rows of one source) for every source with live rows in the batch.

    Only the columns the suite reads are fetched; a column missing from the warehouse is left out, so
    its expectations fail (and the schema suite says why) instead of the whole gate crashing.
    """
    actual = _raw_columns(con)
    specs = {s.name: s for s in suite_specs(contract)}
    live = (
        "AND NOT EXISTS (SELECT 1 FROM raw._load_log l WHERE l.file_hash = r._file_hash AND l.superseded_by IS NOT NULL)"
        if "superseded_by" in actual.get("_load_log", {}) else ""
    )
    for source in contract.sources:
        if source not in actual or "_batch" not in actual[source]:
            continue
        name = raw_suite_name(source)
        columns = [c for c in _suite_columns(specs[name].expectations) if c in actual[source]]
        select = ", ".join(quote(c) for c in columns) or "1 AS _present"
        frame = con.execute(f"SELECT {select} FROM raw.{quote(source)} r WHERE _batch = ? {live}", [batch]).df()
        if len(frame):
            yield name, frame


def raw_frames(
    con: duckdb.DuckDBPyConnection, batch: str, contract: Contract | None = None, *, schema: bool = True
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Every raw suite's DataFrame for the batch, schema (unless ``schema`` is False) and load log first."""
    contract = contract or load_contract()
    if schema:
        yield SCHEMA_SUITE, schema_frame(con, contract)
    files = files_frame(con, batch)
    if len(files):
        # No file at all is for transaction_checks to judge: a max over no rows fails, whatever the week was.
        yield FILES_SUITE, files
    yield from source_frames(con, batch, contract)
