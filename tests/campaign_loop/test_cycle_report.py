"""The cycle report's own arithmetic: the by-segment lift and its interval."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from campaign_loop.cycle_report.data import _with_interval
from ml.ab import two_proportion_test


def test_segment_lift_has_the_marts_interval_even_without_conversions() -> None:
    segments = pd.DataFrame({
        "segment": ["champions", "lost", "prospect"],
        "n_treatment": [40, 3, 5], "n_control": [10, 2, 0],
        "converted_treatment": [12, 0, 1], "converted_control": [1, 0, 0],
    })
    out = _with_interval(segments)
    champions = two_proportion_test(1, 10, 12, 40, ci="newcombe")
    assert (out.loc[0, "lift"], out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == pytest.approx(
        (0.2, champions.ci_low, champions.ci_high))
    # No conversion in either arm: a normal interval would be [0, 0], which claims a certainty 5 people cannot give.
    assert out.loc[1, "lift"] == 0.0 and out.loc[1, "ci_low"] < -0.5 and out.loc[1, "ci_high"] > 0.5
    assert math.isnan(out.loc[2, "lift"])  # no control arm, no lift


def test_cells_read_like_the_terminal_tables_and_are_escaped() -> None:
    from campaign_loop.cycle_report.page import _cell
    from campaign_loop.report import format_cell

    assert [format_cell(v) for v in (None, math.nan, True, 12345, 0.012345, 1234.5, "x")] == [
        "", "", "yes", "12,345", "0.01235", "1,234.50", "x"]
    assert _cell("<b>pct10</b>") == "&lt;b&gt;pct10&lt;/b&gt;" and _cell(0.5) == "0.5"


def _arms_row(campaign_id: str, arm: str, n: int, converted: int, pre: int, both: int) -> dict[str, object]:
    """A kpi_campaign_arms row: conversion and its pre-period; revenue, margin and orders all zero."""
    zeros = dict.fromkeys(("revenue", "revenue_sq", "pre_revenue", "pre_revenue_sq", "revenue_x_pre", "margin",
                           "margin_sq", "pre_margin", "pre_margin_sq", "margin_x_pre", "orders", "orders_sq",
                           "revenue_x_orders", "discount"), 0.0)
    return zeros | {"campaign_id": campaign_id, "arm": arm, "assigned": n, "converted": converted,
                    "pre_converted": pre, "converted_x_pre": both, "cost": 10.0 if arm != "control" else 0.0}


def test_the_report_shows_the_published_lift_and_names_its_methods(tmp_path) -> None:
    import duckdb

    from campaign_loop.config import Settings
    from campaign_loop.cycle_report import write_report
    from campaign_loop.lift import COLUMNS, campaign_lift

    settings = Settings(home=tmp_path)
    cycle_id = settings.cycle_key(0)
    arms = pd.DataFrame([_arms_row(f"{cycle_id}-pct10-email", "treatment", 900, 120, 300, 80),
                         _arms_row(f"{cycle_id}-pct10-email", "control", 100, 8, 30, 5)])
    trigger = f"trigger-cart_abandonment-{cycle_id}-email"
    triggered = pd.DataFrame([_arms_row(trigger, "treatment", 80, 9, 20, 5), _arms_row(trigger, "control", 20, 1, 5, 1)])
    lift = campaign_lift(arms)
    # Revenue per order is left out (no orders); conversion is CUPED-adjusted (the pre-period varies).
    assert lift["metric"].tolist() == ["converted", "revenue", "margin"]
    converted = lift.iloc[0]
    assert converted["cuped"] and converted["lift_unadjusted"] == pytest.approx(120 / 900 - 8 / 100)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema published")
        columns = ", ".join(f'cast("{n}" as {t}) as "{n}"' for n, t in COLUMNS.items())
        every = pd.concat([lift, campaign_lift(triggered)], ignore_index=True)  # noqa: F841 -- read by DuckDB
        con.execute(f"create table published.kpi_campaign_lift as select {columns} from every")
        # Two of the trigger's sends landed 2 and 4 hours after their events (the run's plan names the events).
        con.execute("create table published.fct_campaign_sends as select * from (values "
                    f"('{trigger}', 'M1', timestamp '2026-01-05 10:00'), ('{trigger}', 'M2', timestamp '2026-01-06 12:00'))"
                    " as t(campaign_id, member_id, sent_at)")
    _trigger_run(settings, trigger, {"M1": "2026-01-05 08:00", "M2": "2026-01-06 08:00"})
    page = write_report(settings, 0, airflow_url="http://127.0.0.1:1", mlflow_url="http://127.0.0.1:2").read_text()
    from campaign_loop.report import format_cell

    assert f"<td>{format_cell(converted['lift'])}</td>" in page  # the adjusted lift, as the table shows it
    assert f"{cycle_id}-pct10-email" in page and "mSPRT normal-mixture confidence sequence" in page
    assert "Dunnett step-down over the 1 comparisons with control, per metric" in page and "CUPED (theta=" in page
    lift_section, trigger_section = page.split("id='lift'")[1].split("id='triggers'")
    # A trigger campaign is measured against its own holdout, in its own section.
    trigger_section = trigger_section.split("id='models'")[0]
    assert trigger not in lift_section and trigger in trigger_section
    assert "delay_hours_median" in trigger_section and f"<td>{format_cell(3.0)}</td>" in trigger_section


def _trigger_run(settings, campaign_id: str, events: dict[str, str]) -> None:
    """A trigger run's plan file naming each member's event (what the delay is measured from)."""
    from ml.export import trigger_plan_dir

    folder = trigger_plan_dir(settings, settings.cycle_key(0))
    folder.mkdir(parents=True)
    pd.DataFrame({"campaign_id": campaign_id, "member_id": list(events), "trigger": "cart_abandonment",
                  "event_at": pd.to_datetime(list(events.values()))}).to_parquet(folder / "20260105T060000.parquet")


def test_the_report_shows_the_media_mix_of_the_next_cycle_and_the_design_may_use_its_budgets(tmp_path) -> None:
    import json

    from campaign_loop.config import Settings
    from campaign_loop.cycle_report import write_report
    from ml.mmm import design_channel_budgets, recommendation_path

    settings = Settings(home=tmp_path)
    next_id = settings.cycle_key(1)
    path = recommendation_path(settings, next_id)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "status": "promoted", "reason": "no champion yet", "version": "1", "diagnostics": {"days": 182, "max_r_hat": 1.01},
        "channels": [{"channel": "search", "spend": 100.0, "roas": 2.31, "roas_low": 1.9, "roas_high": 2.8}],
        "budgets": [{"channel": "email", "current_daily_spend": 10.0, "recommended_daily_spend": 12.5},
                    {"channel": "search", "current_daily_spend": 30.0, "recommended_daily_spend": 27.5}]}))

    page = write_report(settings, 0, airflow_url="http://127.0.0.1:1", mlflow_url="http://127.0.0.1:2").read_text()

    assert "<h2 id='media-mix'>Media mix</h2>" in page and "<td>2.31</td>" in page and "v1: promoted" in page
    # off by default; on, the design's own channel gets the recommended cycle's spend, a paid one does not
    assert design_channel_budgets(settings, next_id) == {}
    on = settings.model_copy(update={"media_budgets": True, "channel_budgets": {"sms": 5.0}})
    assert design_channel_budgets(on, next_id) == {"sms": 5.0, "email": 87.5}
