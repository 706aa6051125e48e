"""Size limits: an export cannot cost unbounded memory, raise, or quarantine a file for one over-long row.

The limits here are small (a 2 KB header, 1 KB fields, 64 KB files, 5 rows) so every test stays fast.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from campaign_loop.config import Settings
from ingest import ingest

from .conftest import Land, Query

EVENTS_HEADER = "event_id,event_type,occurred_at,cookie_id\n"
ROW = "e{i},page_view,2026-01-05T10:00:00Z,c1\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Overrides the package fixture: `land` and `query` use these limits too.
    settings = Settings(home=tmp_path, header_bytes_max=2_048, field_bytes_max=1_024, file_bytes_max=65_536,
                        file_rows_max=5)
    settings.landing_dir.mkdir(parents=True)
    return settings


def _log(query: Query) -> dict[str, tuple[str, str | None, int]]:
    return {f: (s, e, n) for f, s, e, n in query("SELECT file, status, error, rows_loaded FROM raw._load_log")}


def _gzip_bomb(head: bytes, line: bytes, expanded: int) -> bytes:
    """A gzip stream of ``head`` then ``line`` repeated to ``expanded`` bytes, compressed as it goes."""
    block = line * (1_048_576 // len(line))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    parts = [packer.compress(head)] + [packer.compress(block) for _ in range(expanded // len(block))]
    return b"".join(parts) + packer.flush()


def _peak_rss_during(work: object) -> tuple[object, int]:
    """Run ``work()`` and return its result and the largest rise of this process's RSS seen meanwhile."""
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()  # type: ignore[operator]
    finally:
        done.set()
        sampler.join()
    return result, max(peak, process.memory_info().rss) - before


def test_an_over_long_header_quarantines_its_file_with_the_limit_named(
    settings: Settings, land: Land, query: Query
) -> None:
    land("events/2026-01-05/wide.csv", "event_id," + "x" * 5_000 + "\n" + ROW.format(i=1))
    land("events/2026-01-05/good.csv", EVENTS_HEADER + ROW.format(i=2))

    report = ingest(settings)

    log = _log(query)
    status, error, _ = log["events/2026-01-05/wide.csv"]
    assert status == "quarantined_file"
    assert error == "events/2026-01-05/wide.csv: header line longer than header_bytes_max = 2,048 bytes"
    assert log["events/2026-01-05/good.csv"] == ("loaded", None, 1)
    assert "header_bytes_max" in report.to_rows()[0]["flag"]
    copy = settings.quarantine_dir / "events" / "2026-01-05" / "wide.csv"
    assert "header_bytes_max" in copy.with_name("wide.csv.error.txt").read_text()


def test_a_gzip_header_bomb_is_read_only_as_far_as_the_limit(settings: Settings, land: Land, query: Query) -> None:
    # 16 MB of header without a line end, ~16 KB compressed: reading the line whole held all of it.
    bomb = _gzip_bomb(b"", b"event_id,event_type,occurred_at,cookie_id" * 1_000, 16 * 1_048_576)
    assert len(bomb) < 64_000
    land("events/2026-01-05.csv.gz", bomb)

    tracemalloc.start()
    try:
        ingest(settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1_048_576, f"python held {peak:,} bytes"
    status, error, _ = _log(query)["events/2026-01-05.csv.gz"]
    assert status == "quarantined_file" and "header_bytes_max = 2,048" in str(error)


def test_a_gzip_bomb_is_stopped_at_the_decompressed_budget(settings: Settings, land: Land, query: Query) -> None:
    # 128 MB of valid rows in a ~400 KB file: decompression is counted and stopped past file_bytes_max.
    # No row limit here: it alone would also stop the reader early.
    settings = settings.model_copy(update={"file_rows_max": 100_000_000})
    bomb = _gzip_bomb(EVENTS_HEADER.encode(), ROW.format(i=1).encode(), 128 * 1_048_576)
    assert len(bomb) < 500_000
    land("events/2026-01-05.csv", EVENTS_HEADER + ROW.format(i=1))
    ingest(settings)  # DuckDB's own start-up allocations come before the measurement
    land("events/2026-01-12.csv.gz", bomb)

    started = time.monotonic()
    tracemalloc.start()
    try:
        _, rss = _peak_rss_during(lambda: ingest(settings))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    status, error, _ = _log(query)["events/2026-01-12.csv.gz"]
    assert status == "quarantined_file"
    assert error == "events/2026-01-12.csv.gz: decompressed larger than file_bytes_max = 65,536 bytes; split the export"
    assert peak < 8 * 1_048_576, f"python held {peak:,} bytes"
    assert rss < 48 * 1_048_576, f"RSS rose {rss:,} bytes for a 128 MB expansion"
    assert time.monotonic() - started < 10


def test_a_plain_file_over_the_size_limit_is_quarantined_whole(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "".join(ROW.format(i=i) for i in range(2_000)))

    ingest(settings.model_copy(update={"file_rows_max": 10_000}))

    assert _log(query)["events/2026-01-05.csv"] == (
        "quarantined_file", "events/2026-01-05.csv: larger than file_bytes_max = 65,536 bytes; split the export", 0)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_over_the_row_limit_is_quarantined_whole_and_one_at_it_loads(
    settings: Settings, land: Land, query: Query, fmt: str
) -> None:
    def write(name: str, rows: int) -> None:
        if fmt == "csv":
            land(f"events/{name}.csv", EVENTS_HEADER + "".join(ROW.format(i=i) for i in range(rows)))
            return
        path = settings.landing_dir / "events" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"event_id": [f"e{i}" for i in range(rows)], "event_type": ["page_view"] * rows,
                                 "occurred_at": ["2026-01-05T10:00:00Z"] * rows, "cookie_id": ["c1"] * rows}), path)

    write("2026-01-05", 6)
    write("2026-01-12", 5)

    ingest(settings)

    log = _log(query)
    assert log[f"events/2026-01-05.{fmt}"] == (
        "quarantined_file", f"events/2026-01-05.{fmt}: more than file_rows_max = 5 rows; split the export", 0)
    assert log[f"events/2026-01-12.{fmt}"] == ("loaded", None, 5)
    assert query("SELECT count(*) FROM raw.events") == [(5,)]


def test_a_row_with_an_over_long_field_is_quarantined_alone(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + "".join([
        # First data row: DuckDB's sniffer once failed the whole file on it ("CSV Error on Line: 1").
        f"e1,page_view,2026-01-05T10:00:00Z,{'c' * 3_000_000}\n",  # longer than any line the reader admits
        ROW.format(i=2),
        f"e3,page_view,2026-01-05T10:00:00Z,\"{'q' * 1_500}\"\n",  # read, then caught by its field
        ROW.format(i=4),
    ]))

    report = ingest(settings.model_copy(update={"file_bytes_max": 8_000_000}))

    assert report.files[0].status == "loaded"
    assert query("SELECT event_id, _row_number FROM raw.events ORDER BY 1") == [("e2", 2), ("e4", 4)]
    rows = query("SELECT row_number, field, reason, value, length(record), detail FROM raw._quarantine ORDER BY 1")
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, None, "field_too_long"), (3, "cookie_id", "field_too_long")]
    assert "Maximum line size" in rows[0][5]
    value, record_length = rows[1][3], rows[1][4]
    assert value == "q" * 100 + "... (1500 bytes > field_bytes_max 1024)"
    assert record_length < 400  # the quarantine keeps the start of an over-long value, not all of it


def test_values_within_the_limits_load_unchanged(settings: Settings, land: Land, query: Query) -> None:
    land("events/2026-01-05.csv", EVENTS_HEADER + f"e1,page_view,2026-01-05T10:00:00Z,{'c' * 1_024}\n")

    ingest(settings)

    assert query("SELECT length(cookie_id) FROM raw.events") == [(1_024,)]
    assert query("SELECT count(*) FROM raw._quarantine") == [(0,)]


def test_the_limits_are_settings_with_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAMPAIGN_LOOP_FIELD_BYTES_MAX", "4096")
    monkeypatch.setenv("CAMPAIGN_LOOP_FILE_ROWS_MAX", "7")

    settings = Settings(home=tmp_path)

    assert (settings.field_bytes_max, settings.file_rows_max) == (4_096, 7)
    assert settings.header_bytes_max == 65_536 and settings.file_bytes_max == 2_147_483_648
