"""Difference-of-arms estimators from per-arm sufficient statistics.

Every estimator reads only :class:`ArmStats` (n, sum, sum of squares, and for a second column x its sum,
sum of squares and cross-product with y): what SQL aggregates per arm, on DuckDB and PostgreSQL alike, and
what :func:`ArmStats.from_values` computes from unit rows. The same numbers therefore come out of the
warehouse path and the unit-level path.

* binary: two-proportion z-test, pooled SE for the p-value, Wald (unpooled) or Newcombe hybrid score CI;
* continuous (revenue, margin): Welch's t-test and Welch-Satterthwaite CI;
* ratio (revenue per order, i.e. AOV; anything whose unit of analysis is not the randomised unit): the
  difference of two ratios of means with the delta-method variance (Deng, Knoblich & Lu 2018, KDD,
  "Applying the Delta Method in Metric Analytics", eq. 3), normal CI;
* CUPED (Deng, Xu, Kohavi & Walker 2013, WSDM): y - theta (x - mean x) with x the pre-period metric and
  theta the within-arm pooled slope cov(y, x) / var(x) over the arms compared, then Welch on the adjusted
  metric. The adjusted difference equals the ANCOVA difference of adjusted means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

ProportionCi = Literal["wald", "newcombe"]


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm: y the metric, x a second column (CUPED covariate or ratio denominator)."""

    n: int
    y_sum: float
    y_sq: float
    x_sum: float = math.nan
    x_sq: float = math.nan
    xy: float = math.nan

    @classmethod
    def from_values(cls, y: Sequence[float] | np.ndarray, x: Sequence[float] | np.ndarray | None = None) -> ArmStats:
        y = np.asarray(y, dtype=float)
        if x is None:
            return cls(n=len(y), y_sum=float(y.sum()), y_sq=float(y @ y))
        x = np.asarray(x, dtype=float)
        return cls(n=len(y), y_sum=float(y.sum()), y_sq=float(y @ y), x_sum=float(x.sum()), x_sq=float(x @ x),
                   xy=float(x @ y))

    @property
    def has_x(self) -> bool:
        return not math.isnan(self.x_sum)

    @property
    def y_mean(self) -> float:
        return self.y_sum / self.n

    @property
    def x_mean(self) -> float:
        return self.x_sum / self.n

    def _centred(self, a_sum: float, b_sum: float, ab: float) -> float:
        """Sum of (a - mean a)(b - mean b): the corrected cross-product, clipped at 0 on the diagonal by callers."""
        return ab - a_sum * b_sum / self.n

    @property
    def syy(self) -> float:
        return max(self._centred(self.y_sum, self.y_sum, self.y_sq), 0.0)

    @property
    def sxx(self) -> float:
        return max(self._centred(self.x_sum, self.x_sum, self.x_sq), 0.0)

    @property
    def sxy(self) -> float:
        return self._centred(self.x_sum, self.y_sum, self.xy)

    @property
    def y_var(self) -> float:
        """Sample variance (n - 1)."""
        return self.syy / (self.n - 1) if self.n > 1 else 0.0

    @property
    def x_var(self) -> float:
        return self.sxx / (self.n - 1) if self.n > 1 else 0.0

    @property
    def xy_cov(self) -> float:
        return self.sxy / (self.n - 1) if self.n > 1 else 0.0

    def without_x(self) -> ArmStats:
        return ArmStats(n=self.n, y_sum=self.y_sum, y_sq=self.y_sq)


@dataclass(frozen=True)
class Estimate:
    """Variant minus control on one metric: the point estimate, its interval and test.

    ``mean_control``/``mean_variant`` are the arms' (adjusted, for CUPED) means or ratios and
    ``var_control``/``var_variant`` their squared standard errors, from which relative lift is derived.
    """

    diff: float
    se: float  # unpooled standard error of the difference (intervals, power, sequential intervals)
    ci_low: float
    ci_high: float
    statistic: float
    p_value: float
    method: str
    mean_control: float
    mean_variant: float
    var_control: float
    var_variant: float
    theta: float = math.nan  # CUPED's slope; NaN when not adjusted
    df: float = math.inf  # degrees of freedom of the reference distribution (inf: normal)


def wilson_interval(successes: float, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for one proportion."""
    z = stats.norm.isf(alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def proportion_difference(control: ArmStats, variant: ArmStats, *, alpha: float = 0.05,
                          ci: ProportionCi = "wald") -> Estimate:
    """Two-proportion z-test of variant minus control (y_sum = conversions): pooled SE for the p-value."""
    n_c, n_v = control.n, variant.n
    if min(n_c, n_v) <= 0:
        raise ValueError("both arms need at least one unit")
    x_c, x_v = control.y_sum, variant.y_sum
    p_c, p_v = x_c / n_c, x_v / n_v
    diff = p_v - p_c
    pooled = (x_c + x_v) / (n_c + n_v)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_v))
    var_c, var_v = p_c * (1 - p_c) / n_c, p_v * (1 - p_v) / n_v
    se = math.sqrt(var_c + var_v)
    z = diff / se_pooled if se_pooled > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z))) if se_pooled > 0 else 1.0
    crit = stats.norm.isf(alpha / 2)
    if ci == "wald":
        low, high = diff - crit * se, diff + crit * se
        method = "two-proportion z-test (pooled SE), Wald interval"
    elif ci == "newcombe":
        l_c, u_c = wilson_interval(x_c, n_c, alpha=alpha)
        l_v, u_v = wilson_interval(x_v, n_v, alpha=alpha)
        low = diff - math.sqrt((p_v - l_v) ** 2 + (u_c - p_c) ** 2)
        high = diff + math.sqrt((u_v - p_v) ** 2 + (p_c - l_c) ** 2)
        method = "two-proportion z-test (pooled SE), Newcombe hybrid score interval"
    else:
        raise ValueError(f"unknown CI method {ci!r}")
    return Estimate(diff=diff, se=se, ci_low=low, ci_high=high, statistic=z, p_value=p_value, method=method,
                    mean_control=p_c, mean_variant=p_v, var_control=var_c, var_variant=var_v)


@dataclass(frozen=True)
class _WelchArm:
    """One arm as Welch's test reads it: its reported mean, the variance of that mean and its size."""

    mean: float
    var: float  # squared standard error of the arm's mean, not the unit variance
    n: int


def _welch(diff: float, control: _WelchArm, variant: _WelchArm, *, alpha: float, method: str,
           theta: float = math.nan) -> Estimate:
    # ``diff`` is passed, not derived from the arms' means: CUPED reports means re-centred on the pooled
    # pre-period mean, and subtracting those would round differently from the adjusted difference.
    var_c, var_v = control.var, variant.var
    se = math.sqrt(var_c + var_v)
    if se == 0:
        return Estimate(diff=diff, se=0.0, ci_low=diff, ci_high=diff, statistic=0.0,
                        p_value=1.0 if diff == 0 else 0.0, method=method, mean_control=control.mean,
                        mean_variant=variant.mean, var_control=var_c, var_variant=var_v, theta=theta)
    df = (var_c + var_v) ** 2 / (var_c**2 / (control.n - 1) + var_v**2 / (variant.n - 1))
    t = diff / se
    crit = stats.t.isf(alpha / 2, df)
    return Estimate(diff=diff, se=se, ci_low=diff - crit * se, ci_high=diff + crit * se, statistic=t,
                    p_value=float(2 * stats.t.sf(abs(t), df)), method=method, mean_control=control.mean,
                    mean_variant=variant.mean, var_control=var_c, var_variant=var_v, theta=theta, df=df)


def mean_difference(control: ArmStats, variant: ArmStats, *, alpha: float = 0.05) -> Estimate:
    """Welch's t-test and CI of mean(variant) - mean(control), from each arm's n, sum and sum of squares."""
    if min(control.n, variant.n) < 2:
        raise ValueError("Welch's test needs at least two units per arm")
    # scipy's ttest_ind_from_stats gives the same t and p; its CI is not exposed, so both come from here.
    return _welch(variant.y_mean - control.y_mean,
                  _WelchArm(control.y_mean, control.y_var / control.n, control.n),
                  _WelchArm(variant.y_mean, variant.y_var / variant.n, variant.n),
                  alpha=alpha, method="Welch t-test and interval")


def ratio_variance(arm: ArmStats) -> float:
    """Delta-method variance of mean(y) / mean(x) over one arm's units (Deng, Knoblich & Lu 2018, eq. 3)."""
    # var(y)/mx^2 - 2 my cov(x, y)/mx^3 + my^2 var(x)/mx^4 is var(y - R x) / mx^2 with R = my / mx; written so,
    # it is clipped at 0 where rounding leaves a constant ratio's variance a hair below.
    ratio = arm.y_mean / arm.x_mean
    residual = max(arm.y_var - 2 * ratio * arm.xy_cov + ratio**2 * arm.x_var, 0.0)
    return residual / arm.x_mean**2 / arm.n


def ratio_difference(control: ArmStats, variant: ArmStats, *, alpha: float = 0.05) -> Estimate:
    """Difference of two ratio metrics sum(y)/sum(x) (y the numerator, x the denominator per unit), delta method."""
    if not (control.has_x and variant.has_x):
        raise ValueError("a ratio metric needs each arm's denominator statistics (x_sum, x_sq, xy)")
    if min(control.n, variant.n) < 2 or control.x_sum == 0 or variant.x_sum == 0:
        raise ValueError("a ratio metric needs two units per arm and a non-zero denominator")
    r_c, r_v = control.y_sum / control.x_sum, variant.y_sum / variant.x_sum
    var_c, var_v = ratio_variance(control), ratio_variance(variant)
    diff, se = r_v - r_c, math.sqrt(var_c + var_v)
    z = diff / se if se > 0 else 0.0
    crit = stats.norm.isf(alpha / 2)
    return Estimate(diff=diff, se=se, ci_low=diff - crit * se, ci_high=diff + crit * se, statistic=z,
                    p_value=float(2 * stats.norm.sf(abs(z))) if se > 0 else 1.0,
                    method="difference of ratios, delta-method z interval", mean_control=r_c, mean_variant=r_v,
                    var_control=var_c, var_variant=var_v)


def cuped_theta(arms: Iterable[ArmStats]) -> float:
    """CUPED's theta: the within-arm pooled slope sum Sxy / sum Sxx (a treatment shift in y cannot bias it)."""
    arms = list(arms)
    sxx = sum(a.sxx for a in arms)
    return sum(a.sxy for a in arms) / sxx if sxx > 0 else math.nan


def cuped_difference(control: ArmStats, variant: ArmStats, *, theta: float | None = None,
                     alpha: float = 0.05) -> Estimate:
    """Welch on y - theta (x - mean x), x the pre-period metric; theta pooled over the two arms unless given.

    The adjusted arm variance is var(y) - 2 theta cov(x, y) + theta^2 var(x) (Deng et al. 2013, section 3.2);
    with theta undefined (no pre-period variation) it is the unadjusted Welch test.
    """
    if not (control.has_x and variant.has_x):
        raise ValueError("CUPED needs each arm's pre-period statistics (x_sum, x_sq, xy)")
    if min(control.n, variant.n) < 2:
        raise ValueError("Welch's test needs at least two units per arm")
    theta = cuped_theta((control, variant)) if theta is None else theta
    if math.isnan(theta):
        return mean_difference(control, variant, alpha=alpha)

    def adjusted(arm: ArmStats) -> tuple[float, float]:
        var = arm.y_var - 2 * theta * arm.xy_cov + theta**2 * arm.x_var
        return arm.y_mean - theta * arm.x_mean, max(var, 0.0) / arm.n

    (m_c, v_c), (m_v, v_v) = adjusted(control), adjusted(variant)
    # Reported means are centred on the pooled pre-period mean, so they stay on the metric's scale.
    x_bar = (control.x_sum + variant.x_sum) / (control.n + variant.n)
    return _welch(m_v - m_c, _WelchArm(m_c + theta * x_bar, v_c, control.n),
                  _WelchArm(m_v + theta * x_bar, v_v, variant.n), alpha=alpha,
                  method=f"CUPED (theta={theta:.4g}, pre-period metric), Welch t-test and interval", theta=theta)


def relative_interval(estimate: Estimate, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Relative lift mean_variant / mean_control - 1 with a delta-method CI (independent arms); NaN if control is 0."""
    m_c, m_v = estimate.mean_control, estimate.mean_variant
    if m_c == 0:
        return math.nan, math.nan, math.nan
    ratio = m_v / m_c
    se = math.sqrt(estimate.var_variant / m_c**2 + m_v**2 * estimate.var_control / m_c**4)
    crit = stats.norm.isf(alpha / 2)
    return ratio - 1, ratio - 1 - crit * se, ratio - 1 + crit * se
