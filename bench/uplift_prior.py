"""What the measured per-action effects are worth to the next plan: the platform's prior against the estimators it replaced or beat (issue 5).

    .venv/bin/python bench/uplift_prior.py --home H --customers 100000 --budget 5000 --cycles 1,2,3,4,5,6 --write

For each cycle of a home whose loop has run (a loop_value platform world, or ``make demo``'s), rebuild
the scorer's input as of the cycle's start from the evidence measured before it with each
estimator of the actions' effects: ``ml.score.uplift_prior`` (every holdout, adjusted for features, as
each action's control; shrunk towards the pooled effect with 2,000 pseudo-assignments), the same
shrinkage on each action's own holdout only (the platform's until 2026-11-29) and empirical-Bayes
shrinkage of the own-holdout effects; design the campaign with each (same champions for p_buy and
spend, same seeds) and value each plan by the simulator's truth against the
oracle plan. The champions are the home's current ones (trained on all cycles), the same for every
prior; the uplift champion is left out because its ranking weight (0.0002-0.08 in these worlds) leaves
the level, which is what the priors set, to decide. One step only: the closed loop, where each plan
also decides the next cycle's evidence, is ``bench/loop_value.py``.

``--truth`` adds two references that read the simulator's truth: the platform's estimator on the true
purchases of the same assignments (no purchase lost to an unlinked receipt, so no linkage bias), and
each action's true average effect over the scored members (the platform's standard errors kept for
Thompson), also designed without exploration (epsilon 0).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import cycle_inputs, planned_profit, ratio_table, replay_home, replay_parser, true_averages  # noqa: E402
from bench.results import home_world, write_section  # noqa: E402

if TYPE_CHECKING:
    from campaign_loop.config import Settings


def _own_holdout_effects(assignments: pd.DataFrame) -> pd.DataFrame:
    """Each action's treated minus control conversion on its own arms, with its standard error and assignments."""
    from campaign_loop.actions import ACTIONS
    from ml.score import randomised_effect

    own = pd.DataFrame([randomised_effect(assignments, assignments["action"] == a.name) for a in ACTIONS],
                       index=[f"uplift__{a.name}" for a in ACTIONS], columns=["effect", "se"]).replace(np.inf, np.nan)
    own["n"] = [int((assignments["action"] == a.name).sum()) for a in ACTIONS]
    return own


def own_holdout_prior(assignments: pd.DataFrame) -> pd.DataFrame:
    """The platform's prior until 2026-11-29: each action's own contrast, shrunk like ``uplift_prior``."""
    from ml.score import PRIOR_STRENGTH, randomised_effect

    own = _own_holdout_effects(assignments)
    pooled, pooled_se = randomised_effect(assignments, pd.Series(True, index=assignments.index))
    w = np.where(own["effect"].notna(), own["n"] / (own["n"] + PRIOR_STRENGTH), 0.0)
    uplift = w * own["effect"].fillna(0.0) + (1 - w) * pooled
    sd = np.sqrt((w * own["se"].fillna(0.0)) ** 2 + ((1 - w) * pooled_se) ** 2)
    return pd.DataFrame({"uplift": uplift, "sd": sd, "n": own["n"]}, index=own.index)


def empirical_bayes_prior(assignments: pd.DataFrame) -> pd.DataFrame:
    """The candidate: each action keeps tau^2 / (tau^2 + se^2) of its own effect, the rest is the random-effects
    mean of all actions; tau from a DerSimonian-Laird meta-analysis of the actions' effects (by hand: a
    few lines, where statsmodels' combine_effects would be a new dependency). Same columns as uplift_prior."""
    own = _own_holdout_effects(assignments)
    measured = own.dropna()
    e, v = measured["effect"].to_numpy(), measured["se"].to_numpy() ** 2
    w = 1.0 / v
    q = float((w * (e - (w * e).sum() / w.sum()) ** 2).sum())
    tau2 = max(0.0, (q - (len(e) - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    w_re = 1.0 / (v + tau2)
    mean, mean_var = float((w_re * e).sum() / w_re.sum()), float(1.0 / w_re.sum())
    keep = tau2 / (tau2 + own["se"] ** 2)
    tried = own["effect"].notna()
    uplift = np.where(tried, keep * own["effect"] + (1 - keep) * mean, mean)
    variance = np.where(tried, keep * own["se"] ** 2 + (1 - keep) ** 2 * mean_var, tau2 + mean_var)
    return pd.DataFrame({"uplift": uplift, "sd": np.sqrt(variance), "n": own["n"]}, index=own.index)


def _true_purchases(settings: Settings) -> dict[tuple[str, str], bool]:
    """(member_id, campaign_id) -> whether the assigned member really bought in the campaign's window."""
    purchased: dict[tuple[str, str], bool] = {}
    for path in sorted((settings.truth_dir / "outcomes").glob("*.parquet")):
        outcomes = pd.read_parquet(path, columns=["member_id", "campaign_id", "purchased"]).dropna()
        purchased.update(zip(zip(outcomes["member_id"], outcomes["campaign_id"], strict=True), outcomes["purchased"],
                             strict=True))
    return purchased


def main() -> None:
    parser = replay_parser(__doc__, "1,2,3,4,5,6")
    parser.add_argument("--truth", action="store_true", help="add the references that read the truth (see above)")
    args = parser.parse_args()

    from ml.score import score_frame, uplift_prior

    settings, champions = replay_home(args)
    champions.pop("uplift", None)
    estimators = {"platform (uplift_prior)": uplift_prior, "own holdout only": own_holdout_prior,
                  "empirical Bayes": empirical_bayes_prior}
    modes = {"thompson": ("thompson", settings.epsilon), "epsilon": ("epsilon", settings.epsilon)}
    purchased = _true_purchases(settings) if args.truth else {}
    rows: list[dict[str, object]] = []
    for cycle in (int(c) for c in args.cycles.split(",")):
        c = cycle_inputs(settings, cycle)
        row = c.row()
        priors = {name: (estimate(c.evidence), modes) for name, estimate in estimators.items()}
        if args.truth:
            assignments = zip(c.evidence["send_member_id"], c.evidence["campaign_id"], strict=True)
            on_truth = c.evidence.assign(is_converted=[
                int(purchased.get(k, y)) for k, y in zip(assignments, c.evidence["is_converted"], strict=True)])
            priors["true purchases"] = (uplift_prior(on_truth), modes)
            priors["true averages"] = (true_averages(priors["platform (uplift_prior)"][0], c),
                                       {**modes, "epsilon 0": ("epsilon", 0.0)})
        for name, (prior, its_modes) in priors.items():
            scores = score_frame(c.frame, champions, fallback_rate=0.0, prior=prior)
            for mode, (exploration, epsilon) in its_modes.items():
                seeds = args.seeds if exploration == "thompson" else 1
                row[f"{name}, {mode}"] = planned_profit(settings, c, scores, seeds, exploration=exploration, epsilon=epsilon)
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{k} {v:,.1f}" for k, v in row.items() if k not in ("cycle", "cycle_id")))  # noqa: T201

    table = ratio_table(rows)
    text = "\n".join([
        f"Command: `.venv/bin/python bench/uplift_prior.py --home {args.home} --customers {args.customers} "
        f"--cycles {args.cycles}{f' --budget {args.budget:g}' if args.budget is not None else ''}"
        f"{' --truth' if args.truth else ''} --write`  ",
        *home_world(settings, args.customers, f"; Thompson plans: mean of {args.seeds} design seeds"),
        "",
        *table,
        "",
        "Incremental profit by the truth (ratio to the oracle) of the next plan designed from the evidence "
        f"measured before each cycle, with each prior and each exploration mode (epsilon {settings.epsilon:g} "
        "unless the column says otherwise).",
    ])
    print(text)  # noqa: T201
    if args.write:
        write_section(text, "## Uplift prior: what the measured effects are worth to the next plan (issue 5)")


if __name__ == "__main__":
    main()
