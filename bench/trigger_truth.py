"""Trigger journeys against the simulator's truth: does each trigger's measured lift cover its true lift?

Per seed: a world lives through cycle 0 (business as usual), the marts are built, the five trigger journeys run
at cycle 1's start (win-back's churn score: the world's own knowledge of who dropped out), the world lives
through cycle 1 executing their sends, the marts are rebuilt and every trigger is measured against its holdout
(``campaign_loop.trigger_journeys.measure``). Prints one row per seed and trigger: members, true lift (mean true
effect of the members, ``sim.oracle.true_trigger_lift``), measured lift and 95 % interval, whether it covers the
truth, and the median and 90th percentile delay from event to send; then the coverage over every row.

    .venv/bin/python bench/trigger_truth.py --customers 10000 --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SELECT = ("run", "--select", "+fct_trigger_candidates", "+kpi_campaign_arms", "+fct_scoring_rows")


def dbt(home: Path) -> None:
    env = os.environ | {"CAMPAIGN_LOOP_HOME": str(home), "DBT_TARGET_PATH": str(home / "dbt" / "target"),
                        "DBT_LOG_PATH": str(home / "dbt" / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    project = REPO / "dbt_project"
    subprocess.run([str(Path(sys.executable).with_name("dbt")), *SELECT, "--project-dir", str(project),
                    "--profiles-dir", str(project)], cwd=REPO, env=env, check=True, capture_output=True)


def one_world(customers: int, seed: int, root: Path) -> list[dict[str, object]]:
    import duckdb

    from campaign_loop import trigger_journeys
    from campaign_loop.actions import TRIGGERS
    from campaign_loop.config import Settings
    from ingest import ingest
    from ml.export import read_trigger_plans
    from sim import simulate_period
    from sim.oracle import true_trigger_lift

    settings = Settings(home=root / f"seed{seed}", customers=customers, seed=seed, triggers=tuple(TRIGGERS))
    simulate_period(settings, 0)
    ingest(settings)
    dbt(settings.root)
    effects = pd.read_parquet(settings.truth_dir / "effects" / f"{settings.cycle_key(0)}.parquet",
                              columns=["member_id", "alive"])
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        customers_ = con.sql("select customer_id, member_id from marts.dim_customers where member_id is not null").df()
    scores = customers_.merge(effects, on="member_id").assign(p_churn=lambda f: np.where(f["alive"], 0.1, 0.9))
    (settings.exports_dir / "scores").mkdir(parents=True)
    scores[["customer_id", "p_churn"]].to_parquet(settings.exports_dir / "scores" / f"{settings.cycle_key(1)}.parquet")
    trigger_journeys.plan_at_cycle_start(settings, 1, schema="marts")
    rows = read_trigger_plans(settings, settings.cycle_key(1))
    simulate_period(settings, 1, None, rows)
    ingest(settings)
    dbt(settings.root)
    measured = trigger_journeys.measure(settings, schema="marts")["triggers"]
    out = []
    for name, (truth, assigned) in true_trigger_lift(settings, 1).items():
        m = measured[name]
        converted = round(m["conversion_treatment"] * m["n_treatment"] + m["conversion_control"] * m["n_control"])
        out.append({"seed": seed, "trigger": name, "members": assigned, "converted": converted, "true_lift": truth,
                    "lift": m["lift"], "ci_low": m["lift_ci_low"], "ci_high": m["lift_ci_high"],
                    "covers": bool(m["lift_ci_low"] <= truth <= m["lift_ci_high"]),
                    "delay_h_median": m["delay_hours"]["median"], "delay_h_p90": m["delay_hours"]["p90"]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="trigger-truth-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows += one_world(args.customers, seed, Path(tmp))
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.float_format", "{:+.4f}".format):
        print(frame.to_string(index=False))
    print(f"\ncoverage of the true lift by the 95 % intervals: {int(frame['covers'].sum())}/{len(frame)} "
          f"({int((frame['converted'] == 0).sum())} rows without a conversion in either arm: Newcombe's interval)")


if __name__ == "__main__":
    main()
