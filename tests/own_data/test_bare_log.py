"""The README's own-data sequence on the least a till system exports: `member_id, ordered_at, total_amount`.

Given a bare transaction log of 2011 (no order ids, no products, no consents), when a user runs `init`,
`import-history` and `backfill` as the README shows, then one Airflow cycle yields RFM segments, churn and
purchase probabilities, 52-week CLV and a plan with its holdout.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.own_data.export import bare_log, build, write
from tests.own_data.test_own_data import cli, output

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bare-log")
    log = bare_log(build(members=300, first_day=date(2011, 1, 4), last_day=date(2011, 12, 9)))
    write(log, work / "transactions.csv")
    steps = [cli("init", "--home", "shop", cwd=work)]
    with (work / "shop" / "campaign-loop.env").open("a") as settings:
        settings.write("CAMPAIGN_LOOP_CHANNELS=email\nCAMPAIGN_LOOP_ASSUME_CONSENT=true\n")
    steps.append(cli("import-history", "--home", "shop", "orders=transactions.csv", cwd=work))
    steps.append(cli("backfill", "--home", "shop", "--from", "2011-12-05", cwd=work))
    for step in steps:
        assert step.returncode == 0, output(step)
    return work / "shop"


def test_the_bare_log_gets_rfm_churn_clv_and_a_plan(shop: Path) -> None:
    scores = pd.read_parquet(shop / "exports" / "scores" / "2011-12-12.parquet")
    assert len(scores) == 300
    for column in ("p_buy", "p_churn", "clv_52w"):
        assert scores[column].notna().all() and scores[column].std() > 0, column
    assert scores["scored_by__churn"].notna().all() and scores["scored_by__clv"].notna().all()
    with duckdb.connect(str(shop / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        segments = con.execute("select count(distinct rfm_segment) from published.fct_customer_features "
                               "where cycle_id = '2011-12-12' and rfm_segment is not null").fetchone()[0]
    assert segments >= 4
    plan = pd.read_parquet(shop / "exports" / "plans" / "2011-12-12.parquet")
    assert set(plan["arm"]) >= {"treatment", "control"} and set(plan["channel"]) == {"email"}
