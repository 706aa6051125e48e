"""SQL over ingest's load log that the decision and delivery checks share: which raw rows are live, which
were loaded since the last publication, and which raw columns exist.

A module of its own so that ``decisions`` (which runs the delivery checks) and ``deliveries`` (which needs
these) do not import each other.
"""

from __future__ import annotations

import duckdb

_LIVE_FILE = "(SELECT file_hash FROM raw._load_log WHERE superseded_by IS NULL)"


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'raw'"
    ).fetchall():
        out.setdefault(table, set()).add(column)
    return out


def _live(alias: str = "r") -> str:
    return f"{alias}._file_hash IN {_LIVE_FILE}"


def _loaded(alias: str, after: bool) -> str:
    """Rows of files loaded after (or up to) the last publication: ``?`` is its time."""
    op = ">" if after else "<="
    return f"{alias}._file_hash IN (SELECT file_hash FROM raw._load_log WHERE loaded_at {op} ?)"
