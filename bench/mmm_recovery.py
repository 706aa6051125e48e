"""Does the media mix model recover the paid channels' true ROAS? (issue 27)

    .venv/bin/python bench/mmm_recovery.py --customers 10000 --seeds 11 12 13 [--history-weeks 26]
        [--inits jitter+adapt_diag jitter+adapt_full] [--write]

Per seed: simulates cycle 0 of a ``media_effect`` world (sim/media.py: its history of spend and the orders
it caused), fits ``ml.mmm`` on the newest ``MediaMixConfig.days`` days of what ``kpi_media_daily`` holds
(``sim.oracle.media_daily_rows``) once per NUTS initialisation in ``--inits`` (side by side, same data),
and sets each channel's ROAS with its 94 % interval beside the true ROAS over the same days
(``sim.oracle.media_truth``). ``--write`` makes the table the body of bench/RESULTS.md's section
"Media mix recovery".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADING = "## Media mix recovery: ROAS against the simulator's truth (issue 27)"
INTRO = """\
Per seed: cycle 0 of a `media_effect` world (its history of spend and of the orders it caused), `ml.mmm`
fitted on the newest days of what `kpi_media_daily` holds, once per NUTS initialisation on the same data
(`jitter+adapt_diag` is PyMC's default, a diagonal mass matrix; `jitter+adapt_full` a dense one); each
channel's ROAS with its 94 % interval against the true ROAS over the same days (`sim.oracle.media_truth`), and
the recommended daily spend (same total, +-50 %) valued on the true curves. Seed 11 is the world
`tests/ml/test_mmm.py` and the model's choices (prior, season) were tuned on; the others were not. The story
of the prior and the season is decision 0022."""


def one_seed(customers: int, seed: int, history_weeks: int, days: int, yearly: int,
             inits: list[str]) -> list[dict[str, object]]:
    from campaign_loop.config import Settings
    from ml import mmm
    from sim.oracle import media_daily_rows, media_truth
    from sim.period import simulate_period

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), customers=customers, seed=seed, history_weeks=history_weeks,
                            media_effect=True, newsletter_history=0, dirt=0.0)
        simulate_period(settings, 0)
        frame = mmm.media_frame(media_daily_rows(settings), days=days)
        truth = media_truth(settings, frame[mmm.DATE].min().date(), frame[mmm.DATE].max().date()).set_index("channel")
        return [row for init in inits for row in _fit_rows(frame, truth, seed, init, days, yearly)]


def _fit_rows(frame: pd.DataFrame, truth: pd.DataFrame, seed: int, init: str, days: int,
              yearly: int) -> list[dict[str, object]]:
    from ml import mmm

    started = time.perf_counter()
    fit = mmm.fit_media_mix(frame, config=mmm.MediaMixConfig(days=days, yearly_seasonality=yearly, init=init))
    wall = time.perf_counter() - started
    summary = mmm.channel_summary(fit).set_index("channel")
    diagnostics = mmm.diagnostics(fit)
    depth = float(fit.idata.sample_stats["tree_depth"].mean())
    current = fit.frame[fit.channels].tail(28).mean()
    plan = mmm.recommend_budgets(mmm.ResponseCurves.from_fit(fit), current).set_index("channel")
    reference = truth["reference_spend"]

    def true_revenue(spend: object) -> float:
        x = truth["lam"] * spend / reference
        return float((truth["beta"] * reference * (1 - np.exp(-x)) / (1 + np.exp(-x))).sum())

    gain = true_revenue(plan["recommended_daily_spend"]) - true_revenue(plan["current_daily_spend"])
    return [{"seed": seed, "init": init, "channel": c, "true_roas": truth.loc[c, "roas"], "roas": summary.loc[c, "roas"],
             "low": summary.loc[c, "roas_low"], "high": summary.loc[c, "roas_high"],
             "covered": summary.loc[c, "roas_low"] <= truth.loc[c, "roas"] <= summary.loc[c, "roas_high"],
             "true_alpha": truth.loc[c, "alpha"], "alpha": summary.loc[c, "adstock_alpha"],
             "current": plan.loc[c, "current_daily_spend"], "recommended": plan.loc[c, "recommended_daily_spend"],
             "true_gain": gain, "r_hat": diagnostics["max_r_hat"], "ess": diagnostics["min_ess_bulk"],
             "depth": depth, "wall_s": wall} for c in summary.index]


def table(rows: list[dict[str, object]], customers: int, days: int, history_weeks: int, inits: list[str]) -> str:
    from bench.results import head_commit, machine
    from ml.mmm import MediaMixConfig

    config = MediaMixConfig()
    seeds = " ".join(str(s) for s in sorted({r["seed"] for r in rows}))
    lines = [
        *INTRO.splitlines(),
        "",
        f"Command: `.venv/bin/python bench/mmm_recovery.py --customers {customers} --seeds {seeds} "
        f"--history-weeks {history_weeks} --days {days} --inits {' '.join(inits)} --write`  ",
        f"Commit: {head_commit()}; machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"{days} days, {config.chains} chains x ({config.tune} tune + {config.draws} draws), one core",
        "",
        "| init | channel-seeds covered | median fit wall s | mean tree depth | worst r-hat | smallest bulk ESS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for init in inits:
        mine = [r for r in rows if r["init"] == init]
        fits = {r["seed"]: r for r in mine}.values()  # one row per fit for the fit-level numbers
        lines.append(f"| {init} | {sum(bool(r['covered']) for r in mine)} of {len(mine)} "
                     f"| {np.median([r['wall_s'] for r in fits]):.0f} | {np.mean([r['depth'] for r in fits]):.1f} "
                     f"| {max(r['r_hat'] for r in fits):.2f} | {min(r['ess'] for r in fits):.0f} |")
    lines += [
        "",
        "| seed | init | channel | true ROAS | recovered ROAS [94 %] | covered | true alpha | alpha | daily spend now -> "
        "recommended | true revenue gain a day (all channels) | max r-hat | tree depth | fit wall s |",
        "|---:|---|---|---:|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['seed']} | {r['init']} | {r['channel']} | {r['true_roas']:.2f} | {r['roas']:.2f} "
              f"[{r['low']:.2f}, {r['high']:.2f}] | {'yes' if r['covered'] else 'no'} | {r['true_alpha']:.2f} "
              f"| {r['alpha']:.2f} | {r['current']:.1f} -> {r['recommended']:.1f} | {r['true_gain']:+.1f} "
              f"| {r['r_hat']:.3f} | {r['depth']:.1f} | {r['wall_s']:.0f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    from bench.results import write_section
    from ml.mmm import MediaMixConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--history-weeks", type=int, default=26)
    parser.add_argument("--days", type=int, default=MediaMixConfig().days, help="newest days fitted")
    parser.add_argument("--yearly", type=int, default=MediaMixConfig().yearly_seasonality,
                        help="order of the yearly Fourier season")
    parser.add_argument("--inits", nargs="+", default=["jitter+adapt_diag", MediaMixConfig().init],
                        help="NUTS initialisations compared (PyMC's init names)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [row for seed in args.seeds
            for row in one_seed(args.customers, seed, args.history_weeks, args.days, args.yearly, args.inits)]
    text = table(rows, args.customers, args.days, args.history_weeks, args.inits)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
