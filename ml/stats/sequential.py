"""Always-valid intervals for campaigns watched daily: a normal-mixture confidence sequence (mSPRT).

A fixed-n 95 % interval looked at every day and acted on the first day it excludes zero is wrong far more
than 5 % of the time. The mixture sequential probability ratio test of Johari, Koomen, Pekelis & Walsh
(2017, KDD, "Peeking at A/B tests", and Operations Research 2022) mixes the likelihood ratio of the
difference's z-statistic over a normal prior on the effect, N(0, tau^2); its confidence sequence

    diff +/- sqrt( V (V + tau^2) / tau^2 * log((V + tau^2) / (V alpha^2)) ),   V = se^2 of the difference,

covers the true difference at *every* look at once with probability >= 1 - alpha (Howard, Ramdas,
McAuliffe & Sekhon 2021, Ann. Stat., eq. 14, the two-sided normal mixture boundary; with the variance
estimated from the data it holds asymptotically, Waudby-Smith et al. 2024, "Time-uniform central limit
theory"). scipy and statsmodels have no confidence sequences, hence this module.

tau^2 must be fixed before the first look. It is set on the scale of the design: tau^2 = r V_N, with V_N
the difference's variance at the planned sample sizes (the per-unit variance cancels, so only the
sizes matter) and r = 8.21, which makes the interval narrowest at the planned size for alpha = 0.05
(there it is 1.55 times the fixed-n interval; earlier it is wider, as it must be).
"""

from __future__ import annotations

import math
from functools import cache

from scipy import optimize

from ml.stats.estimators import Estimate

METHOD = "mSPRT normal-mixture confidence sequence (Johari et al. 2017; Howard et al. 2021), tuned to the planned size"


@cache
def best_mixing_ratio(alpha: float = 0.05) -> float:
    """The r in tau^2 = r V_N that minimises the interval's width at the planned size."""
    def width(r: float) -> float:
        return (1 + r) / r * math.log((1 + r) / alpha**2)

    return float(optimize.minimize_scalar(width, bounds=(1e-3, 1e3), method="bounded").x)


def half_width(se: float, information: float, *, alpha: float = 0.05, ratio: float | None = None) -> float:
    """Half-width of the confidence sequence at a look with standard error ``se``.

    ``information`` is V_N / V at this look: (1/n_c + 1/n_v at the planned sizes) / (the same now), so 1
    at the planned size and below 1 before it.
    """
    if se <= 0:
        return 0.0
    r = best_mixing_ratio(alpha) if ratio is None else ratio
    v = se**2
    tau2 = r * information * v  # r V_N, with V_N = information x V
    return math.sqrt(v * (v + tau2) / tau2 * math.log((v + tau2) / (v * alpha**2)))


def information_fraction(n_control: int, n_variant: int, planned_control: int, planned_variant: int) -> float:
    """V_N / V for a difference of two means whose variance scales as 1/n_c + 1/n_v."""
    return (1 / planned_control + 1 / planned_variant) / (1 / n_control + 1 / n_variant)


def confidence_sequence(estimate: Estimate, information: float = 1.0, *, alpha: float = 0.05) -> tuple[float, float]:
    """The always-valid interval of ``estimate`` (any of ml.stats.estimators) at this look."""
    half = half_width(estimate.se, information, alpha=alpha)
    return estimate.diff - half, estimate.diff + half
