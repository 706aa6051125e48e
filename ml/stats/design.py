"""Multiplicity, sample-ratio checks, power and sample size."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import optimize, special, stats

from ml.stats.estimators import ArmStats


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Written here because scipy has only Benjamini-Hochberg (``false_discovery_control``) and statsmodels,
    which has Holm, is not a dependency. Holm needs only the p-values, so it adjusts any family (every
    metric x arm); :func:`many_to_one` (Dunnett) uses the correlation of k comparisons with one control.
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


# Quasi-Monte Carlo points per dimension of the multivariate t integral (three or more arms): about 1e-6 of
# error on a p-value (scipy's default, 1,000, leaves 1e-4: Dunnett's 1955 example then reads 0.0058-0.0059).
_MVT_POINTS = 50_000
# Below this, the integral's error would swamp the p-value; there Dunnett's p is Bonferroni's to first order.
_MVT_FLOOR = 1e-4
# Nodes of the trapezoidal rule over log s for two arms: it converges geometrically for this smooth,
# fast-decaying integrand; 128 agree with scipy.integrate.quad to 1e-9 from 3 degrees of freedom up.
_CHI_NODES = 128


def _bivariate_t_inside(c: float, rho: float, df: float) -> float:
    """P(|T1| <= c, |T2| <= c) for a standard bivariate t with correlation ``rho``: deterministic.

    T = Z / s with s^2 ~ chi^2_df / df, so the probability is the bivariate normal rectangle at c s averaged
    over s. scipy's bivariate normal is exact to 1e-15 (no sampling); the average over s is the trapezoidal
    rule in y = log s, whose density is log 2 + df y + (df/2) log(df/2) - lgamma(df/2) - df e^(2y) / 2.
    This is 10-20 times faster than the lattice rule over two dimensions, which the calibration harness's
    thousands of campaigns need, and reproducible to the last digit.
    """
    cov = np.array([[1.0, rho], [rho, 1.0]])
    if math.isinf(df):
        upper = np.full(2, c)
        return float(stats.multivariate_normal.cdf(upper, np.zeros(2), cov, lower_limit=-upper))
    sd = 1 / math.sqrt(2 * df)
    y = np.linspace(-(36 / df + 10 * sd), 10 * sd, _CHI_NODES)
    log_density = (math.log(2) + df * y + df / 2 * math.log(df / 2) - special.gammaln(df / 2)
                   - df * np.exp(2 * y) / 2)
    weights = np.exp(log_density)
    # One call for every node: scipy's parameter checks cost more than the bivariate integral itself.
    upper = np.repeat((c * np.exp(y))[:, None], 2, axis=1)
    values = np.atleast_1d(stats.multivariate_normal.cdf(upper, np.zeros(2), cov, lower_limit=-upper))
    # Divided by the rule's total weight, so the truncated tails cannot bias the probability.
    return float(weights @ values / weights.sum())


def _inside(c: float, correlation: np.ndarray, df: float, seed: int) -> float:
    """P(max_j |T_j| <= c), T standard multivariate t (normal when df is infinite) with ``correlation``."""
    k = len(correlation)
    if k == 2:
        return _bivariate_t_inside(c, float(correlation[0, 1]), df)
    upper = np.full(k, c)
    if math.isinf(df):
        return float(stats.multivariate_normal(np.zeros(k), correlation, seed=seed).cdf(upper, lower_limit=-upper))
    return float(stats.multivariate_t(shape=correlation, df=df, seed=seed).cdf(upper, lower_limit=-upper,
                                                                               maxpts=_MVT_POINTS * k))


def many_to_one(statistics: Sequence[float], correlation: np.ndarray | Sequence[Sequence[float]],
                df: float | Sequence[float] = math.inf, *, seed: int = 0) -> list[float]:
    """Dunnett's single-step adjusted p-values of k two-sided tests that share one control.

    p_i = P(max_j |T_j| >= |t_i|), T multivariate t with ``df`` degrees of freedom (normal when infinite)
    and the comparisons' ``correlation``: Dunnett (1955, JASA 50:1096) with his pooled-variance statistics,
    Hasler & Hothorn (2008, Biom. J. 50:793) with unequal variances, each comparison integrated at its own
    degrees of freedom (``df`` per comparison). Two comparisons are integrated deterministically
    (:func:`_bivariate_t_inside`); three or more by scipy's randomised lattice rule (Genz's, as in
    ``scipy.stats.dunnett``), seeded so a report is reproducible. Where k p_i < 1e-4 the lattice rule cannot
    resolve it and p_i is Bonferroni's k p_i, to which Dunnett's converges as p_i -> 0; every p_i is kept
    within its exact bounds [p_i, min(1, k p_i)].
    """
    t, dfs, raw = _raw_p(statistics, df)
    shape = np.asarray(correlation, dtype=float)
    return [_max_t_p(x, shape, d, p, seed) for x, d, p in zip(t, dfs, raw, strict=True)]


def _raw_p(statistics: Sequence[float], df: float | Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|t|, each comparison's degrees of freedom and its unadjusted two-sided p-value."""
    t = np.abs(np.asarray(statistics, dtype=float))
    dfs = np.broadcast_to(np.asarray(df, dtype=float), (len(t),))
    raw = np.array([2 * (stats.norm.sf(x) if math.isinf(d) else stats.t.sf(x, d)) for x, d in zip(t, dfs, strict=True)])
    return t, dfs, raw


def _max_t_p(x: float, shape: np.ndarray, d: float, p: float, seed: int) -> float:
    """P(max_j |T_j| >= x) over the comparisons of ``shape``, within its exact bounds [p, min(1, k p)]."""
    k = len(shape)
    bound = min(1.0, k * p)
    if k == 1 or bound < _MVT_FLOOR:
        return float(bound)
    return float(min(max(1.0 - _inside(x, shape, d, seed), p), bound))


def many_to_one_step_down(statistics: Sequence[float], correlation: np.ndarray | Sequence[Sequence[float]],
                          df: float | Sequence[float] = math.inf, *, seed: int = 0) -> list[float]:
    """Dunnett's step-down adjusted p-values (Dunnett & Tamhane 1991, JASA 86:1074): Holm's steps, each
    from the max-|t| of the comparisons still in play instead of Bonferroni's bound.

    Sorted by raw p, the r-th comparison's p is P(max |T_j| >= |t_r|) over it and the less significant ones
    (their correlation block, its own degrees of freedom), then the running maximum. The first step is the
    single-step p (:func:`many_to_one`) of the best arm; the last is the raw p. Closed testing of the
    intersections by their max-|t| tests, so the family-wise rate is held at alpha in the strong sense, and
    each p is at most both Holm's and the single step's: neither gains power over it.
    """
    t, dfs, raw = _raw_p(statistics, df)
    shape = np.asarray(correlation, dtype=float)
    order = sorted(range(len(t)), key=lambda i: raw[i])
    adjusted = [0.0] * len(t)
    running = 0.0
    for rank, i in enumerate(order):
        rest = order[rank:]
        # The running max keeps the adjusted p-values in the raw ones' order, as a step-down procedure must.
        running = max(running, _max_t_p(t[i], shape[np.ix_(rest, rest)], dfs[i], raw[i], seed))
        adjusted[i] = running
    return adjusted


def many_to_one_critical(correlation: np.ndarray | Sequence[Sequence[float]], df: float = math.inf, *,
                         alpha: float = 0.05, seed: int = 0) -> float:
    """The two-sided critical value c with P(max_j |T_j| <= c) = 1 - alpha: Dunnett's tabled constant.

    ``estimate_i +/- c se_i`` are then simultaneous intervals: all k hold their true differences together
    with probability 1 - alpha (with the correlation of unequal variances: Hasler & Hothorn 2008; R's
    multcomp, ``confint(glht(...))``). c lies between the single test's and Bonferroni's critical values,
    which bracket the root.
    """
    shape = np.asarray(correlation, dtype=float)
    k = len(shape)
    quantile = (lambda q: stats.norm.isf(q)) if math.isinf(df) else (lambda q: stats.t.isf(q, df))
    low, high = quantile(alpha / 2), quantile(alpha / (2 * k))
    if k == 1:
        return float(low)
    return float(optimize.brentq(lambda c: 1.0 - _inside(c, shape, df, seed) - alpha, low, high, xtol=1e-9))


def dunnett(control: ArmStats, variants: Sequence[ArmStats], *, seed: int = 0) -> tuple[list[float], list[float], int]:
    """Dunnett's (1955) test of k arms against one control from each arm's n, sum and sum of squares.

    The variance is pooled over all k + 1 arms, s^2 = sum of within-arm squares / (N - k - 1); t_i =
    (mean_i - mean_0) / (s sqrt(1/n_i + 1/n_0)), correlated rho_ij = 1 / sqrt((1 + n_0/n_i)(1 + n_0/n_j)).
    ``scipy.stats.dunnett`` computes the same from unit-level samples, which the warehouse does not keep.
    Returns the statistics, the adjusted two-sided p-values and the degrees of freedom.
    """
    arms = [control, *variants]
    df = sum(a.n for a in arms) - len(arms)
    if df < 1 or not variants:
        raise ValueError("Dunnett's test needs a control, at least one arm and more units than arms")
    s = math.sqrt(sum(a.syy for a in arms) / df)
    statistics = [(v.y_mean - control.y_mean) / (s * math.sqrt(1 / v.n + 1 / control.n)) for v in variants]
    ratio = np.array([1 + control.n / v.n for v in variants])
    rho = 1 / np.sqrt(np.outer(ratio, ratio))
    np.fill_diagonal(rho, 1.0)
    return statistics, many_to_one(statistics, rho, df, seed=seed), df


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
