"""What an ingestion run did, per file and per (source, batch); and the load log read back per batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from campaign_loop.config import Settings

FileStatus = Literal["loaded", "quarantined_file", "skipped"]


@dataclass(frozen=True)
class FileResult:
    source: str
    batch: str
    file: str
    file_hash: str
    status: FileStatus
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    unknown_columns: tuple[str, ...] = ()
    # Hashes of the earlier files of the same batch and place that this file corrects (raw._load_log.superseded_by).
    supersedes: tuple[str, ...] = ()

    @property
    def quarantine_share(self) -> float:
        if self.status == "quarantined_file":
            return 1.0
        return self.rows_quarantined / self.rows_in_file if self.rows_in_file else 0.0


@dataclass(frozen=True)
class BatchCounts:
    """One (source, batch): files new in this run (or in the log), rows in them, where the rows went."""

    source: str
    batch: str
    files: int = 0
    files_skipped: int = 0
    files_quarantined: int = 0
    rows_landed: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0


@dataclass(frozen=True)
class UnknownColumns:
    source: str
    batch: str
    file: str
    columns: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.file}: ignored column(s) not in the contract: {', '.join(self.columns)}"


@dataclass(frozen=True)
class IngestReport:
    files: tuple[FileResult, ...]
    batches: tuple[BatchCounts, ...]
    unknown_columns: tuple[UnknownColumns, ...]
    # Files whose quarantined share exceeds settings.quarantine_rate_max (whole-file quarantines included).
    flagged: tuple[FileResult, ...]
    quarantine_rate_max: float

    @classmethod
    def of(cls, files: list[FileResult], quarantine_rate_max: float) -> IngestReport:
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for f in files:
            c = counts.setdefault((f.source, f.batch), dict.fromkeys(
                ("files", "files_skipped", "files_quarantined", "rows_landed", "rows_loaded", "rows_quarantined"), 0))
            if f.status == "skipped":
                c["files_skipped"] += 1
                continue
            c["files"] += 1
            c["files_quarantined"] += f.status == "quarantined_file"
            c["rows_landed"] += f.rows_in_file
            c["rows_loaded"] += f.rows_loaded
            c["rows_quarantined"] += f.rows_quarantined
        return cls(
            files=tuple(files),
            batches=tuple(BatchCounts(s, b, **c) for (s, b), c in sorted(counts.items())),
            unknown_columns=tuple(
                UnknownColumns(f.source, f.batch, f.file, f.unknown_columns) for f in files if f.unknown_columns
            ),
            flagged=tuple(
                f for f in files if f.status != "skipped" and f.quarantine_share > quarantine_rate_max
            ),
            quarantine_rate_max=quarantine_rate_max,
        )

    @property
    def rows_loaded(self) -> int:
        return sum(b.rows_loaded for b in self.batches)

    @property
    def rows_quarantined(self) -> int:
        return sum(b.rows_quarantined for b in self.batches)

    @property
    def ok(self) -> bool:
        """No file went over the quarantine threshold."""
        return not self.flagged

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per (source, batch) for a terminal table; `flag` names what needs a look."""
        flagged: dict[tuple[str, str], list[FileResult]] = {}
        for f in self.flagged:
            flagged.setdefault((f.source, f.batch), []).append(f)
        rows = []
        for b in self.batches:
            bad = flagged.get((b.source, b.batch), [])
            flag = ", ".join(
                f"{f.file} quarantined whole: {f.error}" if f.status == "quarantined_file"
                else f"{f.file} {f.quarantine_share:.1%} quarantined > {self.quarantine_rate_max:.0%}"
                for f in bad
            )
            rows.append({
                "source": b.source, "batch": b.batch, "files": b.files, "files_skipped": b.files_skipped,
                "rows_landed": b.rows_landed, "rows_loaded": b.rows_loaded, "rows_quarantined": b.rows_quarantined,
                "flag": flag,
            })
        return rows


def batch_report(settings: Settings, batch: str) -> list[BatchCounts]:
    """Per source, what the load log holds for ``batch`` (all runs), e.g. one demo cycle's landing."""
    if not settings.warehouse_path.exists():
        return []
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = '_load_log'"
        ).fetchone()
        if not exists or not exists[0]:
            return []
        rows = con.execute(
            """
            SELECT source, batch, count(*), 0, count(*) FILTER (WHERE status = 'quarantined_file'),
                   coalesce(sum(rows_in_file), 0), sum(rows_loaded), sum(rows_quarantined)
            FROM raw._load_log WHERE batch = ? GROUP BY source, batch ORDER BY source
            """,
            [batch],
        ).fetchall()
    return [BatchCounts(s, b, int(f), int(fs), int(fq), int(rl), int(ld), int(q)) for s, b, f, fs, fq, rl, ld, q in rows]
