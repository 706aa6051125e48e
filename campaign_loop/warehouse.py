"""Reading marts from whichever engine dbt built them on, a whole mart or in batches.

One interface (:class:`Warehouse`) for the Python steps that read marts, so that what they read does not
depend on DuckDB calls scattered through the code, and a mart larger than memory can be read a batch of
rows at a time (``batch_rows``) instead of whole. Three engines, as dbt's targets:

* :class:`DuckDBWarehouse`: the warehouse file (read-only) or a connection the caller holds (the gate's,
  which also writes the audit table).
* :class:`SparkWarehouse`: the parquet files of the Spark target's tables, read by DuckDB, so no JVM is
  started to read what Spark wrote (the Spark parity test reads them the same way).
* :class:`PostgresWarehouse`: a server-side cursor, so PostgreSQL sends one batch at a time.

``where`` keeps the rows a condition holds for, on the engine: a list of ``(column, op, value)`` with op one
of ``= < <= > >= like``, all of them true, the values (a ``like`` pattern too) bound as parameters. It is what
the steps need to read one as-of date, the dates up to a cycle or one kind of campaign (``trigger-%``)
without reading the whole mart.

DuckDB and Spark give the same pandas types (DuckDB's conversion of both); PostgreSQL's numerics arrive as
Python decimals. docs/decisions/0026-one-warehouse-interface.md has the survey and what still reads
around it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

if TYPE_CHECKING:
    import duckdb

# DuckDB hands over rows a vector (2,048 rows) at a time: a batch is a whole number of vectors.
DUCKDB_VECTOR_ROWS = 2048
# Comparisons and SQL's `like`: enough to bound dates, pick flags and a kind of campaign by its ID's prefix,
# and the same on every engine.
OPERATORS = frozenset({"=", "<", "<=", ">", ">=", "like"})

Condition = tuple[str, str, object]


class Warehouse(Protocol):
    def tables(self, schema: str) -> set[str]:
        """The tables (and views) of ``schema``."""
        ...

    def read_mart(self, name: str, columns: Sequence[str] | None = None, *, schema: str = "marts",
                  batch_rows: int | None = None, where: Sequence[Condition] = (),
                  distinct: bool = False) -> Generator[pd.DataFrame]:
        """``schema.name``'s ``columns`` (all when None) of the rows ``where`` holds for: one frame, or frames
        of about ``batch_rows`` rows; with ``distinct``, each combination once (the engine drops repeats)."""
        ...


def read_whole(warehouse: Warehouse, name: str, columns: Sequence[str] | None = None, *,
               schema: str = "marts", where: Sequence[Condition] = (), distinct: bool = False) -> pd.DataFrame:
    """A mart in one frame, for the steps that need every row at once."""
    with closing(warehouse.read_mart(name, columns, schema=schema, where=where,
                                     distinct=distinct)) as frames:  # closes its connection now
        return next(frames)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _select(columns: Sequence[str] | None, source: str, where: Sequence[Condition] = (),
            placeholder: str = "?", distinct: bool = False) -> tuple[str, list[object]]:
    """The query and its parameters; a column or operator is never taken from a value, so nothing is spliced."""
    listed = ", ".join(_quote(c) for c in columns) if columns else "*"
    sql = f"select {'distinct ' if distinct else ''}{listed} from {source}"
    for column, op, _ in where:
        if op not in OPERATORS:
            raise ValueError(f"unsupported operator {op!r} on {column!r}; expected one of {sorted(OPERATORS)}")
    if where:
        sql += " where " + " and ".join(f"{_quote(column)} {op} {placeholder}" for column, op, _ in where)
    return sql, [value for _, _, value in where]


def _duckdb_frames(con: duckdb.DuckDBPyConnection, query: tuple[str, list[object]],
                   batch_rows: int | None) -> Iterator[pd.DataFrame]:
    result = con.execute(*query)
    if batch_rows is None:
        yield result.df()
        return
    vectors = max(1, -(-batch_rows // DUCKDB_VECTOR_ROWS))
    while len(frame := result.fetch_df_chunk(vectors)):
        yield frame


class DuckDBWarehouse:
    """The DuckDB warehouse: its file, opened read-only for each read, or ``connection`` as given."""

    def __init__(self, path: Path | str | None = None, connection: duckdb.DuckDBPyConnection | None = None) -> None:
        if (path is None) == (connection is None):
            raise ValueError("give the warehouse's path or an open connection, not both")
        self.path, self.connection = path, connection

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.connection is not None:
            yield self.connection
            return
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:  # a reader never takes the writer's lock
            yield con

    def tables(self, schema: str) -> set[str]:
        with self._connect() as con:
            return {t for (t,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]).fetchall()}

    def read_mart(self, name: str, columns: Sequence[str] | None = None, *, schema: str = "marts",
                  batch_rows: int | None = None, where: Sequence[Condition] = (),
                  distinct: bool = False) -> Generator[pd.DataFrame]:
        with self._connect() as con:
            yield from _duckdb_frames(con, _select(columns, f"{_quote(schema)}.{_quote(name)}", where, distinct=distinct),
                                      batch_rows)


class SparkWarehouse:
    """The Spark target's tables as the parquet files under ``<home>/spark/warehouse/<schema>.db/<table>``."""

    def __init__(self, home: Path | str) -> None:
        self.root = Path(home) / "spark" / "warehouse"

    def tables(self, schema: str) -> set[str]:
        directory = self.root / f"{schema}.db"
        return {p.name for p in directory.iterdir() if p.is_dir()} if directory.is_dir() else set()

    def read_mart(self, name: str, columns: Sequence[str] | None = None, *, schema: str = "marts",
                  batch_rows: int | None = None, where: Sequence[Condition] = (),
                  distinct: bool = False) -> Generator[pd.DataFrame]:
        import duckdb

        files = self.root / f"{schema}.db" / name / "*.parquet"
        with duckdb.connect() as con:
            yield from _duckdb_frames(con, _select(columns, f"read_parquet('{files.as_posix()}')", where, distinct=distinct),
                                      batch_rows)


class PostgresWarehouse:
    """The PostgreSQL target's database at ``url`` (a libpq connection string or URL)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def tables(self, schema: str) -> set[str]:
        import psycopg2

        con = psycopg2.connect(self.url)
        try:
            with con.cursor() as cursor:
                cursor.execute("select table_name from information_schema.tables where table_schema = %s", [schema])
                return {t for (t,) in cursor.fetchall()}
        finally:
            con.close()  # psycopg2's `with` ends the transaction, not the connection

    def read_mart(self, name: str, columns: Sequence[str] | None = None, *, schema: str = "marts",
                  batch_rows: int | None = None, where: Sequence[Condition] = (),
                  distinct: bool = False) -> Generator[pd.DataFrame]:
        import psycopg2

        con = psycopg2.connect(self.url)
        try:
            # A named cursor lives on the server: each fetchmany brings one batch, not the whole result.
            with con.cursor(name="campaign_loop_read_mart") as cursor:
                cursor.execute(*_select(columns, f"{_quote(schema)}.{_quote(name)}", where, placeholder="%s",
                                       distinct=distinct))
                while True:
                    rows = cursor.fetchmany(batch_rows) if batch_rows else cursor.fetchall()
                    names = [d[0] for d in cursor.description]
                    if rows or batch_rows is None:
                        yield pd.DataFrame.from_records(rows, columns=names)
                    if not rows or batch_rows is None:
                        break
        finally:
            con.close()
