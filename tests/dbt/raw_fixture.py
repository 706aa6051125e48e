"""Raw tables exactly as ingest/ creates them, from the landing contract, for tests that need no simulator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest.contract import load_contract

RAW_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DECIMAL(18,4)",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}
LOAD_COLUMNS = {
    "_batch": "VARCHAR",
    "_file": "VARCHAR",
    "_file_hash": "VARCHAR",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
}


def create_raw(db_path: Path, rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
    """Create schema raw with one table per contract source; fill the given sources with rows."""
    rows = rows or {}
    db_path.parent.mkdir(parents=True, exist_ok=True)
    contract = load_contract()
    with duckdb.connect(str(db_path)) as con:
        con.execute("create schema if not exists raw")
        for source in contract.sources.values():
            columns = {name: RAW_TYPES[col.type] for name, col in source.columns.items()} | LOAD_COLUMNS
            ddl = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns.items())
            con.execute(f'create or replace table raw."{source.name}" ({ddl})')
            for number, row in enumerate(rows.get(source.name, ()), start=1):
                record = {
                    "_batch": "fixture",
                    "_file": f"fixture/{source.name}.csv",
                    "_file_hash": "fixture",
                    "_row_number": number,
                    "_loaded_at": datetime(2026, 1, 1),
                } | dict(row)
                names = list(record)
                placeholders = ", ".join("?" for _ in names)
                quoted = ", ".join(f'"{n}"' for n in names)
                con.execute(f'insert into raw."{source.name}" ({quoted}) values ({placeholders})',
                            [record[n] for n in names])
