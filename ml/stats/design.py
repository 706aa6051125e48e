"""Multiplicity, sample-ratio checks, power and sample size."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Written here because scipy has only Benjamini-Hochberg (``false_discovery_control``) and statsmodels,
    which has Holm, is not a dependency. Dunnett's test (scipy.stats.dunnett) is sharper for k arms against
    one control but needs unit-level samples and equal-variance normal data; Holm needs only the p-values.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        # The running max keeps adjusted p-values monotone in the raw ones, as the step-down procedure requires.
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def srm_p_value(counts: Mapping[str, int], allocation: Mapping[str, float]) -> float:
    """Chi-square goodness-of-fit p-value of arm sizes against the designed allocation (weights, any scale)."""
    arms = list(allocation)
    missing = set(counts) - set(arms)
    if missing:
        raise ValueError(
            f"arms {sorted(missing)} are not in the designed allocation {sorted(arms)}: give their designed "
            "shares (e.g. the mean assignment_probability of their members) or leave the allocation out"
        )
    observed = np.array([counts.get(arm, 0) for arm in arms], dtype=float)
    weights = np.array([allocation[arm] for arm in arms], dtype=float)
    expected = observed.sum() * weights / weights.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def power_at(effect: float, se: float, *, alpha: float = 0.05) -> float:
    """Power of a two-sided z-test to detect ``effect`` when the difference has standard error ``se``."""
    if se <= 0:
        return 1.0 if effect != 0 else alpha
    crit = stats.norm.isf(alpha / 2)
    shift = abs(effect) / se
    return float(stats.norm.cdf(shift - crit) + stats.norm.cdf(-shift - crit))


def mde_at(se: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest absolute difference detected with ``power`` given the standard error of the difference."""
    return float((stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) * se)


def sample_size_for_mde(
    baseline_rate: float, mde_abs: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> tuple[int, int]:
    """Units needed per arm, ``(control, treatment)``, to detect ``baseline_rate`` -> ``baseline_rate + mde_abs``.

    ``ratio`` is treatment units per control unit (9 for a 10 % holdout). Closed form for the pooled
    two-proportion z-test (Fleiss, without continuity correction):
    n_c = (z_{1-a/2} sqrt(pbar qbar (1 + 1/k)) + z_{power} sqrt(p1 q1 + p2 q2 / k))^2 / mde^2, n_t = k n_c.
    """
    p1, p2, k = baseline_rate, baseline_rate + mde_abs, ratio
    if not (0 < p1 < 1 and 0 < p2 < 1) or mde_abs == 0 or k <= 0:
        raise ValueError("need 0 < baseline, baseline + mde < 1, a non-zero mde and a positive ratio")
    p_bar = (p1 + k * p2) / (1 + k)
    z_a, z_b = stats.norm.isf(alpha / 2), stats.norm.ppf(power)
    root = z_a * math.sqrt(p_bar * (1 - p_bar) * (1 + 1 / k)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / k)
    n_control = math.ceil(root**2 / mde_abs**2)
    return n_control, math.ceil(k * n_control)
