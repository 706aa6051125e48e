"""Idempotent ingestion: every landing file is loaded into ``raw.<source>`` exactly once.

A file is recognised by the sha256 of its content, so renaming or re-landing an identical file changes
nothing. A new file in the place of an earlier one (same source, batch and path, whatever its format) is
a correction: the earlier file's load-log row gets ``superseded_by`` = the new hash, and staging reads
only rows of files nobody superseded. Each file is read by DuckDB's own readers into temporary tables, validated with one SQL
statement, and written in ONE transaction: its good rows, its quarantined rows and its load-log row
either all land or none do. Rows are never de-duplicated here: raw is append-only, staging dedupes.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import logging
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

from campaign_loop.config import Settings
from ingest.contract import Source, load_contract
from ingest.landing import LandingFile, check_sources, discover, missing_columns_error, same_slot_error, slot
from ingest.lock import connect_writer, writer_lock
from ingest.report import FileResult, IngestReport
from ingest.validate import problems, raw_name, typed, typed_name
from ingest.warehouse import METADATA_COLUMNS, ensure_schema, literal, quote, raw_table

log = logging.getLogger(__name__)

_REJECTS, _REJECT_SCANS = "_ingest_rejects", "_ingest_reject_scans"
# Parquet types whose VARCHAR cast would not read back as the contract's formats.
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
# The delimiters the landing contract allows; the first wins a tie.
_DELIMITERS = (",", "|", ";", "\t")
# DuckDB's reader rejects a longer line alone (or fails the whole file when the line is in its sniffer's
# sample): never lower than its own default.
_DUCKDB_LINE_MAX = 2_097_152
_PREFIX = 100  # characters of an over-long value kept in the quarantine, enough to recognise it


@dataclass(frozen=True)
class _Header:
    """A CSV header read by us, within ``header_bytes_max``: DuckDB then reads the file with exactly this
    dialect and these names, and never sniffs (its sniffer fails a whole file on one over-long line)."""

    delimiter: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    """A new file, probed: which of its columns feed which contract column, or why it cannot be read."""

    file: LandingFile
    source: Source
    file_hash: str
    columns: dict[str, tuple[str, str]]  # contract column -> (column as named in the file, DuckDB type)
    file_columns: tuple[str, ...]  # every column as named in the file, for the quarantine's record
    unknown: tuple[str, ...]
    error: str | None = None  # set when the file cannot be parsed at all: quarantined whole
    header: _Header | None = None  # CSV only: read from the header line, None leaves it to DuckDB's sniffer
    line_max: int = _DUCKDB_LINE_MAX  # CSV only: DuckDB's max_line_size for this file


def ingest(settings: Settings, sources: Sequence[str] | None = None, through: str | None = None) -> IngestReport:
    """Load every landing file not loaded yet (of ``sources``, default all) into the warehouse's raw layer.

    With ``through`` (a cycle_id), a batch named by a later cycle's date waits for its own cycle: a backfill
    over weekly history batches that all landed up front must not let a past cycle see its future.

    Raises ``LandingError`` before loading anything when the landing directory breaks the contract in a
    way that needs a person: missing folder, unknown source folder, unknown file format, missing column.
    """
    contract = load_contract()
    selected = check_sources(contract, sources)
    files = [f for f in discover(settings.landing_dir, contract, selected) if not _later_batch(f.batch, through)]
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)

    with writer_lock(settings.warehouse_path, "ingest"), connect_writer(settings.warehouse_path) as con:
        # Casting aware timestamps to text and back must never depend on the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        ensure_schema(con, contract)
        seen = {h for (h,) in con.execute("SELECT file_hash FROM raw._load_log").fetchall()}

        results: dict[str, FileResult] = {}
        plans: list[_Plan] = []
        new: dict[tuple[str, str, str], LandingFile] = {}
        for file in files:
            file_hash = file.sha256()
            if file_hash in seen:
                results[file.relpath] = FileResult(file.source, file.batch, file.relpath, file_hash, "skipped")
                continue
            seen.add(file_hash)
            place = (file.source, file.batch, file.slot)
            if place in new:
                # Which of two new versions corrects the other is a question for a person, not for sort order.
                raise same_slot_error(new[place], file)
            new[place] = file
            # Probing every new file before loading any is what lets a missing column stop the run clean.
            plans.append(_probe(con, file, contract.source(file.source), file_hash, settings))

        for plan in plans:
            results[plan.file.relpath] = _load(con, plan, settings, loaded_at)

    report = IngestReport.of([results[f.relpath] for f in files], settings.quarantine_rate_max)
    for notice in report.unknown_columns:
        log.warning("%s", notice)
    for flagged in report.flagged:
        log.warning("%s: %.1f%% of rows quarantined", flagged.file, 100 * flagged.quarantine_share)
    return report


def _later_batch(batch: str, through: str | None) -> bool:
    """Whether ``batch`` names a cycle after ``through``; a batch not named by a date is never held back."""
    if through is None:
        return False
    try:
        return date.fromisoformat(batch) > date.fromisoformat(through)
    except ValueError:
        return False


def _scan(file: LandingFile, header: _Header | None, line_max: int) -> str:
    path = literal(str(file.path))
    if file.format == "parquet":
        return f"read_parquet({path}, file_row_number = true)"
    # The sniffer guesses the dialect from sampled rows, and odd rows (quoted commas, doubled quotes) can make
    # it take a header of contract names for data; the header line itself says which delimiter is meant.
    dialect = ""
    if header is not None:
        columns = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header.names) + "}"
        dialect = (f"delim = {literal(header.delimiter)}, quote = '\"', escape = '\"', columns = {columns}, "
                   "auto_detect = false, ")
    # all_varchar: typing is the contract's job (in SQL), the reader must never guess or reject on type.
    return (
        f"read_csv({path}, {dialect}all_varchar = true, header = true, max_line_size = {line_max}, "
        f"store_rejects = true, rejects_table = {literal(_REJECTS)}, rejects_scan = {literal(_REJECT_SCANS)})"
    )


def _first_line_within(file: LandingFile, limit: int) -> bytes | None:
    """The file's first line (decompressed), reading at most ``limit`` + 1 bytes; None when it is longer.

    Raises OSError, EOFError or zlib.error when the file (or its compression) is unreadable.
    """
    opener = gzip.open if file.path.name.lower().endswith(".gz") else open
    with opener(file.path, "rb") as handle:
        head = handle.read(limit + 1)
    end = head.find(b"\n")
    if end < 0:
        return head if len(head) <= limit else None
    return head[:end]


def _header(line: bytes, source: Source) -> _Header | None:
    """The allowed delimiter that splits the header line into the most contract column names, if any does,
    and the line's column names as DuckDB would name them."""
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        return None  # DuckDB's reader will give the error that quarantines the file

    def fields(delimiter: str) -> list[str]:
        return next(csv.reader([text], delimiter=delimiter), [])

    def known(delimiter: str) -> int:
        return sum(field.strip().lower() in source.columns for field in fields(delimiter))

    best = max(_DELIMITERS, key=known)
    if not known(best):
        return None
    names: list[str] = []
    for index, field in enumerate(fields(best)):
        # DuckDB's own naming: trimmed, a blank one column<i>, a repeated one suffixed _1 until unique.
        name = field.strip() or f"column{index}"
        while name in names:
            name += "_1"
        names.append(name)
    return _Header(best, tuple(names))


def _decompressed_over(file: LandingFile, limit: int) -> bool:
    """Whether the .gz file expands to more than ``limit`` bytes: streamed and counted, never held whole.

    Raises OSError, EOFError or zlib.error when the compression is broken.
    """
    total = 0
    with gzip.open(file.path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            total += len(chunk)
            if total > limit:
                return True
    return False


def _not_utf8(file: LandingFile) -> str | None:
    """Why the CSV file (decompressed) is not UTF-8, or None when it is (a BOM before the header is UTF-8).

    Streamed in 1 MB chunks. A file re-sent in latin-1 or cp1252 is valid bytes to DuckDB's reader only
    where its text is ASCII: its accented names would be quarantined row by row or, decoded as the wrong
    code page, mangled. The whole file is refused instead, naming the first bad byte (issue 22).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    opener = gzip.open if file.path.name.lower().endswith(".gz") else open
    offset = lines = 0
    with opener(file.path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                if not chunk:
                    return None  # cut off mid-character at the end: the truncated_file check's case
                byte = chunk[error.start] if error.start < len(chunk) else 0
                line = lines + chunk.count(b"\n", 0, error.start) + 1
                return (f"{file.relpath}: not UTF-8: byte 0x{byte:02x} at offset {offset + error.start:,} "
                        f"(line {line:,}); the export looks latin-1 or cp1252, whose accented names would be "
                        "lost or mangled: re-export the file as UTF-8")
            if not chunk:
                return None
            offset += len(chunk)
            lines += chunk.count(b"\n")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _probe(
    con: duckdb.DuckDBPyConnection, file: LandingFile, source: Source, file_hash: str, settings: Settings
) -> _Plan:
    def unreadable(error: str) -> _Plan:
        return _Plan(file, source, file_hash, {}, (), (), error)

    if file.format == "csv" and _blank(file):
        # DuckDB reads an empty file as one column "column0" and no rows; for us it has no header at all.
        return unreadable("empty file: no header row")
    header, line_max = None, _DUCKDB_LINE_MAX
    if file.format == "csv":
        try:
            line = _first_line_within(file, settings.header_bytes_max)
        except (OSError, EOFError, zlib.error) as error:
            return unreadable(f"{file.relpath}: cannot be read: {_first_line(error)}")
        if line is None:
            return unreadable(f"{file.relpath}: header line longer than header_bytes_max = "
                              f"{settings.header_bytes_max:,} bytes")
        header = _header(line, source)
        # Room for every field at field_bytes_max even fully quoted: a longer line surely holds an over-long
        # field, and DuckDB rejects that line alone (field_too_long); bounded, so one line never costs more.
        columns = len(header.names) if header else 1
        line_max = max(_DUCKDB_LINE_MAX, columns * (2 * settings.field_bytes_max + 3) + 2)
    if too_big := _over_size(file, settings.file_bytes_max):
        return unreadable(too_big)
    if file.format == "csv":
        try:
            not_utf8 = _not_utf8(file)
        except (OSError, EOFError, zlib.error) as error:
            return unreadable(f"{file.relpath}: cannot be read: {_first_line(error)}")
        if not_utf8:
            return unreadable(not_utf8)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {_scan(file, header, line_max)}").fetchall()
    except duckdb.Error as error:
        return unreadable(_first_line(error))

    names = [(str(row[0]), str(row[1])) for row in described]
    if file.format == "parquet":
        names = [(name, kind) for name, kind in names if name != "file_row_number"]
    columns: dict[str, tuple[str, str]] = {}
    unknown: list[str] = []
    for name, kind in names:
        # Headers are matched case- and whitespace-insensitively ("Member_ID " is member_id).
        key = name.strip().lower()
        if key in source.columns and key not in columns:
            columns[key] = (name, kind)
        else:
            unknown.append(name)

    missing = [c for c in source.required_columns if c not in columns]
    if missing:
        raise missing_columns_error(file, missing, "required column(s)")
    for group in source.required_one_of:
        if not any(c in columns for c in group):
            raise missing_columns_error(file, group, "none of the identifier columns")
    return _Plan(file, source, file_hash, columns, tuple(n for n, _ in names), tuple(unknown), header=header,
                 line_max=line_max)


def _over_size(file: LandingFile, limit: int) -> str | None:
    """Why the file is over ``file_bytes_max`` (a .csv.gz decompressed), or None."""
    size = f"larger than file_bytes_max = {limit:,} bytes"
    if file.path.name.lower().endswith(".gz"):
        try:
            over = _decompressed_over(file, limit)
        except (OSError, EOFError, zlib.error) as error:
            return f"{file.relpath}: not a readable gzip file: {_first_line(error)}"
        return f"{file.relpath}: decompressed {size}; split the export" if over else None
    return f"{file.relpath}: {size}; split the export" if file.path.stat().st_size > limit else None


def _blank(file: LandingFile) -> bool:
    with file.path.open("rb") as handle:
        return not handle.read(1 << 16).strip()


def _as_text(name: str, kind: str, exact: bool = False) -> str:
    """A file column as VARCHAR the contract's parsers understand (parquet columns come typed); ``exact``
    (a contract double) keeps every digit, where a decimal column needs no more than 6 places."""
    column = quote(name)
    if exact and kind.upper() in _FLOAT_TYPES:
        return f"CASE WHEN isfinite({column}) THEN printf('%.17g', {column}) ELSE CAST({column} AS VARCHAR) END"
    if kind.upper() in _FLOAT_TYPES:
        # The default DOUBLE → VARCHAR cast may write an exponent ("1e-05"), which decimals reject.
        return f"CASE WHEN isfinite({column}) THEN printf('%.6f', {column}) ELSE CAST({column} AS VARCHAR) END"
    return f"CAST({column} AS VARCHAR)"


def _stage(con: duckdb.DuckDBPyConnection, plan: _Plan, rows_max: int) -> None:
    """Read the file: view ``_ingest_rows`` (text values + _row_number) and table ``_ingest_bad`` (rejects).

    Reads at most ``rows_max`` + 1 good rows, so a file over the limit costs no more than one at it.
    Raises duckdb.Error when the file cannot be read; the caller quarantines it whole.
    """
    file = plan.file
    read = f"SELECT * FROM {_scan(file, plan.header, plan.line_max)} LIMIT {rows_max + 1}"
    doubles = {name for column, (name, _) in plan.columns.items() if plan.source.columns[column].type == "double"}
    text = ", ".join(f"{_as_text(n, k, n in doubles)} AS {quote(n)}" for n, k in _file_types(plan).items())
    if file.format == "parquet":
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ingest_read AS {read}")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _ingest_rows AS "
            f"SELECT {text}, file_row_number + 1 AS _row_number FROM _ingest_read"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ingest_bad "
            "(row_number BIGINT, field VARCHAR, error_type VARCHAR, csv_line VARCHAR, message VARCHAR)"
        )
        return

    # DuckDB only records scans that had rejects, so stale tables would be mistaken for this file's.
    con.execute(f"DROP TABLE IF EXISTS {_REJECTS}; DROP TABLE IF EXISTS {_REJECT_SCANS}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ingest_read AS {read}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ingest_bad AS
        SELECT line - 1 AS row_number, first(column_name) AS field, first(CAST(error_type AS VARCHAR)) AS error_type,
               first(csv_line) AS csv_line, first(error_message) AS message
        FROM {_REJECTS} GROUP BY line
        """
    )
    bad = con.execute("SELECT count(*) FROM _ingest_bad").fetchone()
    if not bad or bad[0] == 0:
        # insertion order is preserved, so rowid is the row's position in the file.
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _ingest_rows AS SELECT {text}, rowid + 1 AS _row_number FROM _ingest_read"
        )
        return
    # The reader drops rejected rows. With c_j = b_j - j good rows before the j-th rejected row (b_j its
    # number), the good row at 0-based position k is row k + 1 + #{j : c_j <= k}: an ASOF join, no loop.
    # Numbers are DuckDB's record numbers (a quoted multi-line value counts once); a blank line before a
    # rejected row shifts the good rows after it by one, never onto a rejected row's number.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _ingest_rows AS
        WITH steps AS (
            SELECT row_number - j AS c, max(j) AS j
            FROM (SELECT row_number, row_number() OVER (ORDER BY row_number) AS j FROM _ingest_bad)
            GROUP BY c
        )
        SELECT {text}, r.rowid + 1 + coalesce(steps.j, 0) AS _row_number
        FROM _ingest_read r ASOF LEFT JOIN steps ON r.rowid >= steps.c
        """
    )


def _file_types(plan: _Plan) -> dict[str, str]:
    kinds = {name: kind for name, kind in plan.columns.values()}
    return {name: kinds.get(name, "VARCHAR") for name in plan.file_columns}


def _check(con: duckdb.DuckDBPyConnection, plan: _Plan, settings: Settings) -> None:
    """Type and validate every row in one statement into ``_ingest_checked`` (typed values + problems)."""
    source = plan.source
    raw = {name: raw_name(name) for name in source.columns}
    typ = {name: typed_name(name) for name in source.columns}
    cleaned = []
    for name in source.columns:
        value = f"NULLIF(trim({quote(plan.columns[name][0])}), '')" if name in plan.columns else "CAST(NULL AS VARCHAR)"
        cleaned.append(f"{value} AS {raw[name]}")
    zone = source.zone(settings.timezone)
    typed_columns = [f"{typed(col, raw[name], zone)} AS {typ[name]}" for name, col in source.columns.items()]
    # The raw row as the file had it, kept only for the rows that go to the quarantine.
    limit = settings.field_bytes_max
    record = "CAST(to_json({" + ", ".join(f"{literal(n)}: {_bounded(quote(n), limit)}" for n in plan.file_columns) + "}) AS VARCHAR)"
    # Any column of the file counts, ignored ones too: an over-long value is as likely a quote the export
    # never closed, swallowing the rows after it, as a real value.
    too_long = ", ".join(
        f"CASE WHEN strlen({quote(n)}) > {limit} THEN {{'field': {literal(n)}, 'reason': 'field_too_long', "
        f"'value': {_bounded(quote(n), limit)}}} END"
        for n in plan.file_columns
    )
    checks = f"list_concat(list_filter([{too_long}], lambda p: p IS NOT NULL), {problems(source, raw, typ)})"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ingest_checked AS
        WITH cleaned AS (SELECT *, {', '.join(cleaned)} FROM _ingest_rows),
             parsed AS (SELECT *, {', '.join(typed_columns)} FROM cleaned),
             keyed AS ({_derive_key(source, raw, typ)}),
             checked AS (SELECT *, {checks} AS _problems FROM keyed)
        SELECT _row_number, {', '.join(typ.values())}, _problems,
               CASE WHEN len(_problems) > 0 THEN {record} END AS _record
        FROM checked
        """
    )


def _bounded(column: str, limit: int) -> str:
    """SQL: the value, or when over ``limit`` bytes its start and its size: the quarantine stays small."""
    return (f"CASE WHEN strlen({column}) > {limit} THEN left({column}, {_PREFIX}) || '... (' || strlen({column}) "
            f"|| ' bytes > field_bytes_max {limit})' ELSE {column} END")


def _derive_key(source: Source, raw: dict[str, str], typ: dict[str, str]) -> str:
    """SQL over ``parsed``: the rows with an absent ``derived_key`` filled from the row's own content.

    The key is a hash of what identifies a transaction (the identifier columns and the required
    columns, e.g. member_id, ordered_at, total_amount, as typed, so `12.5` and `12.50` agree) plus the
    row's occurrence among identical keyless rows of the file: a corrected or re-sent log derives the
    same keys for the same purchases, and two identical purchases in one file stay two.
    """
    key = source.derived_key
    if key is None:
        return "SELECT * FROM parsed"
    parts = [c for group in source.required_one_of for c in group] + [*source.identifiers, *source.required_columns]
    content = [c for c in dict.fromkeys(parts) if c != key]
    fingerprint = "to_json({" + ", ".join(f"{literal(c)}: CAST({typ[c]} AS VARCHAR)" for c in content) + "})"
    occurrence = f"row_number() OVER (PARTITION BY {fingerprint}, {raw[key]} IS NULL ORDER BY _row_number)"
    derived = f"'derived-' || substr(sha256({fingerprint}), 1, 16) || '-' || {occurrence}"
    return (
        f"SELECT * REPLACE (coalesce({raw[key]}, {derived}) AS {raw[key]}, "
        f"coalesce({typ[key]}, {derived}) AS {typ[key]}) FROM parsed"
    )


def _insert_rows(con: duckdb.DuckDBPyConnection, plan: _Plan, loaded_at: datetime) -> int:
    source = plan.source
    target = ", ".join(quote(c) for c in [*source.columns, *METADATA_COLUMNS])
    values = ", ".join(f"{typed_name(c)}" for c in source.columns)
    row = con.execute(
        f"""
        INSERT INTO {raw_table(source)} ({target})
        SELECT {values}, ?, ?, ?, _row_number, ? FROM _ingest_checked WHERE len(_problems) = 0
        """,
        [plan.file.batch, plan.file.relpath, plan.file_hash, loaded_at],
    ).fetchone()
    return int(row[0]) if row else 0


def _insert_quarantine(con: duckdb.DuckDBPyConnection, plan: _Plan, loaded_at: datetime) -> int:
    """One row per quarantined row: the first problem in `field`/`reason`/`value`, all of them in `detail`."""
    meta = [plan.file.source, plan.file.batch, plan.file.relpath, plan.file_hash]
    row = con.execute(
        """
        INSERT INTO raw._quarantine
        SELECT ?, ?, ?, ?, c._row_number, c._problems[1].field, c._problems[1].reason, c._problems[1].value,
               c._record, array_to_string(list_transform(c._problems, lambda p: p.field || ': ' || p.reason), '; '), ?
        FROM _ingest_checked c WHERE len(c._problems) > 0
        UNION ALL
        SELECT ?, ?, ?, ?, row_number, field,
               -- the reader's line limit admits every row whose fields are within field_bytes_max
               CASE WHEN error_type = 'LINE SIZE OVER MAXIMUM' THEN 'field_too_long' ELSE 'malformed_row' END,
               error_type, csv_line, message, ?
        FROM _ingest_bad
        """,
        [*meta, loaded_at, *meta, loaded_at],
    ).fetchone()
    return int(row[0]) if row else 0


def _insert_log(con: duckdb.DuckDBPyConnection, result: FileResult, fmt: str, loaded_at: datetime) -> None:
    con.execute(
        "INSERT INTO raw._load_log (file_hash, source, batch, file, format, rows_in_file, rows_loaded, "
        "rows_quarantined, status, error, unknown_columns, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.file_hash, result.source, result.batch, result.file, fmt,
            None if result.status == "quarantined_file" else result.rows_in_file,
            result.rows_loaded, result.rows_quarantined, result.status, result.error,
            ", ".join(result.unknown_columns) or None, loaded_at,
        ],
    )


def _load(con: duckdb.DuckDBPyConnection, plan: _Plan, settings: Settings, loaded_at: datetime) -> FileResult:
    file = plan.file
    error = plan.error
    if error is None:
        try:
            _stage(con, plan, settings.file_rows_max)
        except duckdb.Error as exc:
            # Only reading may fail because of the file; a failure later is a bug and must surface.
            error = _first_line(exc)
    if error is None:
        read = con.execute("SELECT (SELECT count(*) FROM _ingest_read) + (SELECT count(*) FROM _ingest_bad)").fetchone()
        if read and read[0] > settings.file_rows_max:
            error = f"{file.relpath}: more than file_rows_max = {settings.file_rows_max:,} rows; split the export"
    if error is not None:
        _drop_staging(con)
        return _quarantine_file(con, plan, error, settings, loaded_at)

    _check(con, plan, settings)
    counts = con.execute("SELECT (SELECT count(*) FROM _ingest_rows) + (SELECT count(*) FROM _ingest_bad)").fetchone()
    rows_in_file = int(counts[0]) if counts else 0
    con.begin()
    try:
        loaded = _insert_rows(con, plan, loaded_at)
        quarantined = _insert_quarantine(con, plan, loaded_at)
        result = FileResult(
            file.source, file.batch, file.relpath, plan.file_hash, "loaded",
            rows_in_file, loaded, quarantined, None, plan.unknown, _earlier_versions(con, file),
        )
        if loaded + quarantined != rows_in_file:
            raise RuntimeError(f"{file.relpath}: {rows_in_file} rows read but {loaded} loaded + {quarantined} quarantined")
        _insert_log(con, result, file.format, loaded_at)
        # Same transaction as the rows: a reader never sees both versions live, or neither.
        if result.supersedes:
            marks = ", ".join("?" for _ in result.supersedes)
            con.execute(
                f"UPDATE raw._load_log SET superseded_by = ? WHERE file_hash IN ({marks})",
                [plan.file_hash, *result.supersedes],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        _drop_staging(con)
    log.info("%s: %d rows loaded, %d quarantined", file.relpath, loaded, quarantined)
    if result.supersedes:
        log.warning("%s: corrects %d earlier version(s) of its batch file (%s): their rows are no longer staged",
                    file.relpath, len(result.supersedes), ", ".join(h[:12] for h in result.supersedes))
    return result


def _earlier_versions(con: duckdb.DuckDBPyConnection, file: LandingFile) -> tuple[str, ...]:
    """Hashes of the live files this one replaces: same source, batch and place (a file quarantined whole
    included, so its error no longer counts against the batch)."""
    rows = con.execute(
        "SELECT file_hash, file FROM raw._load_log WHERE source = ? AND batch = ? AND superseded_by IS NULL",
        [file.source, file.batch],
    ).fetchall()
    return tuple(sorted(h for h, f in rows if slot(f) == file.slot))


def _drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP VIEW IF EXISTS _ingest_rows")  # first: it reads _ingest_read
    for table in ("_ingest_checked", "_ingest_read", "_ingest_bad"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _quarantine_file(
    con: duckdb.DuckDBPyConnection, plan: _Plan, error: str, settings: Settings, loaded_at: datetime
) -> FileResult:
    file = plan.file
    result = FileResult(file.source, file.batch, file.relpath, plan.file_hash, "quarantined_file", error=error)
    # The copy is written before the commit: a crash in between leaves a copy a re-run overwrites,
    # never a logged quarantine without its copy.
    target = settings.quarantine_dir / file.source / file.batch / file.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file.path, target)
    target.with_name(target.name + ".error.txt").write_text(
        f"file: {file.relpath}\nsha256: {plan.file_hash}\nquarantined_at: {loaded_at.isoformat()}Z\nerror: {error}\n"
    )
    con.begin()
    try:
        _insert_log(con, result, file.format, loaded_at)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.warning("%s: quarantined whole: %s", file.relpath, error)
    return result



