"""Chosen send hours against fixed ones, on the simulator's truth (issue 27, send time).

    .venv/bin/python bench/send_time.py --customers 20000 --seed 42 --write

A world with hour preferences (Settings ``send_hour_preference``) is simulated to cycle 0; its newsletter
history's opens and clicks, by local hour, give every member a send hour (``ml.send_time``, the legal
window 08-21); cycle 1 is then run from copies of that state with one e-mail message to every consenting
member, sent at the chosen hours or at one fixed hour for everyone (each hour 8..20). Reported: the opens
that landed, the truth's expected incremental purchases at the send hours (each member's true uplift times
the hour's factor), the purchases of the treated, and the truth's mean hour factor.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import machine, write_section  # noqa: E402

CYCLE_1 = "2026-01-12"
SEND_DAY = datetime(2026, 1, 13)  # the simulator's campaigns go out on a period's second day


def engagement_by_hour(settings) -> pd.DataFrame:  # noqa: ANN001
    events = pd.concat(pd.read_csv(p) for p in (settings.landing_dir / "campaign_events").glob("*.csv"))
    events = events[events["event_type"].isin(["open", "click"])]
    local = pd.to_datetime(events["occurred_at"], unit="ms", utc=True).dt.tz_convert(settings.timezone)
    frame = pd.DataFrame({"customer_id": events["member_id"].to_numpy(), "local_hour": local.dt.hour.to_numpy(),
                          "opens": (events["event_type"] == "open").to_numpy(int),
                          "clicks": (events["event_type"] == "click").to_numpy(int)})
    return frame.groupby(["customer_id", "local_hour"], as_index=False).sum()


def run(home: Path, work: Path, name: str, members: pd.Series, hours: np.ndarray, customers: int, seed: int) -> dict:
    from campaign_loop.actions import CHANNEL_COST
    from campaign_loop.config import Settings
    from sim import simulate_period
    from sim.hours import hour_factor

    zone = ZoneInfo("Asia/Seoul")
    plan = pd.DataFrame({
        "member_id": members.to_numpy(), "campaign_id": f"{CYCLE_1}-message-email", "channel": "email",
        "offer_type": "none", "offer_value": 0.0, "arm": "treatment", "assignment_probability": 1.0,
        "cost_per_contact": CHANNEL_COST["email"],
        "send_at": [pd.Timestamp(SEND_DAY.replace(hour=int(h), tzinfo=zone)) for h in hours],
    })
    copy = work / name
    shutil.copytree(home, copy)
    settings = Settings(home=copy, customers=customers, seed=seed, dirt=0.0, send_hour_preference=True)
    simulate_period(settings, 1, plan)
    events = pd.read_csv(settings.landing_dir / "campaign_events" / f"{CYCLE_1}.csv")
    effects = pq.read_table(settings.truth_dir / "effects" / f"{CYCLE_1}.parquet").to_pandas().set_index("member_id")
    outcomes = pq.read_table(settings.truth_dir / "outcomes" / f"{CYCLE_1}.parquet").to_pandas()
    treated = effects.loc[members]
    factor = hour_factor(treated["preferred_hour"].to_numpy(float), hours)
    shutil.rmtree(copy)
    return {
        "send hour": name, "opens": int((events["event_type"] == "open").sum()),
        "expected incremental purchases": float((treated["uplift__message__email"].to_numpy(float) * factor).sum()),
        "purchases of the treated": int(outcomes.loc[outcomes["arm"] == "treatment", "purchased"].sum()),
        "mean hour factor": float(factor.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    args = parser.parse_args()

    from campaign_loop.config import Settings
    from ml.send_time import choose_send_hours
    from sim import simulate_period

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(home=work / "home", customers=args.customers, seed=args.seed, dirt=0.0,
                            send_hour_preference=True)
        simulate_period(settings, 0)
        effects = pq.read_table(settings.truth_dir / "effects" / "2026-01-05.parquet").to_pandas()
        members = effects.loc[effects["consent_email"] & effects["member_id"].notna(), "member_id"]
        chosen = choose_send_hours(engagement_by_hour(settings), (8, 21)).set_index("customer_id")["send_hour"]
        own = members.map(chosen)
        rows = [run(settings.root, work, "chosen (ml.send_time)", members,
                    own.fillna(9).astype(int).to_numpy(), args.customers, args.seed)]
        rows += [run(settings.root, work, f"{h:02d}:00 for all", members, np.full(len(members), h),
                     args.customers, args.seed) for h in range(8, 21)]
    table = pd.DataFrame(rows)
    best_fixed = table.iloc[1:].sort_values("expected incremental purchases").iloc[-1]
    text = "\n".join([
        "## Send time against fixed hours (issue 27)",
        "",
        f"Command: `.venv/bin/python bench/send_time.py --customers {args.customers} --seed {args.seed}`  ",
        f"Commit: {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {len(members):,} e-mail members, "
        f"{own.notna().mean():.0%} with an open or click in the history; {time.perf_counter() - started:.0f} s",
        "",
        table.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"Chosen hours against the best fixed hour ({best_fixed['send hour']}): opens "
        f"{table.iloc[0]['opens'] / best_fixed['opens'] - 1:+.0%}, expected incremental purchases "
        f"{table.iloc[0]['expected incremental purchases'] / best_fixed['expected incremental purchases'] - 1:+.0%}.",
    ])
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
