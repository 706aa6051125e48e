"""What each exploration design costs the next plan, one step, on the evidence a home's loop measured (issue 5).

    .venv/bin/python bench/exploration.py --home H --customers 100000 --budget 5000 --cycles 2,3,4,5,6 --write

For each cycle of a home whose loop has run (a loop_value platform world, or ``make demo``'s), rebuild
the scorer's input as of the cycle's start from the evidence measured before it (the levels and the
channel preference's weight of ``ml.score.prior_with_preference``), design the campaign with each
exploration design and value each plan by the simulator's truth against the oracle plan: Thompson
sampling with the posterior's standard errors scaled by each ``--scales`` value, and epsilon-greedy (the
posterior means); epsilon is the settings' in every design.
The same designs on each action's true average effect (the platform's standard errors kept) show what
the exploration alone costs. Thompson plans are averaged over ``--seeds`` design seeds. One step only:
what the exploration buys, better evidence for the cycles after, only the closed loop shows
(``bench/loop_value.py --thompson-scale``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import cycle_inputs, planned_profit, ratio_table, replay_home, replay_parser, true_averages  # noqa: E402
from bench.results import home_world, write_section  # noqa: E402


def main() -> None:
    parser = replay_parser(__doc__, "2,3,4,5,6")
    parser.add_argument("--scales", default="1,0.5,0.25", help="Thompson standard-error scales to compare")
    args = parser.parse_args()

    from ml.score import above_baseline, prior_with_preference, score_frame, uplift_prior

    settings, champions = replay_home(args)
    # The uplift champion is left out as in bench/uplift_prior.py: its ranking weight is near 0, so the
    # prior's levels (and their standard errors, which Thompson draws from) decide.
    champions.pop("uplift", None)
    scales = [float(s) for s in args.scales.split(",")]
    rows: list[dict[str, object]] = []
    for cycle in (int(c) for c in args.cycles.split(",")):
        c = cycle_inputs(settings, cycle)
        row = c.row()
        above = above_baseline(c.evidence)
        measured, weight = uplift_prior(c.evidence, above=above), 0.0
        if settings.channel_preference:  # the levels and the preference's weight as the scorer forms them
            measured, weight = prior_with_preference(c.evidence, above, measured)
        for name, prior in (("measured", measured), ("true averages", true_averages(measured, c))):
            scores = score_frame(c.frame, champions, fallback_rate=0.0, prior=prior, preference_weight=weight)
            for scale in scales:
                row[f"{name}, thompson x{scale:g}"] = planned_profit(settings, c, scores, args.seeds,
                                                                     exploration="thompson", thompson_scale=scale)
            row[f"{name}, epsilon-greedy"] = planned_profit(settings, c, scores, 1, exploration="epsilon")
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{k} {v:,.1f}" for k, v in row.items() if k not in ("cycle", "cycle_id")))  # noqa: T201

    text = "\n".join([
        f"Command: `.venv/bin/python bench/exploration.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles} --scales {args.scales}{f' --budget {args.budget:g}' if args.budget is not None else ''} --write`  ",
        *home_world(settings, args.customers, f"; epsilon {settings.epsilon:g}; Thompson plans: mean of {args.seeds} design seeds"),
        "",
        *ratio_table(rows),
        "",
        "Incremental profit by the truth (ratio to the oracle) of the next plan designed from the evidence measured "
        "before each cycle (measured: ml.score.uplift_prior) or from each action's true average effect, with "
        "Thompson sampling at each scale of the standard errors, and epsilon-greedy.",
    ])
    print(text)  # noqa: T201
    if args.write:
        write_section(text, "## Exploration: what a design costs the next plan (issue 5)")


if __name__ == "__main__":
    main()
