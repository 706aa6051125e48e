"""Write models/staging/_raw__sources.yml from the landing contract (ingest/landing_contract.yaml).

The contract is the single source of truth for raw columns; tests/dbt checks the committed file is current.
Run: .venv/bin/python dbt_project/scripts/generate_sources.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "dbt_project" / "models" / "staging" / "_raw__sources.yml"
RAW_TYPES = {
    "string": "varchar",
    "integer": "bigint",
    "decimal": "decimal(18,4)",
    "double": "double",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "date": "date",
}
LOAD_COLUMNS = {
    "_batch": ("varchar", "raw_batch"),
    "_file": ("varchar", "raw_file"),
    "_file_hash": ("varchar", "raw_file_hash"),
    "_row_number": ("bigint", "raw_row_number"),
    "_loaded_at": ("timestamp", "raw_loaded_at"),
}
HEADER = (
    "# Generated from ingest/landing_contract.yaml by dbt_project/scripts/generate_sources.py: do not edit.\n"
)


def render() -> str:
    sys.path.insert(0, str(ROOT))
    from ingest.contract import load_contract

    contract = load_contract()
    tables = []
    for source in contract.sources.values():
        columns = []
        for column in source.columns.values():
            text = column.description
            if column.pii:
                text += " Clear PII: only staging reads it, as a keyed hash."
            columns.append({"name": column.name, "data_type": RAW_TYPES[column.type], "description": text})
        for name, (data_type, doc) in LOAD_COLUMNS.items():
            columns.append({"name": name, "data_type": data_type, "description": f'{{{{ doc("{doc}") }}}}'})
        tables.append({
            "name": source.name,
            "description": f"{source.description} Natural key: {', '.join(source.key)}. "
            f"Append-only: re-sent and updated rows are kept; staging dedupes.",
            "meta": {"natural_key": list(source.key), "timezone": source.timezone},
            "columns": columns,
        })
    doc = {
        "version": 2,
        "sources": [{
            "name": "raw",
            "description": '{{ doc("raw_source") }}',
            "schema": "raw",
            "loader": "ingest",
            "meta": {"contract_version": contract.version},
            "tables": tables,
        }],
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=110, allow_unicode=True)


def main() -> None:
    TARGET.write_text(render())


if __name__ == "__main__":
    main()
