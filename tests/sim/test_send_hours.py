"""Send-hour preference (Settings ``send_hour_preference``): the chosen hours beat a fixed hour on the truth.

One world of 3,000 people is simulated to cycle 0 with the mechanism on, its newsletter history's opens and
clicks give each member a send hour (ml.send_time), and cycle 1 is run from copies of that state with one
e-mail to every consenting member, sent at the chosen hours or at one fixed hour for all.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from campaign_loop.actions import CHANNEL_COST
from campaign_loop.config import Settings
from ml.send_time import choose_send_hours
from sim import simulate_period
from sim.hours import hour_factor, preferred_hour

CYCLE_1 = "2026-01-12"
SEND_DAY = datetime(2026, 1, 13)  # the simulator's campaigns go out on a period's second day


def engagement_by_hour(settings: Settings) -> pd.DataFrame:
    """Opens and clicks per member and local hour, from the landed campaign events (what the mart counts)."""
    events = pd.concat(pd.read_csv(p) for p in (settings.landing_dir / "campaign_events").glob("*.csv"))
    events = events[events["event_type"].isin(["open", "click"])]
    local = pd.to_datetime(events["occurred_at"], unit="ms", utc=True).dt.tz_convert(settings.timezone)
    frame = pd.DataFrame({"customer_id": events["member_id"].to_numpy(), "local_hour": local.dt.hour.to_numpy(),
                          "opens": (events["event_type"] == "open").to_numpy(int),
                          "clicks": (events["event_type"] == "click").to_numpy(int)})
    return frame.groupby(["customer_id", "local_hour"], as_index=False).sum()


def email_plan(members: pd.Series, hours: pd.Series) -> pd.DataFrame:
    zone = ZoneInfo("Asia/Seoul")
    return pd.DataFrame({
        "member_id": members.to_numpy(), "campaign_id": f"{CYCLE_1}-message-email", "channel": "email",
        "offer_type": "none", "offer_value": 0.0, "arm": "treatment", "assignment_probability": 1.0,
        "cost_per_contact": CHANNEL_COST["email"],
        "send_at": [pd.Timestamp(SEND_DAY.replace(hour=int(h), tzinfo=zone)) for h in hours],
    })


def run_cycle_1(home: Path, tmp: Path, name: str, plan: pd.DataFrame) -> dict[str, float]:
    """Cycle 1 from a copy of ``home``'s cycle-0 state with ``plan``: opens (landed), the truth's expected
    incremental purchases of the treated at their send hours, and their realised purchases."""
    copy = tmp / name
    shutil.copytree(home, copy)
    settings = Settings(home=copy, customers=3_000, dirt=0.0, send_hour_preference=True)
    simulate_period(settings, 1, plan)
    events = pd.read_csv(settings.landing_dir / "campaign_events" / f"{CYCLE_1}.csv")
    sends = pd.read_csv(settings.landing_dir / "campaign_sends" / f"{CYCLE_1}.csv").set_index("member_id")
    sent_hour = pd.to_datetime(sends.loc[plan["member_id"], "sent_at"], utc=True, format="ISO8601").dt.tz_convert("Asia/Seoul")
    planned = pd.DatetimeIndex(plan["send_at"]).tz_convert("Asia/Seoul")
    sent = sent_hour.notna().to_numpy()  # a member who withdrew consent since is not sent
    assert sent.mean() > 0.9
    assert (sent_hour.dt.hour.to_numpy()[sent] == planned.hour.to_numpy()[sent]).all()  # 08:00 in Seoul too
    effects = pq.read_table(settings.truth_dir / "effects" / f"{CYCLE_1}.parquet").to_pandas().set_index("member_id")
    outcomes = pq.read_table(settings.truth_dir / "outcomes" / f"{CYCLE_1}.parquet").to_pandas()
    treated = effects.loc[plan["member_id"]]
    send_hour = pd.DatetimeIndex(plan["send_at"]).tz_convert("Asia/Seoul").hour.to_numpy()
    factor = hour_factor(treated["preferred_hour"].to_numpy(float), send_hour)
    sent = outcomes[outcomes["arm"] == "treatment"]
    return {
        "opens": float(((events["event_type"] == "open") & (events["campaign_id"] == plan["campaign_id"].iloc[0])).sum()),
        "expected_incremental": float((treated["uplift__message__email"].to_numpy(float) * factor).sum()),
        "purchases": float(sent["purchased"].sum()),
    }


@pytest.fixture(scope="module")
def hour_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    home = tmp_path_factory.mktemp("hours") / "home"
    settings = Settings(home=home, customers=3_000, dirt=0.0, send_hour_preference=True)
    simulate_period(settings, 0)
    return settings, home


def test_chosen_send_hours_beat_a_fixed_hour_on_the_truth(hour_world, tmp_path: Path) -> None:
    settings, home = hour_world
    effects = pq.read_table(settings.truth_dir / "effects" / "2026-01-05.parquet").to_pandas()
    members = effects.loc[effects["consent_email"] & effects["member_id"].notna(), "member_id"]
    chosen = choose_send_hours(engagement_by_hour(settings), (settings.send_window_start, settings.send_window_end))
    hours = members.map(chosen.set_index("customer_id")["send_hour"]).fillna(9).astype(int)
    assert hours.between(8, 20).all()  # the legal window, 08:00-21:00

    # The preference shows in the history: the chosen hour is near the true one for most engaged members.
    truth = effects.set_index("member_id")
    engaged = chosen[chosen["engagements"] >= 2]
    true_hour = np.clip(truth.loc[engaged["customer_id"], "preferred_hour"].to_numpy(float), 8, 20)
    assert np.median(np.abs(engaged["send_hour"].to_numpy() - true_hour)) <= 2.0

    results = {name: run_cycle_1(home, tmp_path, name, email_plan(members, h)) for name, h in (
        ("chosen", hours), ("09h", pd.Series(9, index=members.index)), ("19h", pd.Series(19, index=members.index)))}
    for fixed in ("09h", "19h"):
        assert results["chosen"]["opens"] > 1.15 * results[fixed]["opens"], results
        assert results["chosen"]["expected_incremental"] > 1.15 * results[fixed]["expected_incremental"], results


def test_preferred_hours_are_stable_and_spread_over_the_day(hour_world) -> None:
    settings, _ = hour_world
    effects = pq.read_table(settings.truth_dir / "effects" / "2026-01-05.parquet").to_pandas()
    again = preferred_hour({"person_id": effects["person_id"].to_numpy()}, settings.seed)
    assert np.allclose(again, effects["preferred_hour"].to_numpy(float), atol=1e-3)
    by_peak = np.histogram(again, bins=[0, 10.5, 16, 24])[0] / len(again)
    assert (by_peak > 0.2).all()
