"""A/B and campaign-lift analysis: every variant against control, on binary, continuous and ratio metrics.

The arithmetic is ``ml.stats`` (one implementation, from per-arm sufficient statistics): this module turns
it into the lift report that ``measure``, the published ``kpi_campaign_lift`` table and the cycle report
show. :func:`analyze` takes one row per randomised unit; :func:`analyze_stats` takes the per-arm
sufficient statistics the warehouse aggregates (``kpi_campaign_arms``); both give the same report.

Methods (all two-sided, ``alpha`` = 0.05 unless given):

* binary metrics (conversion): two-proportion z-test with the *pooled* standard error for the p-value
  (equivalent to the 2x2 chi-square without continuity correction); CI Wald (unpooled SE, default) or
  Newcombe's hybrid score interval (better coverage when conversions are rare or arms small);
* continuous metrics (revenue, margin per unit): Welch's t-test and Welch-Satterthwaite CI;
* ratio metrics (revenue per order, i.e. AOV): difference of ratios with the delta-method variance;
* CUPED, on by default for a metric given a pre-period ``covariate``: theta pooled within arms, Welch on
  the adjusted metric; the report keeps the unadjusted estimate beside it (``*_unadjusted``);
* relative lift = mean_variant / mean_control - 1 with a delta-method CI;
* multiplicity: Holm's step-down correction, over *all* comparisons of one analysis (every metric x
  every variant) by default, or per metric over the k comparisons with the control (``family="metric"``);
  or Dunnett's many-to-one test (``correction="dunnett"``, per metric), step-down (Dunnett & Tamhane 1991):
  from the joint distribution of the k comparisons, which share the control and so are correlated
  (unequal variances and each comparison's own degrees of freedom, Hasler & Hothorn 2008); it holds the
  family-wise rate at alpha exactly where Holm's falls below, and no p-value exceeds Holm's. ``measure``
  and ``kpi_campaign_lift`` use it (docs/decisions/0025). The report names the correction
  (``LiftReport.correction``), ``p_value_adjusted`` is its p-value and decisions use it; ``p_value_holm`` is
  Holm's whichever is chosen;
* simultaneous intervals (``ci_low_simultaneous``/``ci_high_simultaneous``), per metric over the k >= 2
  comparisons with the control: estimate +/- c se with c Dunnett's single-step max-|t| critical value, so all
  k cover their true differences together with probability 1 - alpha (at the smallest of the comparisons'
  degrees of freedom, which errs wide); with one comparison they are its own interval;
* always-valid intervals (``seq_ci_low``/``seq_ci_high``) for campaigns watched daily: the mSPRT
  normal-mixture confidence sequence tuned to the planned sizes (``LiftReport.sequential_method``);
* sample ratio mismatch: chi-square goodness of fit of the arm sizes against the designed allocation;
  a mismatch (p < ``srm_alpha``) marks every comparison untrustworthy. Without an allocation the design is
  unknown and the check is skipped, said so in the report;
* power: the achieved (post-hoc) power at the observed lift and the minimum detectable effect at 80 %
  power, both from the normal approximation with the standard error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ml.stats import sequential
from ml.stats.design import (
    holm,
    many_to_one_critical,
    many_to_one_step_down,
    mde_at,
    power_at,
    sample_size_for_mde,
    srm_p_value,
)
from ml.stats.estimators import (
    ArmStats,
    Estimate,
    ProportionCi,
    cuped_difference,
    mean_difference,
    proportion_difference,
    ratio_difference,
    relative_interval,
    wilson_interval,
)

MetricKind = Literal["binary", "continuous", "ratio"]
HolmFamily = Literal["all", "metric"]
Correction = Literal["holm", "dunnett"]

__all__ = [
    "AnalysisOptions", "ArmStats", "Comparison", "Correction", "HolmFamily", "LiftReport", "Metric", "MetricKind", "TestResult", "analyze",
    "analyze_stats", "arm_stats", "holm", "mde_at", "power_at", "sample_size_for_mde", "srm_p_value",
    "two_proportion_test", "welch_test", "wilson_interval",
]


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


def _result(estimate: Estimate) -> TestResult:
    return TestResult(diff=estimate.diff, ci_low=estimate.ci_low, ci_high=estimate.ci_high,
                      statistic=estimate.statistic, p_value=estimate.p_value, se=estimate.se)


def two_proportion_test(
    conversions_control: int, n_control: int, conversions_variant: int, n_variant: int, *,
    alpha: float = 0.05, ci: ProportionCi = "wald",
) -> TestResult:
    """Two-proportion z-test of variant minus control: pooled SE for the p-value, Wald or Newcombe CI."""
    return _result(proportion_difference(
        ArmStats(n_control, conversions_control, conversions_control),
        ArmStats(n_variant, conversions_variant, conversions_variant), alpha=alpha, ci=ci))


def welch_test(control: Sequence[float] | np.ndarray, variant: Sequence[float] | np.ndarray, *,
               alpha: float = 0.05) -> TestResult:
    """Welch's t-test and CI of mean(variant) - mean(control)."""
    return _result(mean_difference(ArmStats.from_values(control), ArmStats.from_values(variant), alpha=alpha))


# ------------------------------------------------------------------------------------- the analysis


@dataclass(frozen=True)
class Metric:
    """One metric of the analysis: its kind and the unit columns it reads.

    ``column`` holds the unit's value (a ratio's numerator; defaults to ``name``); a ratio metric's
    ``denominator`` the unit's denominator (e.g. orders, for revenue per order); ``covariate`` the same
    metric over the pre-period, for CUPED (not for ratios).
    """

    name: str
    kind: MetricKind
    column: str | None = None
    denominator: str | None = None
    covariate: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "continuous", "ratio"):
            raise ValueError(f"metric {self.name!r}: kind must be 'binary', 'continuous' or 'ratio', not {self.kind!r}")
        if (self.kind == "ratio") != (self.denominator is not None):
            raise ValueError(f"metric {self.name!r}: a ratio metric, and only a ratio metric, has a denominator")
        if self.kind == "ratio" and self.covariate is not None:
            raise ValueError(f"metric {self.name!r}: CUPED is not applied to ratio metrics")


MetricsSpec = Mapping[str, MetricKind] | Sequence[Metric]


def _metrics(metrics: MetricsSpec) -> list[Metric]:
    if isinstance(metrics, Mapping):
        return [Metric(name, kind) for name, kind in metrics.items()]
    return list(metrics)


@dataclass(frozen=True)
class Comparison:
    """One metric, one variant vs control: the row of the lift report.

    ``abs_lift``, the intervals and p-values are CUPED-adjusted when ``cuped`` is true, and then
    ``*_unadjusted`` hold the same comparison without the pre-period; otherwise both are the same.
    """

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
    p_value_adjusted: float  # by LiftReport.correction (Holm's or Dunnett's); decisions read it
    srm_p_value: float  # NaN when the design is unknown (no allocation): not checked
    power: float
    mde: float
    decision: str
    se: float = math.nan
    method: str = ""
    cuped: bool = False
    cuped_theta: float = math.nan
    variance_reduction: float = math.nan  # 1 - var(CUPED) / var(unadjusted); NaN without CUPED
    abs_lift_unadjusted: float = math.nan
    ci_low_unadjusted: float = math.nan
    ci_high_unadjusted: float = math.nan
    p_value_unadjusted: float = math.nan
    seq_ci_low: float = math.nan  # always-valid interval (LiftReport.sequential_method)
    seq_ci_high: float = math.nan
    ci_low_simultaneous: float = math.nan  # with the metric's other comparisons with the control (Dunnett)
    ci_high_simultaneous: float = math.nan


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
    sequential_method: str = sequential.METHOD

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.comparisons])


def arm_stats(units: pd.DataFrame, metrics: MetricsSpec, *, variant_col: str = "variant") -> dict[str, dict[str, ArmStats]]:
    """Per arm and metric, the sufficient statistics of the unit rows: what SQL aggregates in the warehouse."""
    out: dict[str, dict[str, ArmStats]] = {}
    for arm, frame in units.groupby(units[variant_col].astype(str), sort=True):
        out[str(arm)] = {}
        for metric in _metrics(metrics):
            y = frame[metric.column or metric.name].to_numpy(dtype=float)
            second = metric.denominator or metric.covariate
            x = None if second is None else frame[second].to_numpy(dtype=float)
            out[str(arm)][metric.name] = ArmStats.from_values(y, x)
    return out


@dataclass(frozen=True)
class AnalysisOptions:
    """How one analysis compares its arms; every field defaults to the platform's usual analysis.

    ``allocation`` is the designed share per arm (weights, any scale) and must name every arm that has
    units; without it the design is unknown and the sample-ratio check is skipped (``srm_ok`` None,
    ``srm_note`` says why). ``srm_alpha`` is strict (0.001) because the check runs on every analysis and a
    false alarm discards a valid experiment. ``family`` is Holm's family: every metric x variant together
    (``"all"``) or, per metric, the k comparisons with the control (``"metric"``). ``correction`` is Holm's
    (default) or Dunnett's step-down (``"dunnett"``, with ``family="metric"``: it adjusts the k comparisons
    of one metric with the control). ``cuped`` adjusts metrics that name a pre-period covariate. ``planned`` is
    each arm's planned size, which tunes the always-valid interval (default: the sizes now, i.e. this look
    is the last).
    """

    control: str = "control"
    allocation: Mapping[str, float] | None = None
    alpha: float = 0.05
    power: float = 0.8
    srm_alpha: float = 0.001
    proportion_ci: ProportionCi = "wald"
    family: HolmFamily = "all"
    cuped: bool = True
    planned: Mapping[str, int] | None = None
    correction: Correction = "holm"


def analyze(units: pd.DataFrame, metrics: MetricsSpec, options: AnalysisOptions | None = None, *,
            variant_col: str = "variant") -> LiftReport:
    """Lift of every variant over ``options.control`` on every metric, from one row per randomised unit.

    ``metrics`` maps names to kinds (the column of the same name) or lists :class:`Metric`. A binary
    metric's column holds 0/1. See :class:`AnalysisOptions` for the design, corrections and CUPED.
    """
    return analyze_stats(arm_stats(units, metrics, variant_col=variant_col), metrics, options)


@dataclass(frozen=True)
class _SampleRatio:
    """The sample-ratio check of one analysis; ``ok`` None (and ``p`` NaN) when the design is unknown."""

    design: dict[str, float] | None
    p: float
    ok: bool | None
    note: str


@dataclass(frozen=True)
class _Estimated:
    """One metric x variant comparison before multiplicity correction."""

    metric: Metric
    variant: str
    primary: Estimate  # CUPED-adjusted where it applies, else ``raw``
    raw: Estimate
    se_design: float  # the standard error the MDE is read at


def analyze_stats(stats_by_arm: Mapping[str, Mapping[str, ArmStats]], metrics: MetricsSpec,
                  options: AnalysisOptions | None = None) -> LiftReport:
    """:func:`analyze` from per-arm sufficient statistics (``stats_by_arm[arm][metric]``), as SQL aggregates them."""
    options = options or AnalysisOptions()
    specs = _metrics(metrics)
    _check_analysis(stats_by_arm, specs, options)
    control = options.control
    counts = {arm: int(stats_by_arm[arm][specs[0].name].n) for arm in sorted(stats_by_arm)}
    check = _sample_ratio(counts, options)
    variants = [arm for arm in counts if arm != control]
    rows = [_estimate(metric, stats_by_arm[control][metric.name], stats_by_arm[variant][metric.name], variant,
                      options)
            for metric in specs for variant in variants]
    holm_adjusted, described = _holm(rows, specs, variants, control, options.family)
    adjusted = holm_adjusted
    if options.correction == "dunnett":
        adjusted, described = _dunnett(rows, specs, variants, control)
    critical = _simultaneous_critical(rows, specs, options.alpha)
    comparisons = tuple(
        _comparison(row, (p_holm, p_adj), (stats_by_arm[control][row.metric.name],
                                           stats_by_arm[row.variant][row.metric.name]), counts, check, options,
                    c)
        for row, p_holm, p_adj, c in zip(rows, holm_adjusted, adjusted, critical, strict=True))
    return LiftReport(
        control=control, counts=counts, allocation=check.design, srm_p_value=check.p, srm_ok=check.ok,
        alpha=options.alpha, comparisons=comparisons, correction=described, srm_note=check.note,
    )


def _check_analysis(stats_by_arm: Mapping[str, Mapping[str, ArmStats]], specs: list[Metric],
                    options: AnalysisOptions) -> None:
    if not specs:
        raise ValueError("no metric to analyse")
    if options.control not in stats_by_arm:
        raise ValueError(f"no units in control arm {options.control!r}")
    if options.correction not in ("holm", "dunnett"):
        raise ValueError(f"correction must be 'holm' or 'dunnett', not {options.correction!r}")
    if options.correction == "dunnett" and options.family != "metric" and len(specs) > 1:
        raise ValueError("Dunnett's test adjusts the k comparisons of one metric with the control: "
                         "use family='metric' (or Holm over every metric)")


def _sample_ratio(counts: Mapping[str, int], options: AnalysisOptions) -> _SampleRatio:
    if options.allocation is None:
        return _SampleRatio(None, math.nan, None, "design unknown (no allocation given): sample-ratio check skipped")
    design = {str(k): float(v) for k, v in options.allocation.items()}
    srm = srm_p_value(counts, design)
    return _SampleRatio(design, srm, srm >= options.srm_alpha,
                        f"chi-square against the designed allocation, p={srm:.4g} "
                        f"(mismatch below {options.srm_alpha:g})")


def _estimate(metric: Metric, c: ArmStats, v: ArmStats, variant: str, options: AnalysisOptions) -> _Estimated:
    raw, se_design = _unadjusted(metric, c, v, options.alpha, options.proportion_ci)
    primary = raw
    if options.cuped and _cuped_applies(metric, c, v):
        primary = cuped_difference(c, v, alpha=options.alpha)
        se_design = primary.se
    return _Estimated(metric, variant, primary, raw, se_design)


def _comparison(row: _Estimated, p_values: tuple[float, float], arms: tuple[ArmStats, ArmStats],
                counts: Mapping[str, int], check: _SampleRatio, options: AnalysisOptions,
                critical: float | None) -> Comparison:
    """The report's row of one comparison; ``p_values`` are (Holm's, the chosen correction's), ``arms``
    (control, variant), ``critical`` the simultaneous intervals' c (None: the comparison is its metric's only)."""
    metric, est, raw, alpha = row.metric, row.primary, row.raw, options.alpha
    simultaneous = (est.ci_low, est.ci_high) if critical is None else (
        est.diff - critical * est.se, est.diff + critical * est.se)
    p_holm, p_adj = p_values
    control = options.control
    n_c, n_v = counts[control], counts[row.variant]
    rel, rel_low, rel_high = relative_interval(est, alpha=alpha)
    mde = mde_at(row.se_design, alpha=alpha, power=options.power)
    information = 1.0 if options.planned is None else sequential.information_fraction(
        n_c, n_v, options.planned[control], options.planned[row.variant])
    seq_low, seq_high = sequential.confidence_sequence(est, information, alpha=alpha)
    is_cuped = est is not raw
    means = (raw.mean_control, raw.mean_variant) if metric.kind == "ratio" else (arms[0].y_mean, arms[1].y_mean)
    return Comparison(
        metric=metric.name, kind=metric.kind, variant=row.variant, control=control, n_control=n_c, n_variant=n_v,
        mean_control=means[0], mean_variant=means[1], abs_lift=est.diff, rel_lift=rel,
        ci_low=est.ci_low, ci_high=est.ci_high, rel_ci_low=rel_low, rel_ci_high=rel_high,
        p_value=est.p_value, p_value_holm=p_holm, p_value_adjusted=p_adj, srm_p_value=check.p,
        power=power_at(est.diff, est.se, alpha=alpha), mde=mde,
        decision=_decision(row, rel, p_adj, mde, check, options, None if critical is None else simultaneous),
        se=est.se, method=est.method, cuped=is_cuped, cuped_theta=est.theta,
        variance_reduction=1 - est.se**2 / raw.se**2 if is_cuped and raw.se > 0 else math.nan,
        abs_lift_unadjusted=raw.diff, ci_low_unadjusted=raw.ci_low, ci_high_unadjusted=raw.ci_high,
        p_value_unadjusted=raw.p_value, seq_ci_low=seq_low, seq_ci_high=seq_high,
        ci_low_simultaneous=simultaneous[0], ci_high_simultaneous=simultaneous[1],
    )


def _cuped_applies(metric: Metric, c: ArmStats, v: ArmStats) -> bool:
    """Whether CUPED can adjust the comparison: a pre-period covariate that varies and, for a 0/1 outcome, an
    event and a non-event in each arm.

    CUPED's interval is Welch's on the adjusted outcome's variance, which a 0/1 outcome without variation in
    an arm does not have: no conversion in either arm gives theta 0 and the interval [0, 0], a certainty a
    few dozen members cannot give, and none in one arm a Wald interval at the boundary. The unadjusted
    comparison (Newcombe's score interval where asked) stays honest there, so it is the estimate.
    """
    if metric.covariate is None or not (c.has_x and v.has_x) or (c.sxx + v.sxx) <= 0:
        return False
    return metric.kind != "binary" or all(0 < arm.y_sum < arm.n for arm in (c, v))


def _unadjusted(metric: Metric, c: ArmStats, v: ArmStats, alpha: float, proportion_ci: ProportionCi
                ) -> tuple[Estimate, float]:
    """The comparison without CUPED and the standard error a designer would have planned the MDE with."""
    if metric.kind == "binary":
        est = proportion_difference(c.without_x(), v.without_x(), alpha=alpha, ci=proportion_ci)
        # MDE from the control rate in both arms: the effect size a designer would have planned for.
        base = c.y_mean
        return est, math.sqrt(base * (1 - base) * (1 / c.n + 1 / v.n))
    if metric.kind == "continuous":
        est = mean_difference(c, v, alpha=alpha)
        return est, est.se
    est = ratio_difference(c, v, alpha=alpha)
    return est, est.se


def _per_metric(rows: list[_Estimated], specs: list[Metric]) -> list[list[int]]:
    """The positions in ``rows`` of each metric's comparisons with the control: the family of each correction."""
    return [[i for i, r in enumerate(rows) if r.metric.name == metric.name] for metric in specs]


def _holm(rows: list[_Estimated], specs: list[Metric], variants: list[str], control: str, family: HolmFamily
          ) -> tuple[list[float], str]:
    if family == "all":
        adjusted = holm([r.primary.p_value for r in rows])
        return adjusted, (f"Holm over all {len(rows)} comparisons ({len(specs)} metrics x {len(variants)} arms "
                          f"vs {control})")
    if family == "metric":
        adjusted = [math.nan] * len(rows)
        for idx in _per_metric(rows, specs):
            for i, p in zip(idx, holm([rows[i].primary.p_value for i in idx]), strict=True):
                adjusted[i] = p
        return adjusted, f"Holm over the {len(variants)} comparisons with {control}, per metric"
    raise ValueError(f"Holm family must be 'all' or 'metric', not {family!r}")


def _dunnett(rows: list[_Estimated], specs: list[Metric], variants: list[str], control: str) -> tuple[list[float], str]:
    """Dunnett's step-down adjusted p-values per metric over the k comparisons with the control.

    The comparisons share the control's mean, so cov(D_i, D_j) = var(control mean) and the correlation is
    var_c / sqrt(V_i V_j), V the difference's variance (under equal variances and no CUPED,
    1 / sqrt((1 + n_c/n_i)(1 + n_c/n_j)), Dunnett's). CUPED's theta differs a little between comparisons;
    the control's term is then sqrt(var_c,i var_c,j), exact when the thetas agree.
    """
    adjusted = [math.nan] * len(rows)
    for idx in _per_metric(rows, specs):
        ests: list[Estimate] = [rows[i].primary for i in idx]
        p = many_to_one_step_down([e.statistic for e in ests], _correlation(ests), [e.df for e in ests])
        for i, value in zip(idx, p, strict=True):
            adjusted[i] = value
    return adjusted, (f"Dunnett step-down over the {len(variants)} comparisons with {control}, per metric "
                      "(max-|t| of the multivariate t)")


def _correlation(ests: Sequence[Estimate]) -> np.ndarray:
    """Correlation of comparisons sharing the control: var_c / sqrt(V_i V_j) (see :func:`_dunnett`)."""
    var = np.array([e.var_control + e.var_variant for e in ests])
    shared = np.sqrt(np.outer([e.var_control for e in ests], [e.var_control for e in ests]))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.nan_to_num(shared / np.sqrt(np.outer(var, var)))
    np.fill_diagonal(rho, 1.0)
    return rho


def _simultaneous_critical(rows: list[_Estimated], specs: list[Metric], alpha: float) -> list[float | None]:
    """Per comparison, the c of its metric's simultaneous intervals; None where the metric has one comparison."""
    critical: list[float | None] = [None] * len(rows)
    for idx in _per_metric(rows, specs):
        ests = [rows[i].primary for i in idx]
        if len(ests) < 2 or not all(math.isfinite(e.se) and e.se > 0 for e in ests):
            continue
        c = many_to_one_critical(_correlation(ests), min(e.df for e in ests), alpha=alpha)
        for i in idx:
            critical[i] = c
    return critical


def _decision(row: _Estimated, rel: float, p_adj: float, mde: float, check: _SampleRatio,
              options: AnalysisOptions, simultaneous: tuple[float, float] | None) -> str:
    metric, variant, control, result = row.metric.name, row.variant, options.control, row.primary
    srm, srm_ok, alpha, power = check.p, check.ok, options.alpha, options.power
    if srm_ok is False:
        return (
            f"Do not use: arm sizes differ from the design (sample ratio mismatch, p={srm:.2g}); "
            "fix the assignment before reading any lift."
        )
    unchecked = " Sample ratio not checked: the design is unknown." if srm_ok is None else ""
    level = f"{1 - alpha:.0%}"
    interval = f"{level} CI [{result.ci_low:+.4g}, {result.ci_high:+.4g}]"
    if simultaneous is not None:
        interval += f"; simultaneous with the other arms [{simultaneous[0]:+.4g}, {simultaneous[1]:+.4g}]"
    relative = "" if math.isnan(rel) else f" ({rel:+.1%})"
    adjusted = f"{options.correction.capitalize()}-adjusted p={p_adj:.2g}"
    if p_adj < alpha:
        direction = "beats" if result.diff > 0 else "is worse than"
        return (
            f"{variant} {direction} {control} on {metric}: {result.diff:+.4g}{relative} ({interval}, "
            f"{adjusted}).{unchecked}"
        )
    return (
        f"No detectable difference between {variant} and {control} on {metric} "
        f"({result.diff:+.4g}{relative}, {interval}, {adjusted}); the test could only detect "
        f"a change of about {mde:.4g} with {power:.0%} power.{unchecked}"
    )
