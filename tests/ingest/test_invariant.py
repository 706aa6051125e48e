"""Property: whatever rows a CSV holds, each is loaded or quarantined exactly once, under its own number."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaign_loop.config import Settings
from ingest import ingest

HEADER = ["receipt_id", "store_id", "purchased_at", "total_amount", "payment_method"]
VALUES = st.sampled_from([
    "", "r1", "s1", "2026-01-05 09:30:00", "2026-01-05T00:30:00Z", "1767573000", "soon", "12.5", "-1",
    "12,3x", '"12,3x"', "card", "bitcoin", '"a ""quoted"" value"', "   ",
])
ROWS = st.lists(st.lists(VALUES, min_size=1, max_size=7), min_size=0, max_size=30)


# Derandomised: CI must not depend on the draw. The example is what a random run once found: under a valid
# header, these rows made DuckDB's dialect sniffer take the header for data.
@hypothesis_settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
@example(rows=[["", '"a ""quoted"" value"'], ['"12,3x"']])
def test_every_row_is_loaded_or_quarantined_once(rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        path = settings.landing_dir / "pos_receipts" / "b.csv"
        path.parent.mkdir(parents=True)
        # A row that would be blank is not a row for any CSV reader; keep every written line non-blank.
        lines = [",".join(row) if ",".join(row).strip() else "x" for row in rows]
        path.write_text("\n".join([",".join(HEADER), *lines]) + "\n")

        report = ingest(settings)

        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            numbers = con.execute(
                "SELECT _row_number FROM raw.pos_receipts UNION ALL SELECT row_number FROM raw._quarantine ORDER BY 1"
            ).fetchall()
        assert [n for (n,) in numbers] == list(range(1, len(rows) + 1))
        (file,) = report.files
        assert file.rows_in_file == len(rows) == file.rows_loaded + file.rows_quarantined
