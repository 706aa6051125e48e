"""Store sources' naive times are the retailer's local time: Settings ``timezone``, not a zone in the contract."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from campaign_loop.config import Settings
from ingest import ingest
from ingest.contract import LOCAL_TIMEZONE, load_contract

from .conftest import Land, Query

RECEIPTS_HEADER = "receipt_id,store_id,purchased_at,total_amount\n"


@pytest.fixture
def london(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path, timezone="Europe/London")
    settings.landing_dir.mkdir(parents=True)
    return settings


def test_store_sources_read_naive_times_in_the_settings_zone(london: Settings) -> None:
    import duckdb

    contract = load_contract()
    assert {name for name, s in contract.sources.items() if s.timezone == LOCAL_TIMEZONE} == {
        "pos_receipts", "pos_receipt_lines"}
    assert contract.source("pos_receipts").zone("Europe/London") == "Europe/London"
    assert contract.source("orders").zone("Europe/London") == "UTC"  # a zone of its own is kept

    receipts = london.landing_dir / "pos_receipts" / "2026-01-05.csv"
    receipts.parent.mkdir(parents=True)
    receipts.write_text(RECEIPTS_HEADER + "\n".join([
        "r1,s1,2026-01-05 09:30:00,1",  # GMT: 09:30 UTC
        "r2,s1,2026-07-06 09:30:00,1",  # BST: 08:30 UTC
        "r3,s1,20260706,1",  # a date alone: London midnight
        "r4,s1,2026-07-06T09:30:00+09:00,1",  # an offset wins over the setting
    ]) + "\n")
    orders = london.landing_dir / "orders" / "2026-01-05.csv"
    orders.parent.mkdir(parents=True)
    orders.write_text("member_id,ordered_at,total_amount\nm1,2026-07-06 09:30:00,1\n")  # orders are UTC

    assert ingest(london).rows_quarantined == 0

    with duckdb.connect(str(london.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT receipt_id, purchased_at FROM raw.pos_receipts ORDER BY 1").fetchall() == [
            ("r1", datetime(2026, 1, 5, 9, 30)), ("r2", datetime(2026, 7, 6, 8, 30)),
            ("r3", datetime(2026, 7, 5, 23, 0)), ("r4", datetime(2026, 7, 6, 0, 30)),
        ]
        assert con.execute("SELECT ordered_at FROM raw.orders").fetchall() == [(datetime(2026, 7, 6, 9, 30),)]


@pytest.mark.parametrize("zone", ["Asia/Seoul", "Europe/London", "America/Los_Angeles"])
def test_the_simulators_store_times_round_trip_through_ingest(zone: str, land: Land, query: Query,
                                                             settings: Settings) -> None:
    from sim import ids

    # Instants across both daylight-saving changes of the zones that have them.
    instants = np.array([datetime(2026, m, 10, h, 15, tzinfo=UTC).timestamp() for m in (1, 3, 4, 7, 10, 11)
                         for h in (0, 13)], dtype=np.int64)
    local = ids.timestamps(instants, "naive_local", zone).to_pylist()
    zoned = Settings(home=settings.home, timezone=zone)
    land("pos_receipts/2026-01-05.csv", RECEIPTS_HEADER + "".join(f"r{i:02d},s1,{t},1\n" for i, t in enumerate(local)))

    assert ingest(zoned).rows_quarantined == 0

    loaded = [t.replace(tzinfo=UTC).timestamp() for (t,) in query("SELECT purchased_at FROM raw.pos_receipts ORDER BY receipt_id")]
    assert loaded == instants.tolist()
