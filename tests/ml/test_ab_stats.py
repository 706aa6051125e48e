"""The statistics core (ml.stats) against textbook and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml import ab
from ml.stats import (
    ArmStats,
    cuped_difference,
    cuped_theta,
    dunnett,
    holm,
    many_to_one,
    many_to_one_critical,
    many_to_one_step_down,
    mean_difference,
    proportion_difference,
    ratio_difference,
    sequential,
)


def test_holm_wikipedia_example() -> None:
    # Wikipedia, "Holm-Bonferroni method", Example: four hypotheses with p = 0.01, 0.04, 0.03, 0.005 at
    # alpha 0.05. Sorted 0.005 < 0.05/4, 0.01 < 0.05/3, 0.03 > 0.05/2: H4 and H1 rejected, then stop.
    # Adjusted: 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in adjusted] == [True, False, False, True]


def test_dunnett_1955_blood_count_example_from_sufficient_statistics() -> None:
    # Dunnett (1955, JASA 50:1096), the example scipy.stats.dunnett documents: blood counts (millions per
    # cubic mm) of a control and two drugs. Pooled s^2 = (within-arm squares 4.4206 + 2.4496 + 9.69608) / (15 - 3)
    # = 1.380523, df 12; t = (mean - 8.25) / (s sqrt(1/n + 1/6)) = 0.65 / (1.174956 x 0.645497) = 0.857032 (drug
    # A, mean 8.9) and 2.628 / (1.174956 x 0.605530) = 3.693752 (drug B, 10.878). rho = 1 / sqrt((1 + 6/4)(1 + 6/5)) = 0.426401. Adjusted p, by integrating the bivariate
    # normal rectangle over the chi distribution of s (scipy.integrate.quad, 1e-12): 0.6201020 and 0.0058254.
    # Drug B differs at 1 %, drug A not at all, as the paper concludes.
    control, a, b = [7.40, 8.50, 7.20, 8.24, 9.84, 8.32], [9.76, 8.80, 7.68, 9.36], [12.80, 9.68, 12.16, 9.20, 10.55]
    statistics, p_values, df = dunnett(ArmStats.from_values(control), [ArmStats.from_values(a), ArmStats.from_values(b)])
    assert df == 12 and statistics == pytest.approx([0.857032, 3.693752], rel=1e-6)
    assert p_values == pytest.approx([0.6201020, 0.0058254], abs=2e-6)
    # scipy's own, from the unit rows: the same statistics; its p-values carry its integral's error (1e-4).
    reference = stats.dunnett(a, b, control=control, random_state=0)
    assert statistics == pytest.approx(reference.statistic.tolist(), rel=1e-12)
    assert p_values == pytest.approx(reference.pvalue.tolist(), abs=3e-4)


def test_many_to_one_at_dunnetts_tabled_critical_values() -> None:
    # Dunnett's tables (1955; 1964, Biometrics 20:482), two-sided 5 %, equal arms (rho = 0.5): 2.21, 2.35
    # and 2.44 for 2, 3 and 4 arms with infinite df, 2.57 for 2 arms with 10 df. Rounded to 2 decimals, so
    # p is 0.05 to within the density there (~0.14 per unit of t: 7e-4).
    def equal(k: int) -> np.ndarray:
        return np.full((k, k), 0.5) + 0.5 * np.eye(k)

    for k, critical, df in ((2, 2.21, math.inf), (3, 2.35, math.inf), (4, 2.44, math.inf), (2, 2.57, 10)):
        assert many_to_one([critical] * k, equal(k), df) == pytest.approx([0.05] * k, abs=1e-3), (k, df)
    # One arm is no family: the raw two-sided p. Far in the tail, Bonferroni's 2 p, to which Dunnett converges.
    assert many_to_one([1.959964], [[1.0]]) == pytest.approx([0.05], rel=1e-5)
    tail = many_to_one([6.0, 1.0], equal(2))
    assert tail[0] == pytest.approx(2 * 2 * stats.norm.sf(6.0), rel=1e-12) and 0.317 < tail[1] < 2 * 0.3173


def test_many_to_one_critical_values_are_dunnetts_table_and_scipys_intervals() -> None:
    # Dunnett's critical values, two-sided 5 %, equal arms (rho = 0.5), infinite df: 2.212 for k = 2 and
    # 2.349 for k = 3 (Bechhofer & Dunnett 1988's three-decimal tables); 2.57 for k = 2 at 10 df (1955).
    def equal(k: int) -> np.ndarray:
        return np.full((k, k), 0.5) + 0.5 * np.eye(k)

    assert many_to_one_critical(equal(2)) == pytest.approx(2.212, abs=5e-4)
    assert many_to_one_critical(equal(3)) == pytest.approx(2.349, abs=5e-4)
    assert many_to_one_critical(equal(2), 10) == pytest.approx(2.57, abs=5e-3)
    assert many_to_one_critical([[1.0]]) == pytest.approx(stats.norm.isf(0.025), rel=1e-12)
    # The critical value is where the adjusted p-value crosses alpha.
    c = many_to_one_critical(equal(2), 40)
    assert many_to_one([c, 0.0], equal(2), 40)[0] == pytest.approx(0.05, abs=1e-9)
    # scipy.stats.dunnett's simultaneous intervals on unit rows (pooled variance, equal variances): mean
    # difference +/- c s sqrt(1/n_i + 1/n_0), c from the same correlation and N - k - 1 df.
    control, a, b = [7.40, 8.50, 7.20, 8.24, 9.84, 8.32], [9.76, 8.80, 7.68, 9.36], [12.80, 9.68, 12.16, 9.20, 10.55]
    reference = stats.dunnett(a, b, control=control, random_state=0).confidence_interval()
    s = math.sqrt(sum(float(np.sum((np.array(x) - np.mean(x)) ** 2)) for x in (control, a, b)) / 12)
    rho = 1 / math.sqrt((1 + 6 / 4) * (1 + 6 / 5))
    c = many_to_one_critical([[1.0, rho], [rho, 1.0]], 12)
    for arm, low, high in zip((a, b), reference.low, reference.high, strict=True):
        half = c * s * math.sqrt(1 / len(arm) + 1 / len(control))
        diff = np.mean(arm) - np.mean(control)
        # scipy's critical value carries its lattice rule's error (about 1e-3 of t here).
        assert (diff - half, diff + half) == pytest.approx((low, high), abs=5e-3)


def test_step_down_is_below_holm_and_the_single_step() -> None:
    # Three arms, rho = 0.5, z = 2.5, 2.2, 1.0 (raw p 0.012419, 0.027807, 0.317311). Step 1 is the single
    # step's p of the best arm (max of 3 |Z|); step 2 the max of the last two |Z| at 2.2; step 3 the raw p.
    # Holm's steps are Bonferroni's bounds of the same: 3 x 0.012419, 2 x 0.027807, 0.317311.
    rho = np.full((3, 3), 0.5) + 0.5 * np.eye(3)
    z = [2.5, 2.2, 1.0]
    step = many_to_one_step_down(z, rho)
    single = many_to_one(z, rho)
    raw = [2 * stats.norm.sf(x) for x in z]
    assert step[0] == pytest.approx(single[0], abs=1e-12)
    assert step[1] == pytest.approx(many_to_one([2.2, 1.0], rho[:2, :2])[0], abs=1e-12)
    assert step[2] == pytest.approx(raw[2], rel=1e-12)
    assert all(s <= h + 1e-12 and s <= o + 1e-12 for s, h, o in zip(step, holm(raw), single, strict=True))
    assert step == sorted(step) and step[1] < holm(raw)[1]


def test_two_comparisons_integrate_like_quadrature() -> None:
    # The deterministic bivariate t rule against scipy.integrate.quad over the chi scale (1e-12) and against
    # the lattice rule scipy.stats.multivariate_t uses for three or more arms.
    from scipy import integrate

    rho, c = 0.4, 2.3
    cov = np.array([[1.0, rho], [rho, 1.0]])
    for df in (3.0, 12.0, 3000.0):
        def rectangle(s: float, df: float = df) -> float:
            upper = np.full(2, c * s)
            return stats.multivariate_normal.cdf(upper, np.zeros(2), cov, lower_limit=-upper) * stats.chi.pdf(
                s * math.sqrt(df), df) * math.sqrt(df)

        exact = 1 - integrate.quad(rectangle, 0, np.inf, epsabs=1e-13, limit=200)[0]
        assert many_to_one([c, 0.0], cov, df)[0] == pytest.approx(exact, abs=1e-9), df
        lattice = 1 - stats.multivariate_t(shape=cov, df=df, seed=0).cdf(np.full(2, c), lower_limit=-np.full(2, c),
                                                                        maxpts=200_000)
        assert exact == pytest.approx(lattice, abs=1e-4), df


def test_welch_from_sufficient_statistics_matches_scipy() -> None:
    rng = np.random.default_rng(11)
    c, v = rng.lognormal(2, 1, 500), rng.lognormal(2.1, 1.1, 300)
    est = mean_difference(ArmStats.from_values(c), ArmStats.from_values(v))
    ref = stats.ttest_ind_from_stats(v.mean(), v.std(ddof=1), len(v), c.mean(), c.std(ddof=1), len(c), equal_var=False)
    assert (est.statistic, est.p_value) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)


def test_proportions_from_sufficient_statistics_newcombe_1998() -> None:
    # Newcombe (1998), Stat Med 17:873, example 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    est = proportion_difference(ArmStats(80, 48, 48), ArmStats(70, 56, 56), ci="newcombe")
    assert (est.ci_low, est.ci_high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_delta_method_ratio_by_hand() -> None:
    # Revenue per order (AOV) over units (revenue y, orders x). Delta method (Deng, Knoblich & Lu 2018, KDD,
    # "Applying the Delta Method in Metric Analytics", eq. 3): var(R) = var(y - R x) / (n mean(x)^2).
    #   control (20,1) (60,2) (0,0) (40,1): R = 120/4 = 30; y - 30x = -10, 0, 0, 10 -> var 200/3;
    #     var(R) = (200/3) / (4 x 1^2) = 16.6667
    #   variant (50,1) (0,0) (90,2) (100,2): R = 240/5 = 48; y - 48x = 2, 0, -6, 4 -> var 56/3;
    #     var(R) = (56/3) / (4 x 1.25^2) = 2.98667
    # diff 18, se sqrt(19.65333) = 4.433208, z = 4.060265, 95 % CI 18 +/- 1.959964 x 4.433208 = [9.31110, 26.68890]
    control = ArmStats.from_values([20, 60, 0, 40], [1, 2, 0, 1])
    variant = ArmStats.from_values([50, 0, 90, 100], [1, 0, 2, 2])
    est = ratio_difference(control, variant)
    assert (est.mean_control, est.mean_variant, est.diff) == pytest.approx((30, 48, 18))
    assert (est.var_control, est.var_variant) == pytest.approx((16.666667, 2.986667), rel=1e-6)
    assert est.se == pytest.approx(4.433208, rel=1e-6)
    assert est.statistic == pytest.approx(4.060265, rel=1e-6)
    assert (est.ci_low, est.ci_high) == pytest.approx((9.31110, 26.68890), rel=1e-5)


def test_cuped_by_hand_equals_ancova_adjusted_difference() -> None:
    # CUPED (Deng, Xu, Kohavi & Walker 2013) with theta pooled within arms is the ANCOVA difference of adjusted
    # means with the within-treatment slope Exy / Exx (Montgomery, Design and Analysis of Experiments, ch. 15).
    #   control (y, x): (3,1) (5,2) (7,3): Sxx 2, Sxy 4, Syy 8; means y 5, x 2
    #   variant (y, x): (6,2) (8,4) (7,3): Sxx 2, Sxy 2, Syy 2; means y 7, x 3
    #   theta = (4 + 2) / (2 + 2) = 1.5; adjusted diff = (7 - 5) - 1.5 (3 - 2) = 0.5
    #   adjusted variances: control 4 - 2(1.5)(2) + 1.5^2 (1) = 0.25, variant 1 - 2(1.5)(1) + 2.25 = 0.25; /3 each
    #   se = sqrt(0.25/3 + 0.25/3) = 0.408248; Welch df = 4; t = 1.224745;
    #   CI 0.5 +/- t(0.975, 4) 2.776445 x 0.408248 = [-0.633479, 1.633479]
    #   unadjusted: diff 2, se sqrt(4/3 + 1/3) = 1.290994; variance reduction 1 - (1/6) / (5/3) = 0.9
    control = ArmStats.from_values([3, 5, 7], [1, 2, 3])
    variant = ArmStats.from_values([6, 8, 7], [2, 4, 3])
    assert cuped_theta([control, variant]) == pytest.approx(1.5)
    est = cuped_difference(control, variant)
    assert est.diff == pytest.approx(0.5)
    assert est.se == pytest.approx(0.408248, rel=1e-5) and est.df == pytest.approx(4.0)
    assert (est.ci_low, est.ci_high) == pytest.approx((-0.633479, 1.633479), rel=1e-5)
    # ANCOVA by least squares (y ~ 1 + arm + x): the arm coefficient is the adjusted difference, x's is theta.
    design = np.array([[1, 0, 1], [1, 0, 2], [1, 0, 3], [1, 1, 2], [1, 1, 4], [1, 1, 3]], dtype=float)
    coef, *_ = np.linalg.lstsq(design, np.array([3, 5, 7, 6, 8, 7], dtype=float), rcond=None)
    assert (coef[1], coef[2]) == pytest.approx((0.5, 1.5))
    report = ab.analyze(
        pd.DataFrame({"variant": ["control"] * 3 + ["treatment"] * 3, "y": [3, 5, 7, 6, 8, 7], "pre": [1, 2, 3, 2, 4, 3]}),
        [ab.Metric("y", "continuous", covariate="pre")],
    )
    [row] = report.comparisons
    assert row.cuped and row.abs_lift == pytest.approx(0.5) and row.abs_lift_unadjusted == pytest.approx(2.0)
    assert row.variance_reduction == pytest.approx(0.9)
    assert row.ci_low_unadjusted == pytest.approx(2 - stats.t.isf(0.025, (5 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (1 / 3) ** 2 / 2))
                                                  * math.sqrt(5 / 3))
    # Without pre-period variation theta is undefined: the comparison is the unadjusted one, not CUPED.
    flat = pd.DataFrame({"variant": ["control", "control", "t", "t"], "y": [1, 2, 3, 5], "pre": [0, 0, 0, 0]})
    assert not ab.analyze(flat, [ab.Metric("y", "continuous", covariate="pre")]).comparisons[0].cuped


def test_confidence_sequence_is_johari_mixture_boundary() -> None:
    # At the interval's edge the mSPRT statistic of Johari et al. (2017), sqrt(V / (V + tau^2))
    # exp(tau^2 diff^2 / (2 V (V + tau^2))), equals 1 / alpha = 20.
    r = sequential.best_mixing_ratio(0.05)
    assert r == pytest.approx(8.2119, rel=1e-3)
    for se, information in ((0.5, 1.0), (2.0, 0.25)):
        half = sequential.half_width(se, information)
        v, tau2 = se**2, r * information * se**2
        assert math.sqrt(v / (v + tau2)) * math.exp(tau2 * half**2 / (2 * v * (v + tau2))) == pytest.approx(20)
    # By hand at the planned size: sqrt((1 + r) / r x log((1 + r) / 0.05^2)) = 3.035122 standard errors,
    # 1.55 times the fixed-n 1.959964; at a quarter of the planned information sqrt(1.487081 log(1221.19)) = 3.25110.
    assert sequential.half_width(1.0, 1.0) == pytest.approx(3.035122, rel=1e-5)
    assert sequential.half_width(1.0, 0.25) == pytest.approx(3.25110, rel=1e-4)


def test_report_from_sufficient_statistics_equals_report_from_units() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    units = pd.DataFrame({"variant": rng.choice(["control", "a", "b"], size=n, p=[0.5, 0.25, 0.25])})
    units["pre"] = rng.gamma(1.0, 30.0, n)
    units["orders"] = rng.poisson(0.3, n)
    units["revenue"] = units["orders"] * rng.gamma(2.0, 20.0, n) + 0.2 * units["pre"]
    units["converted"] = (units["orders"] > 0).astype(int)
    metrics = [ab.Metric("converted", "binary"), ab.Metric("revenue", "continuous", covariate="pre"),
               ab.Metric("aov", "ratio", column="revenue", denominator="orders")]
    options = ab.AnalysisOptions(family="metric")
    from_units = ab.analyze(units, metrics, options).frame()
    from_stats = ab.analyze_stats(ab.arm_stats(units, metrics), metrics, options).frame()
    pd.testing.assert_frame_equal(from_units, from_stats)
    assert set(from_units["method"].str.split(" ").str[0]) == {"two-proportion", "CUPED", "difference"}
    assert (from_units["seq_ci_low"] < from_units["ci_low"]).all() and (from_units["seq_ci_high"] > from_units["ci_high"]).all()
