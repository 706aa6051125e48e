"""What measuring each action's level per unit of channel preference is worth to the next plan (issue 5).

    .venv/bin/python bench/preference_level.py --home H --customers 100000 --budget 5000 --cycles 2,3,4,5,6 --write

The scorer multiplies each action's level by each customer's preference factor ``1 + w * (preference - 1)``
(``ml/engagement.py``). Once the plans read the preference they send each action to the customers who prefer
its channel, so the plain mean effect of its treated rows is the level times their mean factor, above the
average customer's, and the scorer would count the preference twice. For each cycle of a home whose loop
has run, rebuild the scorer's input from the evidence measured before it with the levels as treated-row
means (``ml.score.uplift_prior`` without a factor, the platform's until 2026-11-30) and per unit of factor
(``ml.score.prior_with_preference``, the scorer's now), each with the weight it forms; design the campaign
with Thompson sampling (``--seeds`` design seeds) and epsilon-greedy and value each plan by the truth. The
table's text also gives each estimator's error against each action's true average effect over the scored
members (mean absolute, relative to the true mean), and the same designs on the true averages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import cycle_inputs, planned_profit, ratio_table, replay_home, replay_parser, true_averages  # noqa: E402
from bench.results import home_world, write_section  # noqa: E402


def main() -> None:
    parser = replay_parser(__doc__, "2,3,4,5,6")
    parser.add_argument("--thompson-scale", type=float, default=None, help="Thompson's scale (default: the settings')")
    args = parser.parse_args()

    from ml import engagement
    from ml.score import above_baseline, prior_with_preference, score_frame, uplift_prior

    settings, champions = replay_home(args, thompson_scale=args.thompson_scale)
    champions.pop("uplift", None)  # as in bench/uplift_prior.py: the prior's levels decide
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    for cycle in (int(c) for c in args.cycles.split(",")):
        c = cycle_inputs(settings, cycle)
        row = c.row()
        above = above_baseline(c.evidence)
        plain = uplift_prior(c.evidence, above=above)
        plain_weight = engagement.preference_weight(c.evidence, above, plain["uplift"])[0]
        per_unit, weight = prior_with_preference(c.evidence, above, plain)
        averages = true_averages(plain, c)
        truth = averages["uplift"]
        errors = []
        for name, prior, w in (("treated-row means", plain, plain_weight), ("per unit of factor", per_unit, weight),
                               ("true averages", averages, weight)):
            scores = score_frame(c.frame, champions, fallback_rate=0.0, prior=prior, preference_weight=w)
            row[f"{name}, thompson"] = planned_profit(settings, c, scores, args.seeds, exploration="thompson")
            row[f"{name}, epsilon-greedy"] = planned_profit(settings, c, scores, 1, exploration="epsilon")
            if name != "true averages":
                error = float(np.mean(np.abs(prior["uplift"] - truth)) / np.mean(np.abs(truth)))
                errors.append(f"{name} {error:.2f} (weight {w:.2f})")
        notes.append(f"cycle {cycle}: " + ", ".join(errors))
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{k} {v:,.1f}" for k, v in row.items() if k not in ("cycle", "cycle_id")))  # noqa: T201
        print(notes[-1])  # noqa: T201

    text = "\n".join([
        f"Command: `.venv/bin/python bench/preference_level.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles}{f' --budget {args.budget:g}' if args.budget is not None else ''}"
        f"{f' --thompson-scale {args.thompson_scale:g}' if args.thompson_scale is not None else ''} --write`  ",
        *home_world(settings, args.customers, f"; epsilon {settings.epsilon:g}; Thompson scale {settings.thompson_scale:g}; "
                    f"Thompson plans: mean of {args.seeds} design seeds"),
        "",
        *ratio_table(rows),
        "",
        "Incremental profit by the truth (ratio to the oracle) of the next plan designed from the evidence measured "
        "before each cycle, its levels the treated rows' mean effects or the effects per unit of preference factor, "
        "each with the weight it forms, and on each action's true average over the scored members (at the per-unit "
        "weight). Each estimator's mean absolute error against the true averages, relative to their mean absolute "
        "value: " + "; ".join(notes) + ".",
    ])
    print(text)  # noqa: T201
    if args.write:
        write_section(text, "## Preference level: each action's effect per unit of channel preference (issue 5)")


if __name__ == "__main__":
    main()
