"""`make demo`: campaign cycles through Airflow on the embedded default (SQLite metadata, DuckDB warehouse).

Each cycle is one `airflow dags test` run of the real DAG at the cycle's logical date (campaign_loop.runner),
so the demo exercises exactly what the scheduler would run; between cycles it prints what the cycle loaded
and, from the simulator's truth, what its campaign was worth.
"""

from __future__ import annotations

import shutil
import sys
import time

from campaign_loop.config import Settings
from campaign_loop.dbt_duckdb_plugin import DEV_KEY_NOTICE, uses_dev_key
from campaign_loop.own_data import last_published
from campaign_loop.pipeline import batch_counts, measure
from campaign_loop.report import format_table
from campaign_loop.runner import CycleFailed, CycleRun, airflow_session, run_cycle
from ml.tracking import credentials_path, server_credentials
from sim.oracle import evaluate_cycle, uplift_ranking


def learning_row(settings: Settings, cycle: int) -> dict[str, object]:
    """One line of the learning curve; the truth is read here only because this is the demo harness."""
    value = evaluate_cycle(settings, cycle)
    ranking = uplift_ranking(settings, cycle)
    lift = measure(settings, cycle)
    interval = (f"{lift['lift']:+.2%} [{lift['lift_ci_low']:+.2%}, {lift['lift_ci_high']:+.2%}]"
                if "lift" in lift else "n/a")
    return {
        "cycle": cycle,
        "campaign": "business as usual" if cycle == 0 else "designed by the loop",
        "treated": value.treated,
        "incremental_profit": round(value.incremental_profit, 2),
        "oracle_profit": round(value.oracle_incremental_profit, 2),
        "ratio_to_oracle": None if value.ratio_to_oracle is None else round(value.ratio_to_oracle, 3),
        "measured_lift [95% CI]": interval,
        "uplift_qini (oracle)": "n/a" if ranking is None else f"{ranking.qini_model:.4f} ({ranking.qini_oracle:.4f})",
    }


def run_demo(settings: Settings, fresh: bool = False) -> int:
    if fresh and settings.root.exists():
        shutil.rmtree(settings.root)
    log = settings.root / "logs" / "demo.log"
    # A home the demo ran in goes on after its last published cycle: running cycle 0 again would re-land
    # and re-publish what the warehouse already holds.
    published = last_published(settings)  # none after --fresh: the home is gone
    first = 0 if published is None else published + 1
    print(f"Campaign Loop demo: {settings.cycles} cycles of {settings.cycle_days} days, "
          f"{settings.customers:,} simulated customers, home {settings.root}")
    if first:
        print(f"Cycles 0-{published} are published here: going on from cycle {first} (--fresh starts over).")
    if first >= settings.cycles:
        print(f"campaign-loop demo: nothing to run: cycles 0-{published} are published and cycles is "
              f"{settings.cycles} (raise --cycles, or --fresh to start over)", file=sys.stderr)
        return 2

    if uses_dev_key(settings.demo):
        print(f"\n{'!' * 100}\n{DEV_KEY_NOTICE}\n{'!' * 100}\n", flush=True)
    started = time.monotonic()
    curve: list[dict[str, object]] = []

    def show(run: CycleRun) -> None:
        print(f"\nCycle {run.cycle}: {run.cycle_id} .. {run.logical_date} (Airflow run {run.seconds:.0f} s)")
        print(format_table(batch_counts(settings, run.cycle)))
        curve.append(learning_row(settings, run.cycle))

    try:
        with airflow_session(settings, log) as tracking:
            print(f"MLflow tracking server: {tracking} (user {server_credentials(settings).username}, "
                  f"password in {credentials_path(settings)})")
            for cycle in range(first, settings.cycles):
                show(run_cycle(settings, cycle, log))
    except CycleFailed as failure:
        print(f"campaign-loop demo: {failure}", file=sys.stderr)
        return 1

    print("\nLearning curve: the campaign each cycle executed, valued by the simulator's truth, against the")
    print("oracle plan (same budget and rules, true effects), and its lift measured against the holdout:")
    print(format_table(curve))
    print(f"\nDone in {time.monotonic() - started:.0f} s. Warehouse: {settings.warehouse_path}; Airflow log: {log}")
    return 0
