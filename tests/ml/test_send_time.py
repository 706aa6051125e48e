"""Each customer's send hour (ml.send_time) and the plan's send_at inside the legal window."""

from __future__ import annotations

import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml.decide import DesignConfig, design_campaign
from ml.send_time import choose_send_hours, with_send_hours
from tests.ml.test_decide import make_world


def engagement(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"customer_id": c, "local_hour": h, "opens": n, "clicks": 0} for c, h, n in rows])


def test_a_reader_gets_their_hour_and_a_night_reader_the_windows_edge() -> None:
    frame = engagement([("a", 19, 6), ("a", 11, 1), ("b", 23, 5), ("b", 22, 3), ("c", 12, 1), ("d", 5, 4)]
                       + [(f"p{i}", 11, 1) for i in range(40)])
    hours = choose_send_hours(frame, (8, 21)).set_index("customer_id")["send_hour"]
    assert hours["a"] == 19
    assert hours["b"] == 20  # reads at 22-23h: the latest legal hour
    assert hours["d"] == 8  # reads at 05h: the earliest legal hour
    assert hours["c"] == 11 or hours["c"] == 12  # one open: pulled toward the population's 11h
    assert hours.between(8, 20).all()
    assert choose_send_hours(frame, (9, 18)).set_index("customer_id").loc["a", "send_hour"] == 17
    with pytest.raises(ValueError, match="local_hour 24 of customer x"):
        choose_send_hours(engagement([("x", 24, 1)]))


def test_the_plan_sends_at_each_customers_hour_inside_the_window() -> None:
    world = make_world(600, 5)
    ids = world["customer_id"]
    hours = pd.DataFrame({"customer_id": ids, "send_hour": [(i % 3) * 7 + 1 for i in range(len(ids))]})
    hours = hours[hours.index % 4 != 0]  # a quarter without history keep their channel's hour
    config = DesignConfig.from_settings(Settings(budget=500.0, send_window_start=9, send_window_end=20), "2026-01-12")
    plan = design_campaign(with_send_hours(world, hours), config)
    rows = plan.rows.merge(hours, on="customer_id", how="left")
    local = pd.DatetimeIndex(rows["send_at"]).tz_convert("Asia/Seoul").hour.to_numpy()
    own = rows["send_hour"].notna().to_numpy()
    assert own.any() and (~own).any()
    assert ((local >= 9) & (local < 20)).all()
    assert (local[own] == rows.loc[own, "send_hour"].clip(9, 19).to_numpy()).all()
    usual = rows.loc[~own, "channel"].map({"email": 9, "push": 19, "sms": 11, "kakao": 12}).to_numpy()
    assert (local[~own] == usual).all()
    assert sum(plan.summary["send_hours"].values()) == plan.summary["treatment"]
