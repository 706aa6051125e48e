"""Train and gate every model on a simulated world (100k customers by default) and time it.

    .venv/bin/python bench/train_speed.py --home /tmp/mlw100k --customers 100000 --cycles 4 [--build]

``--build`` first simulates and ingests ``--cycles`` cycles and runs ``dbt build`` (a few minutes at
100k; not timed). The timed part is two ``train_cycle`` calls on a fresh MLflow store: the
second-to-last cycle (no champion: promotes) and the last one (champion re-scored and gated). Then the
uplift champion's Qini on its holdout is compared with the oracle Qini, ranking the same assignments
by the simulator's true uplift (``truth/effects/<cycle_id>.parquet``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_world(home: Path, customers: int, cycles: int) -> None:
    from campaign_loop import pipeline
    from campaign_loop.config import Settings

    settings = Settings(home=home, customers=customers)
    for cycle in range(cycles):
        pipeline.simulate(settings, cycle)
        pipeline.ingest(settings, cycle)
    env = os.environ | {"CAMPAIGN_LOOP_HOME": str(home), "CAMPAIGN_LOOP_CUSTOMERS": str(customers)}
    subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project"],
        cwd=REPO, env=env, check=True,
    )


def uplift_vs_oracle(settings: object) -> dict[str, float]:
    """Challenger-free comparison on the uplift holdout: champion Qini vs the true-uplift ranking."""
    import numpy as np
    import pandas as pd

    from ml import evaluate, features
    from ml.registry import load_champion
    from sim import oracle

    model = load_champion("uplift", flavor="sklearn")
    frame = features.uplift_frame(settings.warehouse_path)  # type: ignore[attr-defined]
    holdout = frame[features.evaluation_mask(frame["customer_id"])].reset_index(drop=True)
    truths = []
    for cycle_id, part in holdout.groupby(holdout["as_of_date"].astype(str)):
        effects = pd.read_parquet(settings.truth_dir / "effects" / f"{cycle_id}.parquet")  # type: ignore[attr-defined]
        effects = oracle.by_member(effects)
        columns = "uplift__" + part["action"]
        values = [effects[c].get(m, np.nan) for c, m in zip(columns, part["send_member_id"], strict=True)]
        truths.append(pd.Series(values, index=part.index))
    true_uplift = pd.concat(truths).reindex(holdout.index).to_numpy(float)
    known = np.isfinite(true_uplift)
    covered = holdout["action"].isin(model.covered_actions).to_numpy()
    score = np.where(covered, np.nan_to_num(model.effect(holdout, "conversion")), 0.0)
    t, y = holdout["treatment"].to_numpy()[known], holdout["is_converted"].to_numpy()[known]
    return {
        "holdout_assignments": int(known.sum()),
        "qini_model": evaluate.qini_coefficient(score[known], t, y),
        "qini_oracle": evaluate.oracle_qini(true_uplift[known], t, y),
        "spearman_pred_vs_true": float(pd.Series(score[known]).corr(pd.Series(true_uplift[known]), method="spearman")),
        "mean_true_uplift": float(true_uplift[known].mean()),
        "mean_predicted_uplift": float(score[known].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/mlw100k"))
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--learner", choices=["t", "x"], default="x")
    args = parser.parse_args()

    from campaign_loop.config import Settings
    from ml import tracking
    from ml.train import TrainConfig, train_cycle

    if args.build:
        build_world(args.home, args.customers, args.cycles)
    settings = Settings(home=args.home, customers=args.customers)
    shutil.rmtree(settings.mlflow_dir, ignore_errors=True)
    started = time.perf_counter()
    tracking.configure(settings)
    tracking.ensure_experiment("campaign-loop", tracking.artifact_root(settings))
    store_seconds = time.perf_counter() - started
    config = TrainConfig(uplift_learner=args.learner)
    results: dict[str, object] = {"customers": args.customers, "store_setup_seconds": round(store_seconds, 1)}
    for cycle in (args.cycles - 2, args.cycles - 1):
        cycle_id = settings.cycle_start(cycle).isoformat()
        report = train_cycle(settings, cycle_id, {"dbt_invocation_id": "bench"}, config=config)
        sys.stdout.write(report.summary() + "\n")
        sys.stdout.flush()
        results[cycle_id] = {
            "seconds": round(report.seconds, 1),
            **{name: {"status": m.status, "seconds": round(m.seconds, 1), "version": m.version,
                      **{k: round(v, 4) for k, v in m.metrics.items()
                         if k in ("roc_auc", "average_precision", "log_loss", "brier", "holdout_abs_error_pct",
                                  "spearman_clv", "qini_coefficient", "auuc", "uplift_at_top_decile")}}
               for name, m in report.models.items()},
        }
    results["uplift_vs_oracle"] = uplift_vs_oracle(settings)
    sys.stdout.write(json.dumps(results, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
