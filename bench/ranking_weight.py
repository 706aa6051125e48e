"""What an uplift champion's ranking between customers is worth to the next plan (issue 5).

    .venv/bin/python bench/ranking_weight.py --home H --customers 100000 --budget 5000 --cycles 4,6 --weights 0,0.05,0.1,0.26 --write

The scorer re-centres the uplift champion's predictions of each action on the action's measured level and
keeps ``ranking_weight`` of their deviations (``ml.score.calibrate_uplift``). For each cycle of a home whose
loop has run, rebuild the scorer's input with the home's current champions (uplift included) and the levels
and preference weight measured before the cycle, design the campaign at each ``--weights`` value in place of
the champion's own, and value each plan by the truth. The text also gives the champion's calibration slope
on its holdout assignments (the statistic the weight is formed from) and the correlation of its predictions
with each member's true uplift at the cycle's start, which no platform statistic can see.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import cycle_inputs, planned_profit, ratio_table, replay_home, replay_parser  # noqa: E402
from bench.results import home_world, write_section  # noqa: E402


def main() -> None:
    parser = replay_parser(__doc__, "4,6", seeds=2)
    parser.add_argument("--weights", default="0,0.05,0.1,0.26", help="ranking weights to design with")
    args = parser.parse_args()

    from ml import evaluate, features
    from ml.score import above_baseline, prior_with_preference, score_frame, uplift_prior
    from ml.train import TrainConfig
    from sim import oracle

    settings, champions = replay_home(args)
    if "uplift" not in champions:
        raise SystemExit(f"{args.home}: no uplift champion to replay")
    model = champions["uplift"][0]
    own_weight = float(model.ranking_weight)

    # The statistic the weight is formed from: the champion's calibration slope on its holdout assignments.
    assignments = features.uplift_frame(settings.warehouse_path)
    holdout = assignments[np.asarray(features.evaluation_mask(assignments["customer_id"], TrainConfig().evaluation_share))]
    covered = holdout["action"].isin(model.covered_actions).to_numpy()
    score = np.where(covered, np.nan_to_num(model.effect(holdout, "conversion")), 0.0)
    slope, se = evaluate.uplift_calibration(score, holdout["treatment"].to_numpy(), holdout["is_converted"].to_numpy())

    rows: list[dict[str, object]] = []
    notes: list[str] = []
    for cycle in (int(c) for c in args.cycles.split(",")):
        c = cycle_inputs(settings, cycle)
        row = c.row()
        above = above_baseline(c.evidence)
        prior, weight = prior_with_preference(c.evidence, above, uplift_prior(c.evidence, above=above))
        for w in (float(x) for x in args.weights.split(",")):
            model.ranking_weight = w
            scores = score_frame(c.frame, champions, fallback_rate=0.0, prior=prior, preference_weight=weight)
            row[f"ranking weight {w:g}"] = planned_profit(settings, c, scores, args.seeds)
        members = oracle.by_member(c.effects)
        predicted = model.predict(c.frame)
        correlations = []
        for column in (name for name in predicted.columns if name.startswith("uplift__")):
            truth = members[column].reindex(c.frame["member_id"]).to_numpy(float)
            guess = predicted[column].to_numpy(float)
            ok = np.isfinite(truth) & np.isfinite(guess)
            if ok.sum() > 2 and np.ptp(guess[ok]) > 0:
                correlations.append(np.corrcoef(guess[ok], truth[ok])[0, 1])
        notes.append(f"cycle {cycle}: {np.min(correlations):.3f} to {np.max(correlations):.3f} over {len(correlations)} actions")
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{k} {v:,.1f}" for k, v in row.items() if k not in ("cycle", "cycle_id")))  # noqa: T201
        print(notes[-1])  # noqa: T201

    text = "\n".join([
        f"Command: `.venv/bin/python bench/ranking_weight.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles} --weights {args.weights}{f' --budget {args.budget:g}' if args.budget is not None else ''} --write`  ",
        *home_world(settings, args.customers, f"; Thompson scale {settings.thompson_scale:g}; "
                    f"Thompson plans: mean of {args.seeds} design seeds"),
        "",
        *ratio_table(rows),
        "",
        "Incremental profit by the truth (ratio to the oracle) of the next plan designed with the home's uplift "
        f"champion (version {champions['uplift'][1]}, its own ranking weight {own_weight:.3f}) at each ranking weight. "
        f"Its calibration slope on its holdout assignments: {slope:.2f} +- {se:.2f}. Correlation of its predictions "
        "with the members' true uplift, per action: " + "; ".join(notes) + ".",
    ])
    print(text)  # noqa: T201
    if args.write:
        write_section(text, "## Uplift ranking: what the champion's ranking between customers is worth (issue 5)")


if __name__ == "__main__":
    main()
