"""Train and gate every model on a simulated world (100k customers by default) and time it.

    .venv/bin/python bench/train_speed.py --home /tmp/mlw100k --customers 100000 --cycles 4 [--build]

``--build`` first simulates and ingests ``--cycles`` cycles and runs ``dbt build`` (a few minutes at
100k; not timed). The timed part is two ``train_cycle`` calls on a fresh MLflow store: the
second-to-last cycle (no champion: promotes) and the last one (champion re-scored and gated). Then the
uplift champion's Qini on its holdout is compared with the oracle Qini, ranking the same assignments
by the simulator's true uplift (``truth/effects/<cycle_id>.parquet``).

``--design`` then times the design step as campaign_loop/pipeline.py's ``design`` runs it with the default
settings, on the marts schema (not ``published``, which only a cycle's publish writes): scoring every
customer with the champions (``ml.score.score_customers``), each customer's send hour, ``design_campaign``
(ml/decide) and the plan's export. The process's RSS before each phase and its peak during it (psutil, every
0.5 s) are recorded. ``--jsonl`` appends the timings as one record; ``--table-from`` composes issue 26's
table from such records (``--write`` replaces it in bench/RESULTS.md, "Scale per engine").

    .venv/bin/python bench/train_speed.py --home /tmp/scale26-train-100k --customers 100000 --cycles 4 --build \\
        --design --jsonl /tmp/scale26-train.jsonl
    .venv/bin/python bench/train_speed.py --table-from /tmp/scale26-train.jsonl --write
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


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


def own_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def design_timing(settings: object, cycle_id: str) -> dict[str, float]:
    """pipeline.design's steps under the default settings (customer send hours; global frequency cap, no policy
    choice, no media mix: their defaults), on the marts schema, each timed."""
    from ml.decide import DesignConfig, design_campaign
    from ml.export import write_plan, write_scores
    from ml.score import score_customers
    from ml.send_time import warehouse_send_hours, with_send_hours

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    customers = score_customers(settings, schema="marts")  # type: ignore[arg-type]
    out["score_s"] = time.perf_counter() - t0
    out["customers_scored"] = len(customers)
    t0 = time.perf_counter()
    window = (settings.send_window_start, settings.send_window_end)  # type: ignore[attr-defined]
    customers = with_send_hours(customers, warehouse_send_hours(settings.warehouse_path, window, "marts"))  # type: ignore[attr-defined]
    out["send_hours_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = design_campaign(customers, DesignConfig.from_settings(settings, cycle_id))  # type: ignore[arg-type]
    out["design_campaign_s"] = time.perf_counter() - t0
    out["plan_rows"] = len(plan.rows)
    t0 = time.perf_counter()
    write_plan(plan, settings)  # type: ignore[arg-type]
    write_scores(customers, settings, cycle_id)  # type: ignore[arg-type]
    out["export_s"] = time.perf_counter() - t0
    out["design_total_s"] = out["score_s"] + out["send_hours_s"] + out["design_campaign_s"] + out["export_s"]
    return out


SCALE_SECTION = "## Scale per engine (issue 26)"
TRAINING_SUBSECTION = "### Training and design per size (DuckDB)"


def scale_markdown(records: list[dict]) -> str:
    """Training and design per size: the subsection :data:`TRAINING_SUBSECTION` of issue 26's section."""
    from bench.results import machine

    records = sorted(records, key=lambda r: r["customers"])
    lines = [
        *[f"Command: `python bench/train_speed.py {c}`  " for c in dict.fromkeys(" ".join(r["argv"]) for r in records)],
        f"Commit: {', '.join(sorted({r['commit'] for r in records}))}  ",
        f"Machine: {machine()}  ",
        f"Date: {', '.join(r['started'][:16].replace('T', ' ') for r in records)} UTC; one run each, 2 CPUs shared "
        "with another job (a pytest suite). World: cycles 0 to --cycles - 1 simulated, ingested and built "
        "(untimed; by --build, or a world bench/dbt_speed.py left); training "
        "as in \"Training and gating speed\" (two `train_cycle` calls, fresh MLflow store), then the design of "
        "the last cycle as pipeline.design runs it on the marts schema. Peak RSS: the benchmark's own process "
        "during the phase (psutil, 0.5 s), which still holds what the world build left.",
        "",
        "| customers | training, first cycle (s) | training, second cycle (s) | peak RSS, training (MB) | scoring (s) "
        "| send hours (s) | `design_campaign` (s) | export (s) | design, total (s) | peak RSS, design (MB) "
        "| customers scored | plan rows |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        d, (first, second) = r["design"], r["train_seconds"]
        lines.append(
            f"| {r['customers']:,} | {first:.1f} | {second:.1f} | {r['train_peak_rss_mb']:,.0f} | {d['score_s']:.1f} "
            f"| {d['send_hours_s']:.1f} | {d['design_campaign_s']:.1f} | {d['export_s']:.1f} | {d['design_total_s']:.1f} "
            f"| {r['design_peak_rss_mb']:,.0f} | {d['customers_scored']:,} | {d['plan_rows']:,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/mlw100k"))
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--learner", choices=["t", "x"], default="x")
    parser.add_argument("--design", action="store_true", help="also time the design step (pipeline.design's steps)")
    parser.add_argument("--jsonl", type=Path, help="append the training and design timings to this file")
    parser.add_argument("--table-from", type=Path, help="compose issue 26's training and design table, run nothing")
    parser.add_argument("--write", action="store_true", help="with --table-from, replace its table in bench/RESULTS.md")
    args = parser.parse_args()
    if args.table_from:
        from bench.results import write_section

        text = scale_markdown([json.loads(x) for x in args.table_from.read_text().splitlines() if x.strip()])
        sys.stdout.write(text)
        if args.write:
            write_section(text, TRAINING_SUBSECTION, within=SCALE_SECTION)
        return

    from bench.dbt_speed import PeakSampler
    from bench.results import head_commit
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
    record: dict = {"customers": args.customers, "argv": sys.argv[1:], "commit": head_commit(),
                    "started": datetime.now(UTC).isoformat(timespec="minutes"), "train_seconds": [],
                    "train_rss_before_mb": own_rss_mb()}

    def own() -> list[int]:
        return [os.getpid()]

    with PeakSampler(own) as train_peak:
        for cycle in (args.cycles - 2, args.cycles - 1):
            cycle_id = settings.cycle_start(cycle).isoformat()
            report = train_cycle(settings, cycle_id, {"dbt_invocation_id": "bench"}, config=config)
            record["train_seconds"].append(report.seconds)
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
    record["train_peak_rss_mb"] = train_peak.peak_mb
    if args.design:
        record["design_rss_before_mb"] = own_rss_mb()
        with PeakSampler(own) as design_peak:
            record["design"] = design_timing(settings, settings.cycle_key(args.cycles - 1))
        record["design_peak_rss_mb"] = design_peak.peak_mb
        results["design"] = record["design"]
        sys.stdout.write(json.dumps(record, default=float) + "\n")
        if args.jsonl:
            with args.jsonl.open("a") as f:
                f.write(json.dumps(record, default=float) + "\n")
    results["uplift_vs_oracle"] = uplift_vs_oracle(settings)
    sys.stdout.write(json.dumps(results, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
