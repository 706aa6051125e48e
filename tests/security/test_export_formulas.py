"""Send files are opened in spreadsheets: a cell that starts like a formula is written as text (OWASP)."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest

from campaign_loop.config import CHANNELS, Settings
from ml.decide import CampaignPlan, DesignConfig, design_campaign
from ml.export import neutralise_formulas, write_plan
from tests.ml.test_decide import make_world

# Every prefix OWASP lists, bare and after whitespace a spreadsheet skips.
FORMULAS = ["=1+2", "+1+2", "-1+2", "@SUM(A1)", "\t=1+2", "\r=1+2", " =HYPERLINK(\"http://x\")", "\n+1",
            " \t@cmd", "=cmd|' /C calc'!A0"]
DANGEROUS = re.compile(r"^\s*[=+\-@\t\r]")


@pytest.mark.parametrize("value", FORMULAS)
def test_a_formula_becomes_text(value: str) -> None:
    out = neutralise_formulas(pd.DataFrame({"c": [value]}))["c"][0]
    assert out == "'" + value


@pytest.mark.parametrize("value", ["M0000001", "2026-01-12T09:00:00+09:00", "CL0A1B2C3D4E", "a=b", "", "'=x", "1-2"])
def test_plain_text_is_left_alone(value: str) -> None:
    assert neutralise_formulas(pd.DataFrame({"c": [value]}))["c"][0] == value


@pytest.fixture(scope="module")
def hostile_plan() -> CampaignPlan:
    """A designed plan whose treated members, on every channel, carry ids that start like formulas."""
    plan = design_campaign(make_world(800, 5), DesignConfig(cycle_id="2026-01-12", budget=20.0, epsilon=0.2, seed=3))
    rows = plan.rows.copy()
    treated = rows.index[rows["arm"] == "treatment"]
    for channel in CHANNELS:
        mine = [i for i in treated if rows.at[i, "channel"] == channel]
        assert len(mine) >= len(FORMULAS), f"the test plan treats too few customers on {channel}"
        for i, formula in zip(mine, FORMULAS, strict=False):
            rows.at[i, "member_id"] = formula + rows.at[i, "member_id"]
    return dataclasses.replace(plan, rows=rows)


def test_every_channels_send_file_neutralises_formula_cells(hostile_plan: CampaignPlan, tmp_path: Path) -> None:
    paths = write_plan(hostile_plan, Settings(home=tmp_path))
    rows = hostile_plan.rows
    for channel in CHANNELS:
        # As a spreadsheet splits rows: at any unquoted CR or LF (a bare CR would start a row with "=1+2").
        with paths[f"send_{channel}"].open(newline="") as f:
            records = list(csv.reader(f))
        assert len(records) - 1 == ((rows["channel"] == channel) & (rows["arm"] == "treatment")).sum()
        assert not [v for record in records for v in record if DANGEROUS.match(v)], f"{channel}.csv: a formula cell"
        sent = pd.read_csv(paths[f"send_{channel}"], dtype=str, keep_default_na=False)
        cells = [v for column in sent.columns for v in sent[column]]
        assert not [v for v in cells if DANGEROUS.match(v)], f"{channel}.csv has cells a spreadsheet evaluates"
        quoted = sent.loc[sent["member_id"].str.startswith("'"), "member_id"]
        assert len(quoted) == len(FORMULAS), f"{channel}.csv: {len(quoted)} neutralised member ids"
    # The plan file (read by the next cycle, not by people) keeps the ids as they are.
    plan_ids = pd.read_parquet(paths["plan"])["member_id"]
    assert plan_ids.str.match(DANGEROUS).sum() == len(FORMULAS) * len(CHANNELS)
