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

``--engagement`` also fits the truth from the features plus each customer's campaign history per channel
(sends, click rate, opens, redemptions, unsubscribes), to see whether the marts lack a signal.

Needs a home where cycles were designed and simulated (``make demo``, or a loop_value platform world).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import home_world, write_section  # noqa: E402

# Campaign history per customer before the cycle: candidate features the marts do not carry yet.
ENGAGEMENT_SQL = """
select customer_id, count(*) as sends_all, sum(cast(is_opened as integer)) as opens_all,
       sum(cast(is_redeemed as integer)) as redemptions, sum(cast(is_unsubscribed as integer)) as unsubscribes,
       {per_channel}
from marts.fct_campaign_sends where sent_at < ? group by customer_id
"""
CHANNEL_SQL = ("count(*) filter (where channel = '{c}') as sends_{c}, "
               "coalesce(sum(cast(is_clicked as integer)) filter (where channel = '{c}'), 0) as clicks_{c}")


def engagement(warehouse: Path, before: object, channels: tuple[str, ...]) -> pd.DataFrame:
    import duckdb

    sql = ENGAGEMENT_SQL.format(per_channel=", ".join(CHANNEL_SQL.format(c=c) for c in channels))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.execute(sql, [before]).df()
    for c in channels:
        # Smoothed towards a typical rate, so one send is not a 0 % or 100 % click rate.
        frame[f"click_rate_{c}"] = (frame[f"clicks_{c}"] + 0.5) / (frame[f"sends_{c}"] + 5)
    frame["open_rate"] = (frame["opens_all"] + 1) / (frame["sends_all"] + 5)
    return frame


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
    parser.add_argument("--engagement", action="store_true",
                        help="also fit the truth with per-channel campaign history added to the features")
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    args = parser.parse_args()

    from campaign_loop.actions import ACTIONS, CHANNELS
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

        def mean_correlation(learnt: pd.DataFrame, joined: pd.DataFrame = joined) -> float:
            return float(np.mean([np.corrcoef(learnt[c], joined[c].astype(float))[0, 1] for c in uplift_columns]))

        learnt = cross_fitted_truth(joined, list(features.FEATURES), uplift_columns)
        correlation = mean_correlation(learnt)
        learnt.index = joined["member_id"].to_numpy()
        with_engagement = math.nan
        if args.engagement:
            history = engagement(settings.warehouse_path, as_of, CHANNELS)
            wide = joined.merge(history, on="customer_id", how="left")
            extra = [c for c in history.columns if c != "customer_id"]
            with_engagement = mean_correlation(cross_fitted_truth(wide, [*features.FEATURES, *extra], uplift_columns))
        # What the loop knew when it designed this cycle: every assignment measured before it.
        prior = uplift_prior(features.uplift_frame(settings.warehouse_path, max_as_of=settings.cycle_start(cycle - 1)))
        flat = pd.DataFrame({c: float(prior.loc[c, "uplift"]) for c in uplift_columns}, index=truth["member_id"].to_numpy())
        oracle_profit = value.oracle_incremental_profit
        rows.append({
            "cycle": cycle, "cycle_id": value.cycle_id, "oracle": oracle_profit,
            "ceiling": plan_profit(learnt), "ceiling_correlation": correlation,
            "correlation_with_engagement": with_engagement,
            "measured_average_only": plan_profit(flat), "executed": value.incremental_profit,
        })
        print(f"cycle {cycle}: oracle {oracle_profit:,.1f}, ceiling {rows[-1]['ceiling']:,.1f} "  # noqa: T201
              f"(corr {correlation:.3f}; with engagement {with_engagement:.3f}), averages only {rows[-1]['measured_average_only']:,.1f}, "
              f"executed {value.incremental_profit:,.1f}")

    def cell(profit: float, oracle_profit: float) -> str:
        return f"{profit:,.1f} ({profit / oracle_profit:.2f})"

    table = [
        "| cycle | oracle | ceiling from features | its mean corr. with true uplift | the same with engagement "
        "history | measured averages only | executed by the loop |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {r['cycle']} ({r['cycle_id']}) | {r['oracle']:,.1f} | {cell(r['ceiling'], r['oracle'])} | "
          f"{r['ceiling_correlation']:.3f} | {r['correlation_with_engagement']:.3f} | "
          f"{cell(r['measured_average_only'], r['oracle'])} | "
          f"{cell(r['executed'], r['oracle'])} |" for r in rows),
    ]
    text = "\n".join([
        f"Command: `.venv/bin/python bench/uplift_ceiling.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles}{' --engagement' if args.engagement else ''} --write`  ",
        *home_world(settings, args.customers),
        "",
        *table,
        "",
        "Incremental profit by the truth (ratio to the oracle). Ceiling: the oracle's optimiser on the best "
        "out-of-fold fit of the true uplift from the platform's features (true baseline and spend, no "
        "exploration); no model trained on outcomes can beat it.",
    ])
    print(text)  # noqa: T201
    if args.write:
        write_section(text, "## Uplift ceiling: what the features allow (issue 5)")


if __name__ == "__main__":
    main()
