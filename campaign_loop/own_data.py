"""A retailer's own data: a starter home, history split into weekly batches, and which cycles can run.

`campaign-loop init` writes the home, `campaign-loop import-history` lands a long export as one batch per
cycle (the batch a row belongs to is the cycle its own time falls in, read with the landing contract's
parsers), and `run` / `backfill` ask :func:`cycles_to_run` which cycles the landed data covers, so that a
date before the data, after it, or off the cycle calendar is a clear error instead of a silent no-op.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from campaign_loop.config import SETTINGS_FILE, Settings, cycle_id, settings_file
from ingest.contract import TRANSACTION_SOURCES, Contract, Source, load_contract
from ingest.landing import discover
from ingest.validate import typed
from ingest.warehouse import literal, quote

# A source without a time of its own lands with the batch of the row it belongs to.
PARENTS: dict[str, tuple[str, str]] = {
    "order_lines": ("orders", "order_id"),
    "pos_receipt_lines": ("pos_receipts", "receipt_id"),
    "campaign_sends": ("campaigns", "campaign_id"),
}
_DOCS = "see docs/own-data.md"


class OwnDataError(ValueError):
    """A request the retailer's data or calendar cannot serve; the message says what to change."""


def time_column(source: Source) -> str | None:
    """The column that dates a row of ``source``: its first required timestamp or date column."""
    return next((c.name for c in source.columns.values() if c.required and c.type in ("timestamp", "date")), None)


# --- init -----------------------------------------------------------------------------------------------

def init_home(home: Path, contract: Contract | None = None) -> list[Path]:
    """A starter home: the settings file, one empty landing folder per source and a README of what goes
    where. Refuses to overwrite an existing settings file."""
    contract = contract or load_contract()
    root = home.expanduser().resolve()
    path = settings_file(root)
    if path.exists():
        raise OwnDataError(f"{path} exists already; edit it, or choose another --home")
    landing = Settings(home=root).landing_dir
    written = []
    for name in contract.sources:
        (landing / name).mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(_settings_template(root))
    written.append(path)
    readme = root / "README.md"  # beside landing/, which holds source folders only
    readme.write_text(_landing_readme(contract))
    written.append(readme)
    return written


def _settings_template(root: Path) -> str:
    return f"""# Campaign Loop settings for the home {root}.
# Every Settings key may be set here as CAMPAIGN_LOOP_<KEY>=value (`campaign-loop run --help` lists them);
# the environment and command-line flags override this file. See docs/own-data.md.

# A retailer's own data, not the simulator. The PII key is a secret, not a setting: export
# CAMPAIGN_LOOP_PII_KEY in the environment of every command and of Airflow; runs refuse to start without it.
CAMPAIGN_LOOP_DEMO=false

# The cycle calendar: cycle 0 starts on this Monday. `campaign-loop import-history` sets it to the Monday on
# or before your first history day when it is not set here yet.
# CAMPAIGN_LOOP_START_DATE=2011-01-03
# CAMPAIGN_LOOP_CYCLE_DAYS=7

# Your business: local time of naive store timestamps and send times, the channels you send on, the margin
# of products without a unit cost, and whether members without a consent record may be contacted.
# CAMPAIGN_LOOP_TIMEZONE=Europe/London
# CAMPAIGN_LOOP_CHANNELS=email,sms
# CAMPAIGN_LOOP_DEFAULT_MARGIN_RATE=0.3
# CAMPAIGN_LOOP_ASSUME_CONSENT=false

# The campaign each cycle designs.
# CAMPAIGN_LOOP_BUDGET=20000
# CAMPAIGN_LOOP_HOLDOUT_SHARE=0.1
# CAMPAIGN_LOOP_CONTACT_CAP=4
"""


def _landing_readme(contract: Contract) -> str:
    lines = [
        "# What to put where",
        "",
        "One folder per source under `landing/`. Put each cycle's export in",
        "`landing/<source>/<cycle_id>/<any name>.csv` (or `.parquet`,",
        "`.csv.gz`), where `<cycle_id>` is the ISO date the cycle starts (a Monday by default). A corrected file",
        "for a batch is landed under the same path and name. A long history export goes through",
        "`campaign-loop import-history`, which writes these folders for you. The full contract, column by",
        "column: docs/landing-contract.md; the walkthrough: docs/own-data.md.",
        "",
        "| source | what | one row per | required columns | dated by |",
        "|---|---|---|---|---|",
    ]
    for name, source in contract.sources.items():
        dated = time_column(source) or (f"its {PARENTS[name][0]} row" if name in PARENTS else "the first batch")
        required = ", ".join(f"`{c}`" for c in source.required_columns) or "(none)"
        lines.append(f"| `{name}` | {source.description} | {', '.join(source.key)} | {required} | {dated} |")
    return "\n".join(lines) + "\n"


# --- import-history -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportedSource:
    source: str
    file: str
    rows: int
    batches: int
    first_batch: str
    last_batch: str
    undated_rows: int  # rows whose time does not parse: they land in the first batch, where ingest quarantines them
    before_start_rows: int  # rows older than cycle 0: history, landed with cycle 0


@dataclass(frozen=True)
class HistoryImport:
    start_date: date
    start_date_written: bool  # the home's settings file did not fix the calendar; import-history did
    sources: tuple[ImportedSource, ...]


def monday_on_or_before(day: date) -> date:
    return day - timedelta(days=day.weekday())


def import_history(settings: Settings, files: Mapping[str, Path], explicit_start: bool) -> HistoryImport:
    """Land each ``source -> file`` export as one batch per cycle under the landing folder.

    Dated sources first; line and send sources follow their parent's batch (their parent file must be part
    of the same import). Without ``explicit_start`` (no start_date in the environment or the home's
    settings file) the calendar starts on the Monday on or before the earliest dated row, and that start
    is written to the settings file so every later command agrees.
    """
    contract = load_contract()
    for source, path in files.items():
        contract.source(source)  # an unknown source is an error naming the known ones
        if not path.is_file():
            raise OwnDataError(f"{path}: no such file (given for source {source!r})")
    for child, (parent, _) in PARENTS.items():
        if child in files and parent not in files:
            raise OwnDataError(f"{child} is dated by its {parent}: import {parent}=<file> in the same command")

    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for source, path in files.items():
            _read(con, source, path)
        start = settings.start_date
        written = False
        if not explicit_start:
            first = _earliest(con, settings, contract, files)
            if first is not None:
                start = monday_on_or_before(first)
                _write_start_date(settings, start)
                written = True
        calendar = settings.model_copy(update={"start_date": start})
        imported = []
        ordered = [s for s in files if s not in PARENTS] + [s for s in files if s in PARENTS]
        for source in ordered:
            imported.append(_split(con, calendar, contract.source(source), files[source]))
    return HistoryImport(start, written, tuple(imported))


def _table(source: str) -> str:
    return quote(f"history_{source}")


def _read(con: duckdb.DuckDBPyConnection, source: str, path: Path) -> None:
    name = path.name.lower()
    scan = (f"read_parquet({literal(str(path))})" if name.endswith(".parquet")
            else f"read_csv({literal(str(path))}, all_varchar = true, header = true)")
    try:
        con.execute(f"CREATE TABLE {_table(source)} AS SELECT *, row_number() OVER () AS _row FROM {scan}")
    except duckdb.Error as error:
        raise OwnDataError(f"{path}: cannot be read as {source}: {str(error).splitlines()[0]}") from None


def _header(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """Contract column -> the column as the file names it (headers match case- and space-insensitively)."""
    names = [row[0] for row in con.execute(f"DESCRIBE {_table(source)}").fetchall() if row[0] != "_row"]
    return {name.strip().lower(): name for name in names}


def _time_sql(con: duckdb.DuckDBPyConnection, settings: Settings, source: Source, path: Path) -> str:
    column = time_column(source)
    if column is None:
        return "CAST(NULL AS TIMESTAMP)"
    header = _header(con, source.name)
    if column not in header:
        raise OwnDataError(f"{path}: column {column!r} of source {source.name!r} is missing; it dates each row ({_DOCS})")
    value = f"NULLIF(trim(CAST({quote(header[column])} AS VARCHAR)), '')"
    return f"CAST({typed(source.columns[column], value, source.zone(settings.timezone))} AS TIMESTAMP)"


def _earliest(con: duckdb.DuckDBPyConnection, settings: Settings, contract: Contract,
              files: Mapping[str, Path]) -> date | None:
    # The calendar follows behaviour: a CRM profile changed years ago does not start the history.
    dated = [s for s in files if time_column(contract.source(s)) is not None]
    anchors = [s for s in dated if s in TRANSACTION_SOURCES] or dated
    firsts = []
    for source in anchors:
        path = files[source]
        row = con.execute(f"SELECT min({_time_sql(con, settings, contract.source(source), path)}) "
                          f"FROM {_table(source)}").fetchone()
        if row and row[0] is not None:
            firsts.append(row[0].date())
    return min(firsts) if firsts else None


def _write_start_date(settings: Settings, start: date) -> None:
    path = settings_file(settings.root)
    text = path.read_text() if path.exists() else ""
    line = f"CAMPAIGN_LOOP_START_DATE={start.isoformat()}"
    if re.search(r"^CAMPAIGN_LOOP_START_DATE=", text, flags=re.M):
        text = re.sub(r"^CAMPAIGN_LOOP_START_DATE=.*$", line, text, flags=re.M)
    else:
        text = text + ("" if text.endswith("\n") or not text else "\n") + \
            "# Written by campaign-loop import-history: the Monday on or before the first history day.\n" + line + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _split(con: duckdb.DuckDBPyConnection, settings: Settings, source: Source, path: Path) -> ImportedSource:
    start, days = settings.start_date, settings.cycle_days
    if source.name in PARENTS:
        parent, key = PARENTS[source.name]
        mine, theirs = _header(con, source.name), _header(con, parent)
        if key not in mine or key not in theirs:
            raise OwnDataError(f"{path}: column {key!r} is needed to land {source.name} with its {parent}")
        # A line whose parent is absent lands in the first batch: ingest keeps it, dbt reports the orphan.
        cycle = (f"(SELECT min(p._cycle) FROM {quote(f'cycles_{parent}')} p "
                 f"WHERE trim(CAST(p.{quote(theirs[key])} AS VARCHAR)) = trim(CAST(h.{quote(mine[key])} AS VARCHAR)))")
        when = "CAST(NULL AS TIMESTAMP)"
    else:
        when = _time_sql(con, settings, source, path)
        cycle = f"CAST(floor(date_diff('day', DATE {literal(start.isoformat())}, CAST(_when AS DATE)) / {days}) AS BIGINT)"
    columns = ", ".join(quote(name) for name in _header(con, source.name).values())
    con.execute(
        f"""
        CREATE TABLE {quote(f'cycles_{source.name}')} AS
        SELECT *, greatest(coalesce(_cycle_raw, 0), 0) AS _cycle FROM (
            SELECT h.*, _when, {cycle} AS _cycle_raw FROM (SELECT *, {when} AS _when FROM {_table(source.name)}) h
        )
        """
    )
    dated = "true" if time_column(source) is not None else "false"
    stats = con.execute(
        f"""
        SELECT count(*), count(DISTINCT _cycle), min(_cycle), max(_cycle),
               count(*) FILTER (WHERE _when IS NULL AND _cycle_raw IS NULL AND {dated}),
               count(*) FILTER (WHERE _cycle_raw < 0)
        FROM {quote(f'cycles_{source.name}')}
        """
    ).fetchone()
    assert stats is not None
    rows, batches, first, last, undated, before = (int(v or 0) for v in stats)
    stem = path.name.split(".")[0]
    for (number,) in con.execute(f"SELECT DISTINCT _cycle FROM {quote(f'cycles_{source.name}')} ORDER BY 1").fetchall():
        batch = cycle_id(start + timedelta(days=days * int(number)))
        target = settings.landing_dir / source.name / batch / f"{stem}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT {columns} FROM {quote(f'cycles_{source.name}')} WHERE _cycle = {int(number)} ORDER BY _row) "
            f"TO {literal(str(target))} (HEADER, DELIMITER ',')"
        )
    return ImportedSource(
        source.name, str(path), rows, batches,
        cycle_id(start + timedelta(days=days * first)), cycle_id(start + timedelta(days=days * last)),
        undated, before,
    )


# --- which cycles can run -------------------------------------------------------------------------------

def landed_batches(settings: Settings) -> dict[str, list[str]]:
    """Batch name -> the sources that landed a file in it."""
    contract = load_contract()
    batches: dict[str, list[str]] = {}
    for file in discover(settings.landing_dir, contract, tuple(contract.sources)):
        sources = batches.setdefault(file.batch, [])
        if file.source not in sources:
            sources.append(file.source)
    return batches


def cycle_of(settings: Settings, day: date, what: str) -> int:
    """The cycle that starts on ``day``, or a clear error when ``day`` is not a cycle start of the calendar."""
    where = f"set CAMPAIGN_LOOP_START_DATE in {SETTINGS_FILE} of the home, or --start_date"
    if day < settings.start_date:
        raise OwnDataError(f"{what} {day} is before start_date {settings.start_date}, the first day of cycle 0 ({where})")
    cycle, offset = divmod((day - settings.start_date).days, settings.cycle_days)
    if offset:
        before, after = settings.cycle_start(cycle), settings.cycle_start(cycle + 1)
        raise OwnDataError(f"{what} {day} is not a cycle start: cycles of {settings.cycle_days} days start on "
                           f"{settings.start_date}; the nearest are {before} and {after}")
    return cycle


def cycles_to_run(settings: Settings, first: date | None, last: date | None) -> list[int]:
    """The cycles from ``first`` to ``last`` (cycle_ids), checked against the landed data: each must be a
    cycle start the data covers, never one past the newest batch. Without either: the cycle after the last
    published one, or on a new warehouse the newest landed batch."""
    batches = landed_batches(settings)
    if not batches:
        raise OwnDataError(f"nothing has landed under {settings.landing_dir}: put each export in "
                           f"<source>/<cycle_id>/, or run `campaign-loop import-history` ({_DOCS})")
    dated: dict[int, str] = {}
    for batch in batches:
        try:
            day = date.fromisoformat(batch)
        except ValueError:
            raise OwnDataError(
                f"{settings.landing_dir / batches[batch][0] / batch}: batch {batch!r} is not a cycle's start date; "
                f"land files in <source>/<cycle_id>/ (e.g. {settings.cycle_key(0)}) or split a history export "
                f"with `campaign-loop import-history` ({_DOCS})") from None
        dated[cycle_of(settings, day, f"batch {batch!r} of {', '.join(batches[batch])}")] = batch
    newest = max(dated)
    published = last_published(settings)
    if last is not None:
        last_cycle = cycle_of(settings, last, "--to" if first is not None else "cycle_id")
    elif first is None and published is not None:
        last_cycle = published + 1  # `run` goes on where the loop stopped, one cycle at a time
    else:
        last_cycle = newest
    first_cycle = last_cycle if first is None else cycle_of(settings, first, "--from")
    if first_cycle > last_cycle:
        raise OwnDataError(f"--from {settings.cycle_key(first_cycle)} is after --to {settings.cycle_key(last_cycle)}")
    if last_cycle > newest:
        raise OwnDataError(f"cycle {settings.cycle_key(last_cycle)} has no data yet: the newest landed batch is "
                           f"{dated[newest]}; land that cycle's files in <source>/{settings.cycle_key(last_cycle)}/ first")
    return list(range(first_cycle, last_cycle + 1))


def last_published(settings: Settings) -> int | None:
    """The newest cycle whose marts were published, if any (audit.publications)."""
    if not settings.warehouse_path.exists():
        return None
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        exists = con.execute("select count(*) from information_schema.tables "
                             "where table_schema = 'audit' and table_name = 'publications'").fetchone()
        row = con.execute("select max(cycle_id) from audit.publications").fetchone() if exists and exists[0] else None
    return None if not row or row[0] is None else settings.cycle_index(date.fromisoformat(str(row[0])))


def sources_missing(settings: Settings, cycles: Sequence[int]) -> dict[str, list[str]]:
    """cycle_id -> the sources that landed in the cycle before but not in this one: a late or stopped
    export, or a closed week (the gate judges which; this only says it)."""
    batches = landed_batches(settings)
    return {settings.cycle_key(c): [s for s in batches.get(settings.cycle_key(c - 1), [])
                                    if s not in batches.get(settings.cycle_key(c), [])]
            for c in cycles}
