"""Raw PII retention: after a cycle publishes, clear e-mails, phones and names older than
``raw_pii_retention_days`` leave the raw tables, newer ones stay, and the marts do not change, even rebuilt
from scratch out of the pseudonymised raw rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from campaign_loop.config import Settings
from ingest.retention import PREFIX, apply_retention, older_than

pytestmark = pytest.mark.slow  # a small world built twice by dbt: ~1 min on two busy cores

RETENTION_DAYS = 30
# Source -> (its PII columns, the time a row's age counts from).
# Columns holding when the model was built, which a rebuild changes whatever the data.
BUILD_TIME = {"recorded_at"}
PII = {"customers": (("email", "phone", "full_name"), "updated_at"), "orders": (("email", "phone"), "ordered_at")}


def _fingerprints(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Every table of ``schemas``: (rows, order-independent sum of row hashes)."""
    tables = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join('?' * len(schemas))}) AND table_type = 'BASE TABLE'", list(schemas),
    ).fetchall()
    out = {}
    for (table,) in tables:
        columns = {c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()}
        rows = f"(SELECT * EXCLUDE ({', '.join(BUILD_TIME & columns)}) FROM {table})" if BUILD_TIME & columns else table
        out[table] = con.execute(f"SELECT count(*), coalesce(sum(hash(r)), 0) FROM {rows} r").fetchone()
    return out


@dataclass(frozen=True)
class Scrubbed:
    settings: Settings
    cutoff: datetime
    raw_before: dict[str, list[tuple]]
    marts_before: dict[str, tuple[int, int]]
    summary: dict
    rerun: dict


def _raw(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {source: con.execute(
        f"SELECT _file, _row_number, {at}, {', '.join(columns)} FROM raw.{source} ORDER BY _file, _row_number"
    ).fetchall() for source, (columns, at) in PII.items()}


@pytest.fixture(scope="module")
def scrubbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrubbed]:
    from campaign_loop import pipeline
    from campaign_loop.dbt import run_dbt

    settings = Settings(home=tmp_path_factory.mktemp("retention"), customers=300, history_weeks=12,
                        newsletter_history=0, raw_pii_retention_days=RETENTION_DAYS)
    pipeline.simulate(settings, 0)
    pipeline.ingest(settings, 0)
    build = run_dbt(settings, "build", "--exclude", "test_type:unit")
    assert build.returncode == 0, build.stdout[-3000:]
    pipeline.publish(settings, 0, None)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        raw_before = _raw(con)
        marts_before = _fingerprints(con, ("intermediate", "marts", "published"))

    summary = apply_retention(settings, 0)
    rerun = apply_retention(settings, 0)
    yield Scrubbed(settings, older_than(settings, 0), raw_before, marts_before, summary, rerun)


def test_pii_older_than_the_retention_is_gone_and_newer_pii_stays(scrubbed: Scrubbed) -> None:
    with duckdb.connect(str(scrubbed.settings.warehouse_path), read_only=True) as con:
        raw_after = _raw(con)
        audit = con.execute("SELECT table_name, rows_pseudonymised, older_than FROM audit.raw_pii_retention "
                            "ORDER BY applied_at, table_name").fetchall()
    assert scrubbed.cutoff == datetime(2026, 1, 12) - timedelta(days=RETENTION_DAYS)
    for source in PII:
        before, after = scrubbed.raw_before[source], raw_after[source]
        assert [row[:3] for row in before] == [row[:3] for row in after]  # no row lost, none added
        old = [(b, a) for b, a in zip(before, after, strict=True) if b[2] < scrubbed.cutoff]
        new = [(b, a) for b, a in zip(before, after, strict=True) if b[2] >= scrubbed.cutoff]
        assert len(old) > 20 and len(new) > 20, (source, len(old), len(new))
        # Newer rows keep their clear values exactly.
        assert all(b == a for b, a in new)
        old_values = [(was, now) for b, a in old for was, now in zip(b[3:], a[3:], strict=True)]
        assert any(was is not None for was, _ in old_values)
        for was, now in old_values:
            assert now is None or (now.startswith(PREFIX) and was not in now), (source, was, now)
        assert sum(now is not None for _, now in old_values) > 20
        # The audit says how many rows of each table, and the rerun found nothing left to do.
        changed = sum(b != a for b, a in old)
        assert scrubbed.summary["tables"][f"raw.{source}"] == changed > 0
        assert scrubbed.rerun["tables"][f"raw.{source}"] == 0
        assert (f"raw.{source}", changed, scrubbed.cutoff) in audit


def test_the_marts_are_unchanged_even_rebuilt_from_the_pseudonymised_raw_rows(scrubbed: Scrubbed) -> None:
    from campaign_loop.dbt import run_dbt

    with duckdb.connect(str(scrubbed.settings.warehouse_path), read_only=True) as con:
        assert _fingerprints(con, ("intermediate", "marts", "published")) == scrubbed.marts_before
    # A full refresh stages every hash again, from the pseudonyms where the clear values are gone.
    build = run_dbt(scrubbed.settings, "build", "--full-refresh", "--exclude", "test_type:unit")
    assert build.returncode == 0, build.stdout[-3000:]
    with duckdb.connect(str(scrubbed.settings.warehouse_path), read_only=True) as con:
        rebuilt = _fingerprints(con, ("intermediate", "marts", "published"))
        pseudonymised = con.execute(f"SELECT count(*) FROM raw.orders WHERE starts_with(email, '{PREFIX}')").fetchone()[0]
    assert pseudonymised > 0
    assert rebuilt == scrubbed.marts_before


@pytest.mark.parametrize(("days", "expected"), [(None, None), (0, datetime(2026, 1, 12)), (90, datetime(2025, 10, 14))])
def test_zero_means_at_once_and_none_means_never(days: int | None, expected: datetime | None, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, raw_pii_retention_days=days)
    assert older_than(settings, 0) == expected
    assert apply_retention(settings, 0)["tables"] == {}  # no warehouse yet: nothing to do, nothing created
    assert not settings.warehouse_path.exists()


def test_none_is_written_as_none_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from campaign_loop.runner import airflow_env

    env = airflow_env(Settings(raw_pii_retention_days=None))
    assert env["CAMPAIGN_LOOP_RAW_PII_RETENTION_DAYS"] == "none"  # absent, the tasks would keep 90 days
    monkeypatch.setenv("CAMPAIGN_LOOP_RAW_PII_RETENTION_DAYS", "none")
    assert Settings().raw_pii_retention_days is None
