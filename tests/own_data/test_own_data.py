"""A retailer's own export, through the README's commands and Airflow, for dates in 2010-2011.

Given a gift shop's export (members and guests, credit notes, several countries, most products without a
cost, closed over Christmas), when a data engineer follows docs/own-data.md (`init`, `import-history`,
`backfill`), then a week later lands consents for the first time (a late source) and re-sends last week's
orders with a correction, and this week's orders first arrive broken and then corrected (`run` twice):
every cycle runs through Airflow or fails loudly, every row is loaded or quarantined with its reason, and
net revenue in the published marts equals the files' to the cent.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.own_data.export import build, net_revenue, write

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).with_name("campaign-loop")
CLOSED_WEEK, LAST_WEEK, THIS_WEEK = "2010-12-27", "2011-01-03", "2011-01-10"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW"))}
    env["CAMPAIGN_LOOP_PII_KEY"] = "own-data-test-key-7f3a9c2e51b04d68"
    return subprocess.run([str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def output(run: subprocess.CompletedProcess[str]) -> str:
    return f"exit {run.returncode}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"


@dataclass
class Story:
    home: Path
    runs: dict[str, subprocess.CompletedProcess[str]]
    sent_orders: pd.DataFrame  # every orders row as the final files of the batches run hold it


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    work = tmp_path_factory.mktemp("gift-shop")
    export = build()
    files = {name: write(getattr(export, name), work / "export" / f"{name}.csv")
             for name in ("orders", "order_lines", "customers", "products")}
    runs = {"init": cli("init", "--home", "home", cwd=work)}
    home = work / "home"
    with (home / "campaign-loop.env").open("a") as settings:
        settings.write("CAMPAIGN_LOOP_TIMEZONE=Europe/London\nCAMPAIGN_LOOP_CHANNELS=email,sms\n")
    runs["import"] = cli("import-history", "--home", "home", *(f"{k}={v}" for k, v in files.items()), cwd=work)
    runs["before_data"] = cli("run", "--home", "home", "--cycle_id", "2010-08-23", cwd=work)
    runs["backfill"] = cli("backfill", "--home", "home", "--from", CLOSED_WEEK, "--to", LAST_WEEK, cwd=work)

    landing = home / "landing"
    # A week later: consents arrive for the first time, last week's orders are re-sent corrected (one amount
    # was wrong), and this week's orders first come without half their order times.
    write(export.consents, landing / "consents" / THIS_WEEK / "consents.csv")
    last_week = pd.read_csv(landing / "orders" / LAST_WEEK / "orders.csv", dtype=str, keep_default_na=False)
    last_week.loc[0, "total_amount"] = f"{float(last_week.loc[0, 'total_amount']) + 10.5:.2f}"
    write(last_week, landing / "orders" / LAST_WEEK / "orders.csv")
    this_week_path = landing / "orders" / THIS_WEEK / "orders.csv"
    good = pd.read_csv(this_week_path, dtype=str, keep_default_na=False)
    broken = good.copy()
    broken.loc[broken.index[::2], "ordered_at"] = ""
    write(broken, this_week_path)
    runs["rejected"] = cli("run", "--home", "home", cwd=work)
    write(good, this_week_path)
    runs["corrected"] = cli("run", "--home", "home", cwd=work)

    sent = [pd.read_csv(path, dtype=str, keep_default_na=False)
            for path in sorted((landing / "orders").glob("*/orders.csv")) if path.parent.name <= THIS_WEEK]
    return Story(home, runs, pd.concat(sent, ignore_index=True))


def test_init_and_import_history_write_the_home_and_the_calendar(story: Story) -> None:
    assert story.runs["init"].returncode == 0, output(story.runs["init"])
    assert story.runs["import"].returncode == 0, output(story.runs["import"])
    assert "CAMPAIGN_LOOP_START_DATE=2010-08-30" in (story.home / "campaign-loop.env").read_text()
    assert (story.home / "README.md").exists()
    batches = sorted(p.name for p in (story.home / "landing" / "orders").iterdir())
    assert batches[0] == "2010-08-30" and CLOSED_WEEK not in batches  # the closed week lands nothing


def test_a_date_before_the_data_is_a_clear_error(story: Story) -> None:
    run = story.runs["before_data"]
    assert run.returncode == 2
    assert "2010-08-23 is before start_date 2010-08-30" in run.stderr


def test_every_cycle_ran_through_airflow_and_the_rejected_one_failed_loudly(story: Story) -> None:
    for step in ("backfill", "corrected"):
        assert story.runs[step].returncode == 0, output(story.runs[step])
    rejected = story.runs["rejected"]
    assert rejected.returncode == 1, output(rejected)
    assert "validate_raw: failed" in rejected.stderr and "quarantine" in rejected.stderr.lower()
    with sqlite3.connect(story.home / "airflow" / "airflow.db") as db:
        runs = db.execute("select date(logical_date), state from dag_run order by id").fetchall()
    # `airflow dags test` runs a logical date's DAG run again in place: the rejected run became the corrected one.
    assert runs == [("2011-01-03", "success"), ("2011-01-10", "success"), ("2011-01-17", "success")]


def test_the_closed_week_passes_with_a_warning(story: Story) -> None:
    with duckdb.connect(str(story.home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        warned = con.execute(
            "select count(*) from audit.validation_results where cycle_id = ? and \"check\" = 'empty_week' "
            "and not success and severity = 'warning'", [CLOSED_WEEK]).fetchone()[0]
    assert warned >= 1


def test_every_landed_row_is_loaded_or_quarantined_with_its_reason(story: Story) -> None:
    with duckdb.connect(str(story.home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        files = con.execute(
            "select file, rows_in_file, rows_loaded, rows_quarantined, superseded_by from raw._load_log").df()
        reasons = con.execute("select reason from raw._quarantine where file like 'orders/%'").df()
    assert (files["rows_in_file"] == files["rows_loaded"] + files["rows_quarantined"]).all()
    corrected = files[files["file"].isin([f"orders/{LAST_WEEK}/orders.csv", f"orders/{THIS_WEEK}/orders.csv"])]
    assert len(corrected) == 4 and corrected["superseded_by"].notna().sum() == 2  # each bad version superseded
    assert len(reasons) > 0 and reasons["reason"].notna().all() and set(reasons["reason"]) == {"missing_required"}


def test_net_revenue_reconciles_with_the_files_to_the_cent(story: Story) -> None:
    expected = net_revenue(story.sent_orders)
    guests = story.sent_orders["member_id"].eq("").sum()
    with duckdb.connect(str(story.home / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        marts = con.execute("select sum(net_revenue_amount) from published.fct_orders").fetchone()[0]
        kpi, guest_orders = con.execute("select sum(net_revenue), sum(guest_orders) from published.kpi_daily").fetchone()
        customers = con.execute("select count(*) from published.dim_customers").fetchone()[0]
    assert round(float(marts), 2) == expected
    assert round(float(kpi), 2) == expected
    assert guest_orders == guests > 0
    assert customers == 360  # the members: a guest checkout is no customer


def test_the_late_consents_reach_the_next_plan(story: Story) -> None:
    plans = story.home / "exports" / "plans"
    before = (plans / f"{THIS_WEEK}.summary.md").read_text()
    assert "no consents landed" in before
    after = pd.read_parquet(plans / "2011-01-17.parquet")
    assert len(after) > 0 and set(after["channel"].dropna()) <= {"email", "sms"}
