"""Heavy-tailed revenue: is a bootstrap-t interval calibrated where Welch's is conservative? (issue 23)

``bench/ab_calibration.py``'s heavy-tailed designs (order values log-normal with sigma 2) find Welch's
test on revenue per member conservative: FPR 2.6-3.9 %, coverage 96-97 %. This check draws the same
campaigns (``ab_calibration.simulate``), 2 arms, and scores on the same draws Welch's interval and two
bootstrap-t intervals of the difference of means (each arm resampled on its own, ``--boot`` resamples):
equal-tailed (percentiles of t*) and symmetric (percentile of |t*|); and Welch's statistic with its
critical value from a permutation of the arms' labels instead of Student's t (``permutation_t``: the
studentized permutation test of Janssen 1997 and Chung & Romano 2013, its |t*| quantile as the interval's
half-width in standard errors). Both need the unit rows, which the warehouse's per-arm sums
(``kpi_campaign_arms``) do not keep: this is evidence for a decision, not a method the platform runs.

    .venv/bin/python bench/heavy_tail_intervals.py [--runs 500] [--members 500] [--boot 999] [--seed 23]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ab_calibration import EFFECT, Design, simulate, true_effects  # noqa: E402

ALPHA = 0.05


def intervals(control: np.ndarray, variant: np.ndarray, boot: int, rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Welch's, the two bootstrap-t and the permutation-t 95 % intervals of mean(variant) - mean(control)."""
    diff = variant.mean() - control.mean()
    var_c, var_v = control.var(ddof=1) / control.size, variant.var(ddof=1) / variant.size
    se = math.sqrt(var_c + var_v)
    df = (var_c + var_v) ** 2 / (var_c**2 / (control.size - 1) + var_v**2 / (variant.size - 1))
    crit = stats.t.isf(ALPHA / 2, df)
    rc = control[rng.integers(0, control.size, (boot, control.size))]
    rv = variant[rng.integers(0, variant.size, (boot, variant.size))]
    se_star = np.sqrt(rc.var(axis=1, ddof=1) / control.size + rv.var(axis=1, ddof=1) / variant.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = (rv.mean(axis=1) - rc.mean(axis=1) - diff) / se_star
    t_star = t_star[np.isfinite(t_star)]
    low_q, high_q = np.quantile(t_star, [ALPHA / 2, 1 - ALPHA / 2])
    sym = np.quantile(np.abs(t_star), 1 - ALPHA)
    perm = _permutation_quantile(control, variant, boot, rng)
    return {"welch": (diff - crit * se, diff + crit * se), "boot_t": (diff - high_q * se, diff - low_q * se),
            "boot_t_symmetric": (diff - sym * se, diff + sym * se), "permutation_t": (diff - perm * se, diff + perm * se)}


def _permutation_quantile(control: np.ndarray, variant: np.ndarray, draws: int, rng: np.random.Generator) -> float:
    """The 1 - ALPHA quantile of |Welch's t| over random reassignments of the pooled members to the two arms."""
    pooled = rng.permuted(np.tile(np.concatenate([control, variant]), (draws, 1)), axis=1)
    first, second = pooled[:, : control.size], pooled[:, control.size:]
    se = np.sqrt(first.var(axis=1, ddof=1) / control.size + second.var(axis=1, ddof=1) / variant.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(second.mean(axis=1) - first.mean(axis=1)) / se
    return float(np.quantile(t[np.isfinite(t)], 1 - ALPHA))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--boot", type=int, default=999)
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    design = Design("heavy", "heavy-tailed", {"treatment": args.members, "control": args.members}, sigma=2.0)
    tally: dict[str, list[float]] = {}
    for kind, effects in (("aa", {}), ("ab", {"treatment": EFFECT})):
        true = true_effects(design, effects)[("revenue", "treatment")]
        for _ in range(args.runs):
            units = simulate(rng, design, effects)
            arm = units.groupby("variant")["revenue"]
            found = intervals(arm.get_group("control").to_numpy(), arm.get_group("treatment").to_numpy(), args.boot, rng)
            for method, (low, high) in found.items():
                tally.setdefault(f"{method} {kind}", []).append(float(low <= true <= high))
                if kind == "ab":
                    tally.setdefault(f"{method} width", []).append(high - low)
    se = 100 * math.sqrt(0.05 * 0.95 / args.runs)
    print(f"{args.runs} A/A + {args.runs} A/B campaigns, {args.members} a side, revenue; MC s.e. {se:.2f} points")
    print("| interval | FPR (A/A) | coverage (A/B) | mean width |\n|---|---:|---:|---:|")
    for method in ("welch", "boot_t", "boot_t_symmetric", "permutation_t"):
        print(f"| {method} | {100 * (1 - np.mean(tally[f'{method} aa'])):.1f} % | "
              f"{100 * np.mean(tally[f'{method} ab']):.1f} % | {np.mean(tally[f'{method} width']):.4g} |")


if __name__ == "__main__":
    main()
