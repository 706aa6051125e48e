"""Holm against Dunnett for k variants sharing one control (issue 23; docs/decisions/0017).

Binary metric at 10 %, ``--members`` per arm, alpha 0.05. A/A: every arm at the base rate; A/B: the first
variant +2 points, the others none. Prints per k the family-wise false-positive rate (any arm with no
effect rejected) and the power on the effective arm, for ``ml.ab``'s two corrections on the same draws.

    .venv/bin/python bench/dunnett_power.py [--runs 2000] [--members 2000] [--seed 23]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.ab import AnalysisOptions, Metric, analyze_stats  # noqa: E402
from ml.stats import ArmStats  # noqa: E402

BASE, EFFECT, ALPHA = 0.10, 0.02, 0.05
METRIC = [Metric("converted", "binary")]


def rates(k: int, effect: float, runs: int, members: int, rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Per correction: (family-wise false-positive rate, power on the effective arm)."""
    counts = {"holm": [0, 0], "dunnett": [0, 0]}
    for _ in range(runs):
        design = {"control": BASE} | {f"v{i}": BASE + (effect if i == 0 else 0.0) for i in range(k)}
        stats = {}
        for arm, p in design.items():
            converted = float(rng.binomial(members, p))
            stats[arm] = {"converted": ArmStats(members, converted, converted)}
        for correction, tally in counts.items():
            report = analyze_stats(stats, METRIC, AnalysisOptions(family="metric", correction=correction))  # type: ignore[arg-type]
            rejected = {c.variant for c in report.comparisons if c.p_value_adjusted < ALPHA}
            tally[0] += bool(rejected - ({"v0"} if effect else set()))
            tally[1] += "v0" in rejected
    return {c: (t[0] / runs, t[1] / runs) for c, t in counts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print("arms  effect  holm_fpr  holm_power  dunnett_fpr  dunnett_power  seconds")
    for k in (2, 4):
        for effect in (0.0, EFFECT):
            start = time.time()
            r = rates(k, effect, args.runs, args.members, rng)
            power = (f"{r['holm'][1]:10.3f}", f"{r['dunnett'][1]:13.3f}") if effect else (f"{'-':>10}", f"{'-':>13}")
            print(f"{k:4d}  {effect:+6.2f}  {r['holm'][0]:8.3f}  {power[0]}  {r['dunnett'][0]:11.3f}  {power[1]}  "
                  f"{time.time() - start:7.0f}")


if __name__ == "__main__":
    main()
