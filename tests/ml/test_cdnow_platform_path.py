"""The CLV anchor through the platform's own path: a bare transaction log lands, loads, builds, fits.

Given the CDNOW sample (shipped in `lifetimes`) exported as `member_id, ordered_at, total_amount`,
when it goes through landing → ingest → dbt (`fct_orders`) → ml.features → ml.clv, then BG/NBD and
Gamma-Gamma reproduce Fader, Hardie & Lee (2005) within 1%.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from campaign_loop.config import Settings
from campaign_loop.dbt import run_dbt
from ingest import ingest
from ml import clv, features

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cdnow_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("cdnow"), start_date=date(1997, 1, 6))
    log = pd.read_csv(clv.cdnow_sample_path(), sep=r"\s+", header=None, dtype={"date": str},
                      names=["master_id", "customer_id", "date", "cds", "amount"])
    export = pd.DataFrame({
        "member_id": "C" + log["customer_id"].astype(str),
        "ordered_at": log["date"],  # YYYYMMDD, as CDNOW ships it
        "total_amount": log["amount"].map(lambda v: f"{v:.2f}"),
    })
    landing = settings.landing_dir / "orders"
    landing.mkdir(parents=True)
    export.to_csv(landing / "cdnow.csv", index=False)
    report = ingest(settings)
    assert report.rows_quarantined == 0 and report.rows_loaded == len(export)
    build = run_dbt(settings, "run", "--select", "+fct_orders", target_path=settings.root / "dbt-target")
    assert build.returncode == 0, build.stdout[-3000:]
    return settings


def test_cdnow_reaches_the_marts_whole(cdnow_warehouse: Settings) -> None:
    tx = features.transactions(cdnow_warehouse.warehouse_path, date(1998, 7, 1), schema="marts")
    assert tx["customer_id"].nunique() == 2357
    expected = clv.load_cdnow_transactions()["amount"].sum()
    assert tx["amount"].sum() == pytest.approx(expected, abs=0.01)


def test_clv_on_the_platform_path_reproduces_the_published_parameters(cdnow_warehouse: Settings) -> None:
    tx = features.transactions(cdnow_warehouse.warehouse_path, date(1998, 7, 1), schema="marts")
    summary = clv.rfm_summary(tx, clv.CDNOW_CALIBRATION_END, unit="W")
    model = clv.fit_clv(summary, unit="W")
    for name, published in clv.CDNOW_PUBLISHED.items():
        assert model.params[name] == pytest.approx(published, rel=0.01), name
