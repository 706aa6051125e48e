"""Raw PII retention: clear e-mails, phones and names leave the raw tables once they are old enough.

Staging reads raw PII only to hash it (HMAC with ``CAMPAIGN_LOOP_PII_KEY``); identity resolution and every
mart use the hashes. Raw keeps the clear values so a rebuild can hash them again, which is also why they
cannot simply be nulled: a full refresh, or a late profile version that makes staging re-read a member's
older rows, would then stage no hash for them and the marts would change. So after a cycle publishes, each
PII value of a row older than ``Settings.raw_pii_retention_days`` is replaced by its *pseudonym*,
``hmac-sha256:<hash>:<tag>``: ``<hash>`` is exactly the hash staging computes from the clear value (its own
normalisation, rendered from the dbt macros, and the same keyed UDF), ``<tag>`` a keyed check that only this
job can write (the dbt macro ``pseudonymize_pii`` takes the hash from a value only when its tag verifies).
A value staging would have hashed to null (junk such as "n/a", a malformed e-mail) becomes null.

A row's age is its own time (the first required timestamp of its source: an order's ``ordered_at``, a
profile's ``updated_at``) against the end of the cycle that just published, so a backfill or the simulated
year ages data as it would have aged live. Quarantined rows of those sources are never staged; their
``value`` and ``record`` (the raw text, PII included) are cleared once their batch (a cycle_id) is as old.
Each run writes one row per table to ``audit.raw_pii_retention``: what, how many rows, the cut-off, when.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Any

from campaign_loop.config import Settings
from campaign_loop.dbt import PROJECT_DIR
from campaign_loop.dbt_duckdb_plugin import hmac_hex, pii_key
from ingest.contract import Contract, Source, load_contract
from ingest.lock import connect_writer, writer_lock
from ingest.warehouse import quote, raw_table

PREFIX = "hmac-sha256:"  # as in dbt_project/macros/utils/pseudonymize.sql (retained_pseudonym)
UDF = "campaign_loop_hmac"  # the dbt plugin's name for the keyed hash, so staging's SQL and ours agree
# The dbt macro that normalises each PII column before staging hashes it.
NORMALIZERS: dict[str, str] = {"email": "normalize_email", "phone": "normalize_phone", "full_name": "normalize_name"}
AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.raw_pii_retention (
    cycle_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    columns VARCHAR NOT NULL,
    retention_days INTEGER NOT NULL,
    older_than TIMESTAMP NOT NULL,
    rows_pseudonymised BIGINT NOT NULL,
    applied_at TIMESTAMP NOT NULL
)
"""


class UnknownPiiColumn(RuntimeError):
    """A contract column marked pii has no normalisation here: retention could not match staging's hash."""


@cache
def _macros() -> Any:
    """identifiers.sql's macros as callables: plain Jinja, so the SQL staging uses is rendered, not copied."""
    import jinja2

    utils = PROJECT_DIR / "macros" / "utils"
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    # identifiers.sql calls spark.sql's Spark-portable regexp_replace_all, which dispatches on dbt's adapter
    # (and spark.sql holds dbt-only tags): the warehouse here is DuckDB, so the default macro, cut from that file.
    default = re.search(r"{% macro default__regexp_replace_all\(.*?{%- endmacro %}",
                        (utils / "spark.sql").read_text(), re.DOTALL)
    if default is None:
        raise RuntimeError(f"no default__regexp_replace_all macro in {utils / 'spark.sql'}")
    env.globals["regexp_replace_all"] = env.from_string(default.group(0)).module.default__regexp_replace_all
    return env.from_string((utils / "identifiers.sql").read_text()).module


def normalized(column: str) -> str:
    """The SQL staging hashes for raw PII column ``column`` (e.g. ``normalize_email('email')``)."""
    macro = NORMALIZERS.get(column)
    if macro is None:
        raise UnknownPiiColumn(
            f"the landing contract marks {column!r} as PII, but ingest.retention.NORMALIZERS has no normalisation "
            "for it: add the dbt macro staging hashes it with")
    render: Callable[[str], str] = getattr(_macros(), macro)
    return str(render(quote(column)))


def pii_columns(contract: Contract) -> dict[str, tuple[str, ...]]:
    """Source -> its PII columns, for every source that has any."""
    out = {name: tuple(c.name for c in source.columns.values() if c.pii) for name, source in contract.sources.items()}
    return {name: columns for name, columns in out.items() if columns}


def age_column(source: Source) -> str:
    """The time a row's age is counted from: its source's first required timestamp, else when it was loaded."""
    return next((c.name for c in source.columns.values() if c.required and c.type == "timestamp"), "_loaded_at")


def older_than(settings: Settings, cycle: int) -> datetime | None:
    """The cut-off of cycle ``cycle``: rows whose time is before it lose their clear PII (None: keep them)."""
    days = settings.raw_pii_retention_days
    if days is None:
        return None
    return datetime.combine(settings.cycle_start(cycle + 1) - timedelta(days=days), time())


def _retained(hash_sql: str) -> str:
    """SQL: the pseudonym of a hash, as staging's ``pseudonymize_pii`` (dbt) checks it."""
    return f"'{PREFIX}' || {hash_sql} || ':' || substr({UDF}('retained:' || {hash_sql}), 1, 16)"


def _pseudonym(column: str) -> str:
    """SQL: the pseudonym of a clear value; null for a value staging hashes to null."""
    return _retained(f"{UDF}(CAST(({normalized(column)}) AS VARCHAR))")


def _clear(column: str) -> str:
    """SQL: the column holds a clear value: not null and not a pseudonym this job wrote. A value an export sent
    in the pseudonym's form fails the keyed check and is clear (staging hashes it as a value, too)."""
    col = quote(column)
    return (f"(CASE WHEN {col} IS NULL THEN false WHEN starts_with({col}, '{PREFIX}') "
            f"THEN {col} <> {_retained(f'substr({col}, {len(PREFIX) + 1}, 64)')} ELSE true END)")


def _register_hash(con: Any, demo: bool) -> None:
    """The keyed hash staging uses, under the same name and key (campaign_loop.dbt_duckdb_plugin)."""
    import duckdb

    key = pii_key(demo)
    con.create_function(UDF, lambda value: hmac_hex(key, value), [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR"), null_handling="special", side_effects=False)


def apply_retention(settings: Settings, cycle: int) -> dict[str, Any]:
    """Replace the clear PII older than the retention in the raw tables by pseudonyms; returns what it did.

    Run after the cycle published: by then every raw row has been staged with its hash. Idempotent: a
    pseudonym is never touched again, so a rerun of the cycle changes nothing and writes zero-row audit rows.
    """
    cycle_id = settings.cycle_key(cycle)
    cutoff = older_than(settings, cycle)
    summary: dict[str, Any] = {"cycle_id": cycle_id, "retention_days": settings.raw_pii_retention_days,
                               "older_than": cutoff.isoformat() if cutoff else None, "tables": {}}
    if cutoff is None or not settings.warehouse_path.exists():
        return summary
    contract = load_contract()
    with writer_lock(settings.warehouse_path, f"raw PII retention of cycle {cycle_id}"), \
            connect_writer(settings.warehouse_path) as con:
        _register_hash(con, settings.demo)
        tables = {name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
        applied_at = datetime.now(UTC).replace(tzinfo=None)
        con.execute("BEGIN TRANSACTION")
        con.execute(AUDIT_DDL)
        audit: list[tuple[Any, ...]] = []
        for name, columns in pii_columns(contract).items():
            if name not in tables:
                continue
            source = contract.source(name)
            due = f"{quote(age_column(source))} < ? AND ({' OR '.join(_clear(c) for c in columns)})"
            rows = con.execute(f"SELECT count(*) FROM {raw_table(source)} WHERE {due}", [cutoff]).fetchone()[0]
            if rows:
                assignments = ", ".join(
                    f"{quote(c)} = CASE WHEN {_clear(c)} THEN {_pseudonym(c)} ELSE {quote(c)} END" for c in columns)
                con.execute(f"UPDATE {raw_table(source)} SET {assignments} WHERE {due}", [cutoff])
            audit.append((cycle_id, f"raw.{name}", ",".join(columns), settings.raw_pii_retention_days, cutoff,
                          rows, applied_at))
            summary["tables"][f"raw.{name}"] = rows
        if "_quarantine" in tables:
            rows = _clear_quarantine(con, settings, tuple(pii_columns(contract)), cutoff)
            audit.append((cycle_id, "raw._quarantine", "value,record", settings.raw_pii_retention_days, cutoff,
                          rows, applied_at))
            summary["tables"]["raw._quarantine"] = rows
        con.executemany("INSERT INTO audit.raw_pii_retention VALUES (?, ?, ?, ?, ?, ?, ?)", audit)
        con.execute("COMMIT")
    return summary


def _clear_quarantine(con: Any, settings: Settings, sources: tuple[str, ...], cutoff: datetime) -> int:
    """Clear the raw text of quarantined rows of PII sources whose batch (a cycle_id) ended before the cut-off;
    a batch not named by a date has no age and is kept."""
    if not sources:
        return 0
    due = (f"source IN ({', '.join('?' * len(sources))}) AND (value IS NOT NULL OR record IS NOT NULL) "
           f"AND try_cast(batch AS DATE) + INTERVAL {int(settings.cycle_days)} DAY <= ?")
    rows = con.execute(f"SELECT count(*) FROM raw._quarantine WHERE {due}", [*sources, cutoff]).fetchone()[0]
    if rows:
        con.execute(f"UPDATE raw._quarantine SET value = NULL, record = NULL WHERE {due}", [*sources, cutoff])
    return int(rows)
