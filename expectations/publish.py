"""Write-audit-publish: dbt writes the `marts` schema, the gate audits it, only then is it published.

Models and analysts read the `published` schema. Publishing copies every mart in ONE transaction, so
readers see either the last published cycle or the new one, never a mix; a cycle whose audit failed
never reaches this function, and the last published marts stay in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from campaign_loop.config import Settings
from ingest.lock import connect_writer, writer_lock

SOURCE_SCHEMA = "marts"
PUBLISHED_SCHEMA = "published"

_PUBLICATIONS_DDL = """
create table if not exists audit.publications (
    cycle_id varchar not null,
    validation_result_id varchar,
    tables integer not null,
    published_at timestamp not null
)
"""


@dataclass(frozen=True)
class Publication:
    cycle_id: str
    tables: tuple[str, ...]
    validation_result_id: str | None


def publish(settings: Settings, cycle_id: str, validation_result_id: str | None = None) -> Publication:
    # Another writer is named, not met as DuckDB's lock traceback; inside a cycle the cycle's lock covers this.
    with writer_lock(settings.warehouse_path, f"publish of cycle {cycle_id}"), \
            connect_writer(settings.warehouse_path) as con:
        tables = tuple(name for (name,) in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and table_type = 'BASE TABLE' order by table_name", [SOURCE_SCHEMA],
        ).fetchall())
        if not tables:
            raise RuntimeError(f"nothing to publish: schema {SOURCE_SCHEMA!r} in {settings.warehouse_path} is empty")
        con.execute("begin transaction")
        try:
            con.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
            con.execute("create schema if not exists audit")
            con.execute(_PUBLICATIONS_DDL)
            for table in tables:
                con.execute(
                    f'create or replace table {PUBLISHED_SCHEMA}."{table}" as select * from {SOURCE_SCHEMA}."{table}"'
                )
            con.execute(
                "insert into audit.publications values (?, ?, ?, ?)",
                [cycle_id, validation_result_id, len(tables), datetime.now(UTC).replace(tzinfo=None)],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return Publication(cycle_id=cycle_id, tables=tables, validation_result_id=validation_result_id)
