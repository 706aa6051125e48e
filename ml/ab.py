"""A/B and campaign-lift analysis: every variant against control, for binary and continuous metrics.

Methods (all two-sided, ``alpha`` = 0.05 unless given):

* binary metrics (conversion): two-proportion z-test with the *pooled* standard error for the p-value
  (the textbook test, equivalent to the 2x2 chi-square without continuity correction); CI of the
  difference either Wald with the unpooled SE (default, the interval matching the usual z-test
  reporting) or Newcombe's hybrid score interval (method 10, built on Wilson intervals; better
  coverage when conversions are rare or arms small);
* continuous metrics (revenue per unit): Welch's t-test and Welch-Satterthwaite CI, no equal-variance
  assumption because treatment typically changes the spread of revenue as well as its mean;
* relative lift = absolute lift / control mean, with a delta-method CI;
* multiplicity: Holm's step-down correction, over *all* comparisons of one analysis (every metric x
  every variant) as one family by default, or per metric over the k comparisons with the control
  (``family="metric"``); the report names the family (``LiftReport.correction``) and decisions use the
  Holm p-value;
* sample ratio mismatch: chi-square goodness of fit of the arm sizes against the designed allocation;
  a mismatch (p < ``srm_alpha``) marks every comparison untrustworthy, since broken randomisation biases lift.
  Without an allocation the design is unknown and the check is skipped, said so in the report: assuming
  equal arms would fail every unequal design (a 2:1 test, a 10 % holdout) as broken;
* power: the achieved (post-hoc) power at the observed lift and the minimum detectable effect at 80 %
  power, both from the normal approximation with the observed standard error. Post-hoc power is a
  function of the p-value; the MDE is the number that says whether "no difference" means anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

MetricKind = Literal["binary", "continuous"]
ProportionCi = Literal["wald", "newcombe"]
HolmFamily = Literal["all", "metric"]


# ----------------------------------------------------------------------------------- single tests


@dataclass(frozen=True)
class TestResult:
    """One variant-vs-control comparison before multiplicity correction."""

    diff: float
    ci_low: float
    ci_high: float
    statistic: float
    p_value: float
    se: float  # unpooled standard error of the difference, used for power and MDE


def two_proportion_test(
    conversions_control: int,
    n_control: int,
    conversions_variant: int,
    n_variant: int,
    *,
    alpha: float = 0.05,
    ci: ProportionCi = "wald",
) -> TestResult:
    """Two-proportion z-test of variant minus control: pooled SE for the p-value, Wald or Newcombe CI."""
    if min(n_control, n_variant) <= 0:
        raise ValueError("both arms need at least one unit")
    p_c, p_v = conversions_control / n_control, conversions_variant / n_variant
    diff = p_v - p_c
    pooled = (conversions_control + conversions_variant) / (n_control + n_variant)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_variant))
    se = math.sqrt(p_c * (1 - p_c) / n_control + p_v * (1 - p_v) / n_variant)
    z = diff / se_pooled if se_pooled > 0 else 0.0
    p_value = 2 * stats.norm.sf(abs(z)) if se_pooled > 0 else 1.0
    crit = stats.norm.isf(alpha / 2)
    if ci == "wald":
        low, high = diff - crit * se, diff + crit * se
    elif ci == "newcombe":
        l_c, u_c = wilson_interval(conversions_control, n_control, alpha=alpha)
        l_v, u_v = wilson_interval(conversions_variant, n_variant, alpha=alpha)
        low = diff - math.sqrt((p_v - l_v) ** 2 + (u_c - p_c) ** 2)
        high = diff + math.sqrt((u_v - p_v) ** 2 + (p_c - l_c) ** 2)
    else:
        raise ValueError(f"unknown CI method {ci!r}")
    return TestResult(diff=diff, ci_low=low, ci_high=high, statistic=z, p_value=float(p_value), se=se)


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for one proportion."""
    z = stats.norm.isf(alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def welch_test(control: Sequence[float] | np.ndarray, variant: Sequence[float] | np.ndarray, *, alpha: float = 0.05) -> TestResult:
    """Welch's t-test and CI of mean(variant) - mean(control)."""
    c, v = np.asarray(control, dtype=float), np.asarray(variant, dtype=float)
    if min(len(c), len(v)) < 2:
        raise ValueError("Welch's test needs at least two units per arm")
    var_c, var_v = c.var(ddof=1) / len(c), v.var(ddof=1) / len(v)
    se = math.sqrt(var_c + var_v)
    diff = float(v.mean() - c.mean())
    if se == 0:
        return TestResult(diff=diff, ci_low=diff, ci_high=diff, statistic=0.0, p_value=1.0 if diff == 0 else 0.0, se=0.0)
    df = (var_c + var_v) ** 2 / (var_c**2 / (len(c) - 1) + var_v**2 / (len(v) - 1))
    t = diff / se
    crit = stats.t.isf(alpha / 2, df)
    return TestResult(
        diff=diff, ci_low=diff - crit * se, ci_high=diff + crit * se, statistic=t,
        p_value=float(2 * stats.t.sf(abs(t), df)), se=se,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order."""
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
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(statistic, len(arms) - 1))


# ----------------------------------------------------------------------------------- power and size


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


# ------------------------------------------------------------------------------------- the analysis


@dataclass(frozen=True)
class Comparison:
    """One metric, one variant vs control: the row of the lift report."""

    metric: str
    kind: MetricKind
    variant: str
    control: str
    n_control: int
    n_variant: int
    mean_control: float
    mean_variant: float
    abs_lift: float
    rel_lift: float
    ci_low: float
    ci_high: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    p_value_holm: float
    srm_p_value: float  # NaN when the design is unknown (no allocation): not checked
    power: float
    mde: float
    decision: str


@dataclass(frozen=True)
class LiftReport:
    """All comparisons of one experiment and its sample-ratio check."""

    control: str
    counts: dict[str, int]
    allocation: dict[str, float] | None  # None: the design is unknown
    srm_p_value: float  # NaN when not checked
    srm_ok: bool | None  # None when not checked (design unknown)
    alpha: float
    comparisons: tuple[Comparison, ...]
    correction: str = ""  # the multiple-comparison correction, in words
    srm_note: str = ""

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.comparisons])


def analyze(
    units: pd.DataFrame,
    metrics: Mapping[str, MetricKind],
    *,
    variant_col: str = "variant",
    control: str = "control",
    allocation: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    srm_alpha: float = 0.001,
    proportion_ci: ProportionCi = "wald",
    family: HolmFamily = "all",
) -> LiftReport:
    """Lift of every variant over ``control`` on every metric, from one row per randomised unit.

    ``allocation`` is the designed share per arm (weights, any scale) and must name every arm that has
    units; without it the design is unknown and the sample-ratio check is skipped (``srm_ok`` None, with
    ``srm_note`` saying why). A binary metric's column holds 0/1. ``srm_alpha`` is strict (0.001, as is
    common practice) because the check runs on every analysis and a false alarm discards a valid experiment.
    ``family`` is Holm's family: every metric x variant together (``"all"``) or, per metric, the k
    comparisons with the control (``"metric"``).
    """
    counts = {str(k): int(v) for k, v in units[variant_col].astype(str).value_counts().sort_index().items()}
    if control not in counts:
        raise ValueError(f"no units in control arm {control!r}")
    if allocation is None:
        design, srm, srm_ok = None, math.nan, None
        srm_note = "design unknown (no allocation given): sample-ratio check skipped"
    else:
        design = {str(k): float(v) for k, v in allocation.items()}
        srm = srm_p_value(counts, design)
        srm_ok = srm >= srm_alpha
        srm_note = f"chi-square against the designed allocation, p={srm:.4g} (mismatch below {srm_alpha:g})"
    variants = [arm for arm in counts if arm != control]
    groups = {arm: frame for arm, frame in units.groupby(units[variant_col].astype(str))}

    raw: list[tuple[str, MetricKind, str, float, float, TestResult, float]] = []
    for metric, kind in metrics.items():
        c_values = groups[control][metric].to_numpy(dtype=float)
        for variant in variants:
            v_values = groups[variant][metric].to_numpy(dtype=float)
            if kind == "binary":
                result = two_proportion_test(
                    int(c_values.sum()), len(c_values), int(v_values.sum()), len(v_values),
                    alpha=alpha, ci=proportion_ci,
                )
                # MDE from the control rate in both arms: the effect size a designer would have planned for.
                base = c_values.mean()
                se_design = math.sqrt(base * (1 - base) * (1 / len(c_values) + 1 / len(v_values)))
            elif kind == "continuous":
                result = welch_test(c_values, v_values, alpha=alpha)
                se_design = result.se
            else:
                raise ValueError(f"metric {metric!r}: kind must be 'binary' or 'continuous', not {kind!r}")
            raw.append((metric, kind, variant, float(c_values.mean()), float(v_values.mean()), result, se_design))

    if family == "all":
        adjusted = holm([r[5].p_value for r in raw])
        correction = f"Holm over all {len(raw)} comparisons ({len(metrics)} metrics x {len(variants)} arms vs {control})"
    elif family == "metric":
        adjusted = [math.nan] * len(raw)
        for metric in metrics:
            rows = [i for i, r in enumerate(raw) if r[0] == metric]
            for i, p in zip(rows, holm([raw[i][5].p_value for i in rows]), strict=True):
                adjusted[i] = p
        correction = f"Holm over the {len(variants)} comparisons with {control}, per metric"
    else:
        raise ValueError(f"Holm family must be 'all' or 'metric', not {family!r}")
    comparisons = []
    for (metric, kind, variant, m_c, m_v, result, se_design), p_holm in zip(raw, adjusted, strict=True):
        n_c, n_v = counts[control], counts[variant]
        rel, rel_low, rel_high = _relative_lift(groups[control][metric], groups[variant][metric], m_c, m_v, alpha)
        mde = mde_at(se_design, alpha=alpha, power=power)
        achieved = power_at(result.diff, result.se, alpha=alpha)
        comparisons.append(
            Comparison(
                metric=metric, kind=kind, variant=variant, control=control, n_control=n_c, n_variant=n_v,
                mean_control=m_c, mean_variant=m_v, abs_lift=result.diff, rel_lift=rel,
                ci_low=result.ci_low, ci_high=result.ci_high, rel_ci_low=rel_low, rel_ci_high=rel_high,
                p_value=result.p_value, p_value_holm=p_holm, srm_p_value=srm, power=achieved, mde=mde,
                decision=_decision(metric, variant, control, result, rel, p_holm, mde, srm, srm_ok, alpha, power),
            )
        )
    return LiftReport(
        control=control, counts=counts, allocation=design, srm_p_value=srm, srm_ok=srm_ok, alpha=alpha,
        comparisons=tuple(comparisons), correction=correction, srm_note=srm_note,
    )


def _relative_lift(
    control: pd.Series, variant: pd.Series, m_c: float, m_v: float, alpha: float
) -> tuple[float, float, float]:
    """Relative lift m_v/m_c - 1 with a delta-method CI (independent arms); NaN when the control mean is 0."""
    if m_c == 0:
        return math.nan, math.nan, math.nan
    ratio = m_v / m_c
    var_c = control.var(ddof=1) / len(control) if len(control) > 1 else 0.0
    var_v = variant.var(ddof=1) / len(variant) if len(variant) > 1 else 0.0
    se = abs(ratio) * math.sqrt(var_v / m_v**2 + var_c / m_c**2) if m_v != 0 else math.sqrt(var_v) / abs(m_c)
    crit = stats.norm.isf(alpha / 2)
    return ratio - 1, ratio - 1 - crit * se, ratio - 1 + crit * se


def _decision(
    metric: str, variant: str, control: str, result: TestResult, rel: float, p_holm: float, mde: float,
    srm: float, srm_ok: bool | None, alpha: float, power: float,
) -> str:
    if srm_ok is False:
        return (
            f"Do not use: arm sizes differ from the design (sample ratio mismatch, p={srm:.2g}); "
            "fix the assignment before reading any lift."
        )
    unchecked = " Sample ratio not checked: the design is unknown." if srm_ok is None else ""
    level = f"{1 - alpha:.0%}"
    interval = f"{level} CI [{result.ci_low:+.4g}, {result.ci_high:+.4g}]"
    relative = "" if math.isnan(rel) else f" ({rel:+.1%})"
    if p_holm < alpha:
        direction = "beats" if result.diff > 0 else "is worse than"
        return (
            f"{variant} {direction} {control} on {metric}: {result.diff:+.4g}{relative} ({interval}, "
            f"Holm-adjusted p={p_holm:.2g}).{unchecked}"
        )
    return (
        f"No detectable difference between {variant} and {control} on {metric} "
        f"({result.diff:+.4g}{relative}, {interval}, Holm-adjusted p={p_holm:.2g}); the test could only detect "
        f"a change of about {mde:.4g} with {power:.0%} power.{unchecked}"
    )
