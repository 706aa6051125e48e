"""Labels (dbt) and feature frames: nothing after the as-of date in features, nothing outside the
window in labels, incomplete windows flagged, and uplift evidence limited to each action's own arms.

Labels, action sends and the marts the frames read (models/marts/ml) are checked on a small simulated
world built by dbt (1,500 people, 3 cycles); the frames' point-in-time rules on the synthetic marts of
conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml import features

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from ingest import ingest
    from sim import simulate_period
    home = tmp_path_factory.mktemp("world")
    settings = Settings(home=home, customers=1500)
    for cycle in range(3):
        simulate_period(settings, cycle)
        ingest(settings)
    env = os.environ | {"CAMPAIGN_LOOP_HOME": str(home), "DBT_TARGET_PATH": str(home / "target"),
                        "DBT_LOG_PATH": str(home / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("CAMPAIGN_LOOP_DBT_TARGET", None)
    def dbt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(DBT), *args, "--project-dir", "dbt_project", "--profiles-dir", "dbt_project"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )

    # Upstream models are run, not tested: their data tests are their owners' (tests/dbt); ours run below.
    built = dbt("run", "--select", "+fct_customer_labels", "+fct_action_sends", "+fct_classifier_rows",
                "+fct_uplift_rows", "+fct_scoring_rows")
    assert built.returncode == 0, built.stdout[-3000:]
    tested = dbt("test", "--select", "fct_customer_labels", "fct_action_sends", "fct_classifier_rows", "fct_uplift_rows",
                 "fct_scoring_rows", "int_customer_contacts_asof")
    assert tested.returncode == 0, tested.stdout[-3000:]
    return settings


def _table(settings: Settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.sql(sql).df()


def test_labels_only_count_orders_inside_their_window(world: Settings) -> None:
    labels = _table(world, "select * from marts.fct_customer_labels")
    orders = _table(world, "select customer_id, ordered_at from marts.fct_orders where is_revenue and customer_id is not null")
    assert len(labels) > 0
    expected_buy, expected_active = [], []
    for as_of, part in labels.groupby("as_of_date"):
        start = pd.Timestamp(as_of)
        in_cycle = orders[(orders["ordered_at"] >= start) & (orders["ordered_at"] < start + timedelta(days=7))]
        in_28d = orders[(orders["ordered_at"] >= start) & (orders["ordered_at"] < start + timedelta(days=28))]
        expected_buy.append(part["customer_id"].isin(in_cycle["customer_id"]).rename("expected"))
        expected_active.append(part["customer_id"].isin(in_28d["customer_id"]).rename("expected"))
    # the label equals a recomputation that only looks inside [as_of, as_of + window)
    assert (labels["purchased_next_cycle"] == pd.concat(expected_buy).reindex(labels.index)).all()
    assert (labels["churned"] == ~pd.concat(expected_active).reindex(labels.index)).all()
    # someone who bought in the cycle did not churn
    assert not (labels["purchased_next_cycle"] & labels["churned"]).any()


def test_incomplete_label_windows_are_flagged(world: Settings) -> None:
    labels = _table(world, "select * from marts.fct_customer_labels")
    data_end = pd.Timestamp(world.cycle_start(3))  # three cycles loaded
    assert (labels["data_end_at"] == data_end).all()
    by_date = labels.groupby("as_of_date")[["label_complete_next_cycle", "label_complete_churn"]].all()
    for as_of, row in by_date.iterrows():
        assert row["label_complete_next_cycle"] == (pd.Timestamp(as_of) + timedelta(days=7) <= data_end)
        assert row["label_complete_churn"] == (pd.Timestamp(as_of) + timedelta(days=28) <= data_end)
    # the newest as-of date (the one scored for the next campaign) never trains
    frame = features.classifier_frame(world.warehouse_path, "purchased_next_cycle")
    assert pd.Timestamp(frame["as_of_date"].max()) < labels["as_of_date"].max()
    assert features.classifier_frame(world.warehouse_path, "churned").empty  # 3 cycles < 28 days


def test_uplift_rows_are_assignments_of_catalogue_actions_as_of_their_cycle(world: Settings) -> None:
    frame = features.uplift_frame(world.warehouse_path)
    sends = _table(world, "select * from marts.fct_campaign_sends")
    assert len(frame) > 0
    # every row is a real assignment (treatment or control) of its customer in that cycle
    keys = set(zip(sends["customer_id"], sends["cycle_id"], sends["campaign_id"], strict=True))
    assert all(k in keys for k in zip(frame["customer_id"], frame["as_of_date"].astype(str), frame["campaign_id"], strict=True))
    assert set(frame["treatment"]) == {0, 1}
    # features are as of the campaign's cycle start
    assert (frame["as_of_date"].astype(str) == frame["campaign_id"].str.extract(r"(\d{4}-\d{2}-\d{2})")[0]).all()
    names = frame["campaign_id"].str.split("-").str[-2:].str.join("__")
    assert (frame["action"] == names).all()


# --------------------------------------------------------------------------- synthetic, point in time


def test_features_never_look_past_the_as_of_date(synthetic_home: tuple[Path, dict]) -> None:
    home, frames = synthetic_home
    frame = features.classifier_frame(Settings(home=home).warehouse_path, "purchased_next_cycle")
    orders = frames["fct_orders"]
    for as_of, part in frame.groupby("as_of_date"):
        before = orders[orders["ordered_at"] < pd.Timestamp(as_of)].groupby("customer_id").size()
        counted = part.set_index("customer_id")["orders_total"]
        assert (counted == before.reindex(counted.index).fillna(0)).all()
    assert list(frame.columns[2:-1]) == list(features.FEATURES)
    assert frame[list(features.FEATURES)].dtypes.eq("float64").all()


def test_training_frames_stop_at_max_as_of_and_scoring_uses_the_newest_date(synthetic_home: tuple[Path, dict]) -> None:
    home, _ = synthetic_home
    warehouse = Settings(home=home).warehouse_path
    cut = pd.Timestamp("2026-01-26").date()
    assert features.classifier_frame(warehouse, "purchased_next_cycle", max_as_of=cut)["as_of_date"].max() == cut
    assert features.uplift_frame(warehouse, max_as_of=cut)["as_of_date"].max() <= cut
    scoring = features.scoring_frame(warehouse)
    assert set(scoring["as_of_date"]) == {max(features.as_of_dates(warehouse))}
    assert scoring["customer_id"].is_unique


def test_evaluation_set_is_a_fixed_share_of_customers() -> None:
    ids = pd.Series([f"C{i}" for i in range(20_000)])
    mask = features.evaluation_mask(ids, 0.2)
    assert 0.18 < mask.mean() < 0.22
    shuffled = ids.sample(frac=1, random_state=0)  # the same customers in another order keep their split
    by_position = pd.Series(features.evaluation_mask(shuffled, 0.2), index=shuffled.index).sort_index()
    assert np.array_equal(mask, by_position.to_numpy())


def test_action_names_follow_the_catalogue() -> None:
    assert features.action_name("percent_off", 20.0, "email") == "pct20__email"
    assert features.action_name("none", 0.0, "kakao") == "message__kakao"
    assert features.action_name("amount_off", 5.0, "sms") is None  # not in the catalogue: no evidence


def test_a_channel_is_bounced_when_its_newest_send_before_the_date_bounced(world: Settings) -> None:
    as_of = features.as_of_dates(world.warehouse_path)[-1]
    scoring = features.scoring_frame(world.warehouse_path, as_of=as_of).set_index("customer_id")
    sends = _table(world, f"""
        select customer_id, channel, sent_at, is_bounced from marts.fct_campaign_sends
        where customer_id is not null and sent_at < timestamp '{as_of}'""")
    newest = sends.sort_values("sent_at").groupby(["customer_id", "channel"])["is_bounced"].last()
    assert newest.any(), "the world has no bounced send to check"
    for channel in ("email", "push", "sms", "kakao"):
        expected = newest.xs(channel, level="channel").reindex(scoring.index, fill_value=False)
        assert (scoring[f"bounced_{channel}"] == expected.astype(bool)).all(), channel
