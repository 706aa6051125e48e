"""How much of the oracle's profit any model of the warehouse's features could capture (issue 5).

    .venv/bin/python bench/uplift_ceiling.py --home var --customers 20000 --cycles 3,4,5 --write

The oracle plans with every customer's true uplift, which depends on latent traits the retailer never
observes. This benchmark bounds what learning can achieve: for each cycle it fits, on the simulator's
truth itself, the best function of the platform's features (:data:`ml.features.FEATURES`) to each
action's true uplift (LightGBM, 2-fold cross-fitting by customer, so each prediction is out of sample),
hands those predictions to the same optimiser as the oracle (same budget and rules, true baseline
purchase probability and spend, no exploration) and values the plan by the truth. An uplift model
trained on outcomes (a 1-2 % conversion, a few thousand assignments per action) can only do worse.
Beside it: the campaign the loop executed, and a plan from each action's measured average effect alone.

Needs a home where cycles were designed and simulated (``make demo``, or a loop_value platform world).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import append_section, machine  # noqa: E402


def cross_fitted_truth(frame: pd.DataFrame, columns: list[str], targets: list[str], seed: int = 0) -> pd.DataFrame:
    """Out-of-fold predictions of each target from ``columns``: E[true uplift | features], estimated."""
    from lightgbm import LGBMRegressor

    fold = np.random.default_rng(seed).integers(0, 2, len(frame))
    x = frame[columns].astype(float)
    out = pd.DataFrame(index=frame.index, columns=targets, dtype=float)
    for target in targets:
        y = frame[target].astype(float)
        for k in (0, 1):
            model = LGBMRegressor(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=50,
                                  random_state=seed, verbose=-1)
            model.fit(x[fold != k], y[fold != k])
            out.loc[fold == k, target] = model.predict(x[fold == k])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--cycles", default="3,4,5", help="designed cycles to evaluate (>= 2: cycle 1 has no measured prior)")
    parser.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()

    from campaign_loop.actions import ACTIONS
    from campaign_loop.config import cycle_id, load_settings
    from ml import features
    from ml.score import uplift_prior
    from sim import oracle

    settings = load_settings(home=args.home, customers=args.customers)
    uplift_columns = [f"uplift__{a.name}" for a in ACTIONS]
    rows: list[dict[str, float | int | str]] = []
    for cycle in (int(c) for c in args.cycles.split(",")):
        as_of = settings.cycle_start(cycle)
        value = oracle.evaluate_cycle(settings, cycle)
        effects = pd.read_parquet(settings.truth_dir / "effects" / f"{cycle_id(as_of)}.parquet")
        truth = effects.dropna(subset=["member_id"]).drop_duplicates("member_id")
        scored = features.scoring_frame(settings.warehouse_path, as_of=as_of)
        scored = scored[scored["member_id"].notna()].drop_duplicates("member_id")
        joined = scored.merge(truth[["member_id", *uplift_columns]], on="member_id", how="inner")

        def plan_profit(uplift: pd.DataFrame, cycle: int = cycle, effects: pd.DataFrame = effects) -> float:
            customers = oracle.oracle_customers(settings, cycle, effects)
            lookup = uplift.reindex(customers["member_id"])
            for column in uplift_columns:
                customers[column] = np.nan_to_num(lookup[column].to_numpy(float))
            plan = oracle.oracle_plan(settings, cycle, customers).rows
            treated = plan[plan["arm"] == "treatment"]
            return oracle.plan_value(effects, treated["member_id"],
                                     treated["offer"].astype(str) + "__" + treated["channel"].astype(str))

        learnt = cross_fitted_truth(joined, list(features.FEATURES), uplift_columns)
        learnt.index = joined["member_id"].to_numpy()
        correlation = float(np.mean([np.corrcoef(learnt[c], joined[c].astype(float))[0, 1] for c in uplift_columns]))
        # What the loop knew when it designed this cycle: every assignment measured before it.
        prior = uplift_prior(features.uplift_frame(settings.warehouse_path, max_as_of=settings.cycle_start(cycle - 1)))
        flat = pd.DataFrame({c: float(prior.loc[c, "uplift"]) for c in uplift_columns}, index=truth["member_id"].to_numpy())
        oracle_profit = value.oracle_incremental_profit
        rows.append({
            "cycle": cycle, "cycle_id": value.cycle_id, "oracle": oracle_profit,
            "ceiling": plan_profit(learnt), "ceiling_correlation": correlation,
            "measured_average_only": plan_profit(flat), "executed": value.incremental_profit,
        })
        print(f"cycle {cycle}: oracle {oracle_profit:,.1f}, ceiling {rows[-1]['ceiling']:,.1f} "  # noqa: T201
              f"(corr {correlation:.3f}), averages only {rows[-1]['measured_average_only']:,.1f}, "
              f"executed {value.incremental_profit:,.1f}")

    def cell(profit: float, oracle_profit: float) -> str:
        return f"{profit:,.1f} ({profit / oracle_profit:.2f})"

    table = [
        "| cycle | oracle | ceiling from features | its mean corr. with true uplift | measured averages only | executed by the loop |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {r['cycle']} ({r['cycle_id']}) | {r['oracle']:,.1f} | {cell(r['ceiling'], r['oracle'])} | "
          f"{r['ceiling_correlation']:.3f} | {cell(r['measured_average_only'], r['oracle'])} | "
          f"{cell(r['executed'], r['oracle'])} |" for r in rows),
    ]
    text = "\n".join([
        f"Command: `.venv/bin/python bench/uplift_ceiling.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles} --write`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; world: the home's (seed {settings.seed}, "
        f"{args.customers:,} customers, budget {settings.budget:,.0f})",
        "",
        *table,
        "",
        "Incremental profit by the truth (ratio to the oracle). Ceiling: the oracle's optimiser on the best "
        "out-of-fold fit of the true uplift from the platform's features (true baseline and spend, no "
        "exploration); no model trained on outcomes can beat it.",
    ])
    print(text)  # noqa: T201
    if args.write:
        append_section(text, "## Uplift ceiling: what the features allow (issue 5)")


if __name__ == "__main__":
    main()
