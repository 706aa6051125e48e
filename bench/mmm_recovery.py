"""Does the media mix model recover the paid channels' true ROAS? (issue 27)

    .venv/bin/python bench/mmm_recovery.py --customers 10000 --seeds 11 [--history-weeks 26] [--write]

Per seed: simulates cycle 0 of a ``media_effect`` world (sim/media.py: its history of spend and the orders
it caused), fits ``ml.mmm`` with its default sampler settings on the newest ``MediaMixConfig.days`` days
of what ``kpi_media_daily`` holds (``sim.oracle.media_daily_rows``), and sets each channel's ROAS with its
94 % interval beside the true ROAS over the same days (``sim.oracle.media_truth``). ``--write`` appends
the table to bench/RESULTS.md, section "Media mix recovery".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADING = "## Media mix recovery: ROAS against the simulator's truth (issue 27)"


def one_seed(customers: int, seed: int, history_weeks: int, days: int, yearly: int) -> list[dict[str, object]]:
    from campaign_loop.config import Settings
    from ml import mmm
    from sim.oracle import media_daily_rows, media_truth
    from sim.period import simulate_period

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), customers=customers, seed=seed, history_weeks=history_weeks,
                            media_effect=True, newsletter_history=0, dirt=0.0)
        simulate_period(settings, 0)
        frame = mmm.media_frame(media_daily_rows(settings), days=days)
        started = time.perf_counter()
        fit = mmm.fit_media_mix(frame, config=mmm.MediaMixConfig(days=days, yearly_seasonality=yearly))
        wall = time.perf_counter() - started
        summary = mmm.channel_summary(fit).set_index("channel")
        truth = media_truth(settings, frame[mmm.DATE].min().date(), frame[mmm.DATE].max().date()).set_index("channel")
        diagnostics = mmm.diagnostics(fit)
        current = fit.frame[fit.channels].tail(28).mean()
        plan = mmm.recommend_budgets(mmm.ResponseCurves.from_fit(fit), current).set_index("channel")
        reference = truth["reference_spend"]

        def true_revenue(spend: object) -> float:
            x = truth["lam"] * spend / reference
            return float((truth["beta"] * reference * (1 - np.exp(-x)) / (1 + np.exp(-x))).sum())

        gain = true_revenue(plan["recommended_daily_spend"]) - true_revenue(plan["current_daily_spend"])
    return [{"seed": seed, "channel": c, "true_roas": truth.loc[c, "roas"], "roas": summary.loc[c, "roas"],
             "low": summary.loc[c, "roas_low"], "high": summary.loc[c, "roas_high"],
             "covered": summary.loc[c, "roas_low"] <= truth.loc[c, "roas"] <= summary.loc[c, "roas_high"],
             "true_alpha": truth.loc[c, "alpha"], "alpha": summary.loc[c, "adstock_alpha"],
             "current": plan.loc[c, "current_daily_spend"], "recommended": plan.loc[c, "recommended_daily_spend"],
             "true_gain": gain, "r_hat": diagnostics["max_r_hat"], "wall_s": wall} for c in summary.index]


def table(rows: list[dict[str, object]], customers: int, days: int, history_weeks: int) -> str:
    from bench.results import machine

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    covered = sum(bool(r["covered"]) for r in rows)
    lines = [
        f"Command: `.venv/bin/python bench/mmm_recovery.py --customers {customers} --seeds "
        f"{' '.join(str(s) for s in sorted({r['seed'] for r in rows}))} --history-weeks {history_weeks} --days {days} --write`  ",
        f"Commit: {commit}; machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {days} days, "
        f"2 chains x (300 tune + 300 draws), shared machine  ",
        f"Covered: **{covered} of {len(rows)}** channel-seeds' true ROAS inside the 94 % interval.",
        "",
        "| seed | channel | true ROAS | recovered ROAS [94 %] | covered | true alpha | alpha | daily spend now -> "
        "recommended | true revenue gain a day (all channels) | max r-hat | fit wall s |",
        "|---:|---|---:|---|---|---:|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {r['seed']} | {r['channel']} | {r['true_roas']:.2f} | {r['roas']:.2f} [{r['low']:.2f}, {r['high']:.2f}] "
              f"| {'yes' if r['covered'] else 'no'} | {r['true_alpha']:.2f} | {r['alpha']:.2f} "
              f"| {r['current']:.1f} -> {r['recommended']:.1f} | {r['true_gain']:+.1f} | {r['r_hat']:.3f} "
              f"| {r['wall_s']:.0f} |" for r in rows]
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
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [row for seed in args.seeds for row in one_seed(args.customers, seed, args.history_weeks, args.days, args.yearly)]
    text = table(rows, args.customers, args.days, args.history_weeks)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
