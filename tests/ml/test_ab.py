"""A/B analysis reproduces textbook computations done by hand here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml import ab


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_two_proportion_z_test_by_hand() -> None:
    # control 200/2000 = 10 %, variant 250/2000 = 12.5 %
    result = ab.two_proportion_test(200, 2000, 250, 2000)
    pooled = 450 / 4000
    se_pooled = math.sqrt(pooled * (1 - pooled) * (2 / 2000))
    z = 0.025 / se_pooled
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(2 * (1 - _phi(z)), rel=1e-9)
    se = math.sqrt(0.1 * 0.9 / 2000 + 0.125 * 0.875 / 2000)
    assert result.ci_low == pytest.approx(0.025 - 1.959963984540054 * se, rel=1e-9)
    assert result.ci_high == pytest.approx(0.025 + 1.959963984540054 * se, rel=1e-9)


def test_z_test_equals_chi_square_without_correction() -> None:
    result = ab.two_proportion_test(200, 2000, 250, 2000)
    table = np.array([[200, 1800], [250, 1750]])
    _, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_intervals_match_newcombe_1998_example() -> None:
    # Newcombe (1998), Stat Med 17:873, example 56/70 vs 48/80: Wald (method 1) 0.0575 to 0.3425,
    # hybrid score (method 10) 0.0524 to 0.3339
    wald = ab.two_proportion_test(48, 80, 56, 70, ci="wald")
    assert wald.diff == pytest.approx(0.2)
    assert (wald.ci_low, wald.ci_high) == pytest.approx((0.0575, 0.3425), abs=5e-5)
    newcombe = ab.two_proportion_test(48, 80, 56, 70, ci="newcombe")
    assert (newcombe.ci_low, newcombe.ci_high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_wilson_interval_by_hand() -> None:
    low, high = ab.wilson_interval(81, 263)
    z, n, p = 1.959963984540054, 263, 81 / 263
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half), rel=1e-12)


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    control = rng.gamma(2.0, 10.0, size=400)
    variant = rng.gamma(2.2, 11.0, size=300)
    result = ab.welch_test(control, variant)
    reference = stats.ttest_ind(variant, control, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    ci = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert ab.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ab.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert ab.holm([]) == []


def test_srm_chi_square_by_hand() -> None:
    # 5000 vs 5200 against 50/50: expected 5100 each, statistic 2 * 100^2 / 5100, df 1
    statistic = 2 * 100**2 / 5100
    assert ab.srm_p_value({"control": 5000, "treatment": 5200}, {"control": 0.5, "treatment": 0.5}) == pytest.approx(
        math.erfc(math.sqrt(statistic / 2)), rel=1e-9
    )
    # 10 % holdout: 1000 vs 9000 is exactly on design
    assert ab.srm_p_value({"holdout": 1000, "treated": 9000}, {"holdout": 0.1, "treated": 0.9}) == pytest.approx(1.0)


def test_sample_size_closed_form() -> None:
    # baseline 10 %, detect +2 points, alpha 0.05, power 0.8, equal arms, by hand:
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    p1, p2, p_bar = 0.10, 0.12, 0.11
    n = (z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / 0.02**2
    assert ab.sample_size_for_mde(0.10, 0.02) == (math.ceil(n), math.ceil(n))
    assert math.ceil(n) == 3841


def test_sample_size_with_a_holdout_ratio_reaches_the_power() -> None:
    n_c, n_t = ab.sample_size_for_mde(0.05, 0.01, ratio=9)
    assert n_t == 9 * n_c
    # a 10 % control arm needs fewer control units than an equal split's arm, but more units in all
    n_equal = ab.sample_size_for_mde(0.05, 0.01)[0]
    assert n_c < n_equal < n_t and n_c + n_t > 2 * n_equal
    # power of the pooled z-test at that size, by hand: Phi((mde - z_a * se_null) / se_alt)
    p_bar = (0.05 * n_c + 0.06 * n_t) / (n_c + n_t)
    se_null = math.sqrt(p_bar * (1 - p_bar) * (1 / n_c + 1 / n_t))
    se_alt = math.sqrt(0.05 * 0.95 / n_c + 0.06 * 0.94 / n_t)
    assert _phi((0.01 - 1.959963984540054 * se_null) / se_alt) == pytest.approx(0.8, abs=2e-3)


def test_power_and_mde_are_inverse() -> None:
    assert ab.power_at(ab.mde_at(0.01), 0.01) == pytest.approx(0.8, abs=1e-3)
    assert ab.power_at(0.0, 0.01) == pytest.approx(0.05)


# --------------------------------------------------------------------------------------- the report


def _units(seed: int = 0, n: int = 12_000, lift: float = 0.04) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "email", "push"], size=n)
    rate = np.where(variant == "email", 0.10 + lift, 0.10)
    converted = rng.random(n) < rate
    revenue = np.where(converted, rng.gamma(2.0, 20.0, size=n), 0.0)
    return pd.DataFrame({"variant": variant, "converted": converted.astype(int), "revenue": revenue})


def test_report_rows_and_holm_family() -> None:
    units = _units()
    report = ab.analyze(units, {"converted": "binary", "revenue": "continuous"},
                        ab.AnalysisOptions(allocation={"control": 1, "email": 1, "push": 1}))
    frame = report.frame()
    assert len(frame) == 4  # 2 metrics x 2 variants
    assert report.srm_ok and report.correction == "Holm over all 4 comparisons (2 metrics x 2 arms vs control)"
    np.testing.assert_allclose(frame["p_value_holm"], ab.holm(frame["p_value"].tolist()))
    row = frame.set_index(["metric", "variant"]).loc[("converted", "email")]
    c = units[units.variant == "control"].converted
    v = units[units.variant == "email"].converted
    direct = ab.two_proportion_test(int(c.sum()), len(c), int(v.sum()), len(v))
    assert row["p_value"] == pytest.approx(direct.p_value)
    assert row["abs_lift"] == pytest.approx(v.mean() - c.mean())
    assert row["rel_lift"] == pytest.approx(v.mean() / c.mean() - 1)
    assert row["rel_ci_low"] < row["rel_lift"] < row["rel_ci_high"]
    assert row["n_control"] == len(c)
    assert "email beats control on converted" in row["decision"]
    no_effect = frame.set_index(["metric", "variant"]).loc[("converted", "push")]
    assert no_effect["decision"].startswith("No detectable difference")


def test_report_flags_sample_ratio_mismatch() -> None:
    units = _units()
    # drop half of the push arm: assignment broke
    push = units.index[units.variant == "push"]
    broken = units.drop(push[: len(push) // 2])
    report = ab.analyze(broken, {"converted": "binary"}, ab.AnalysisOptions(allocation={"control": 1, "email": 1, "push": 1}))
    assert not report.srm_ok
    assert all(c.decision.startswith("Do not use") for c in report.comparisons)


def test_report_uses_designed_allocation() -> None:
    rng = np.random.default_rng(3)
    units = pd.DataFrame(
        {"variant": rng.choice(["holdout", "treated"], p=[0.1, 0.9], size=5000), "converted": rng.random(5000) < 0.1}
    )
    report = ab.analyze(units, {"converted": "binary"},
                         ab.AnalysisOptions(control="holdout", allocation={"holdout": 0.1, "treated": 0.9}))
    assert report.srm_ok
    equal = {"holdout": 1, "treated": 1}
    assert not ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(control="holdout", allocation=equal)).srm_ok


def test_an_unknown_design_skips_the_sample_ratio_check_and_says_so() -> None:
    # A 10 % holdout analysed without its allocation: assuming equal arms would call it broken (p ~ 0).
    rng = np.random.default_rng(3)
    units = pd.DataFrame(
        {"variant": rng.choice(["holdout", "treated"], p=[0.1, 0.9], size=5000), "converted": rng.random(5000) < 0.1}
    )
    report = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(control="holdout"))
    assert report.srm_ok is None and math.isnan(report.srm_p_value) and report.allocation is None
    assert "design unknown" in report.srm_note
    [comparison] = report.comparisons
    assert "Sample ratio not checked" in comparison.decision and not comparison.decision.startswith("Do not use")


def test_arms_outside_the_designed_allocation_are_refused_by_name() -> None:
    units = _units()
    with pytest.raises(ValueError, match=r"arms \['push'\] are not in the designed allocation.*assignment_probability"):
        ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(allocation={"control": 0.5, "email": 0.5}))
    # Given the push arm's share (e.g. its members' assignment probability), the same units are analysed.
    report = ab.analyze(units, {"converted": "binary"},
                        ab.AnalysisOptions(allocation={"control": 1 / 3, "email": 1 / 3, "push": 1 / 3}))
    assert report.srm_ok and {c.variant for c in report.comparisons} == {"email", "push"}


def test_srm_of_a_two_to_one_design_by_hand() -> None:
    # 2,040 treated and 960 controls of a 2:1 design: expected 2,000 and 1,000,
    # statistic 40^2/2000 + 40^2/1000 = 0.8 + 1.6 = 2.4 on 1 df, p = erfc(sqrt(2.4 / 2)) = 0.12134.
    units = pd.DataFrame({"variant": ["treatment"] * 2040 + ["control"] * 960, "converted": [0, 1] * 1500})
    report = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(allocation={"treatment": 2 / 3, "control": 1 / 3}))
    assert report.srm_p_value == pytest.approx(0.1213353, rel=1e-6) and report.srm_ok
    # The same arms judged as an equal split: 540^2/1500 x 2 = 388.8, a mismatch no valid 2:1 test should get.
    equal = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(allocation={"treatment": 1, "control": 1}))
    assert equal.srm_p_value == pytest.approx(stats.chi2.sf(388.8, 1), rel=1e-6) and not equal.srm_ok


def test_three_arms_against_a_shared_control_holm_by_hand() -> None:
    # control 100/1000 (10 %), variant_a 130/1000 (13 %), variant_b 115/1000 (11.5 %); pooled z-tests:
    #   a: pooled 230/2000 = 0.115, se = sqrt(0.115 x 0.885 x 2/1000) = sqrt(2.0355e-4) = 0.0142671,
    #      z = 0.03 / 0.0142671 = 2.10274, p = 2 (1 - Phi(2.10274)) = 0.0354885
    #   b: pooled 215/2000 = 0.1075, se = sqrt(0.1075 x 0.8925 x 2/1000) = 0.0138523,
    #      z = 0.015 / 0.0138523 = 1.08285, p = 0.278875
    # Holm over the k = 2 comparisons: the smaller p times 2 = 0.070977, the larger times 1 = 0.278875 (already
    # monotone). variant_a's raw p is below 0.05, its adjusted one is not: no winner is declared.
    def arm(name: str, converted: int) -> pd.DataFrame:
        return pd.DataFrame({"variant": name, "converted": [1] * converted + [0] * (1000 - converted)})

    units = pd.concat([arm("control", 100), arm("variant_a", 130), arm("variant_b", 115)], ignore_index=True)
    report = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(
        allocation=dict.fromkeys(("control", "variant_a", "variant_b"), 1), family="metric"))
    rows = report.frame().set_index("variant")
    assert rows.loc["variant_a", "p_value"] == pytest.approx(0.0354885, rel=1e-5)
    assert rows.loc["variant_b", "p_value"] == pytest.approx(0.278875, rel=1e-5)
    assert rows.loc["variant_a", "p_value_holm"] == pytest.approx(0.070977, rel=1e-5)
    assert rows.loc["variant_b", "p_value_holm"] == pytest.approx(0.278875, rel=1e-5)
    assert (rows["n_control"] == 1000).all() and report.correction == "Holm over the 2 comparisons with control, per metric"
    assert rows.loc["variant_a", "decision"].startswith("No detectable difference")


def test_three_arms_against_a_shared_control_dunnett_by_hand() -> None:
    # The arms above with Dunnett's many-to-one test instead of Holm. The two differences share the control's
    # variance 0.1 x 0.9 / 1000 = 9e-5; theirs are 9e-5 + 0.13 x 0.87 / 1000 = 2.031e-4 and 9e-5 + 0.115 x 0.885
    # / 1000 = 1.91775e-4, so rho = 9e-5 / sqrt(2.031e-4 x 1.91775e-4) = 0.456028. With z = 2.10274 and 1.08285:
    # P(max(|Z1|, |Z2|) >= z) = 0.066036 and 0.454497 (bivariate normal, rho 0.456): the single step, which lies
    # between the raw p (0.0355) and Bonferroni's (0.0710). The step-down keeps 0.066036 for the best arm (below
    # Holm's 0.070977) and tests the other alone: its raw p, 0.278875, as Holm's last step does.
    def arm(name: str, converted: int) -> pd.DataFrame:
        return pd.DataFrame({"variant": name, "converted": [1] * converted + [0] * (1000 - converted)})

    units = pd.concat([arm("control", 100), arm("variant_a", 130), arm("variant_b", 115)], ignore_index=True)
    report = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(family="metric", correction="dunnett"))
    rows = report.frame().set_index("variant")
    assert rows["p_value_adjusted"].tolist() == pytest.approx([0.066036, 0.278875], abs=2e-6)
    assert rows["p_value_holm"].tolist() == pytest.approx([0.070977, 0.278875], rel=1e-5)
    assert report.correction == ("Dunnett step-down over the 2 comparisons with control, per metric "
                                 "(max-|t| of the multivariate t)")
    assert "Dunnett-adjusted p=0.066" in rows.loc["variant_a", "decision"]
    # Holm's report: the adjusted p-value is Holm's.
    holm_rows = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(family="metric")).frame()
    assert holm_rows["p_value_adjusted"].tolist() == holm_rows["p_value_holm"].tolist()
    # Dunnett's family is one metric's comparisons with the control, not every metric at once.
    units["revenue"] = units["converted"] * 10.0
    with pytest.raises(ValueError, match="family='metric'"):
        ab.analyze(units, {"converted": "binary", "revenue": "continuous"}, ab.AnalysisOptions(correction="dunnett"))


def test_simultaneous_intervals_of_three_arms_by_hand() -> None:
    # The arms above. Simultaneous 95 % intervals are d +/- c se with P(max(|Z1|, |Z2|) <= c) = 0.95 at rho
    # 0.456028: c = 2.216758 (scipy's bivariate normal and a root finder; Dunnett's table has 2.212 at rho 0.5),
    # between the single comparison's 1.959964 and Bonferroni's 2.241403. variant_a: 0.03 +/- 2.216758 x
    # 0.0142513 = [-0.0015917, 0.0615917]; variant_b: 0.015 +/- 2.216758 x 0.0138483 = [-0.0156983, 0.0456983].
    # variant_a's own interval leaves out 0 (Wald, [0.002068, 0.057932]) but its family's does not, as its
    # Dunnett-adjusted p (0.066) says.
    def arm(name: str, converted: int) -> pd.DataFrame:
        return pd.DataFrame({"variant": name, "converted": [1] * converted + [0] * (1000 - converted)})

    units = pd.concat([arm("control", 100), arm("variant_a", 130), arm("variant_b", 115)], ignore_index=True)
    rows = ab.analyze(units, {"converted": "binary"}, ab.AnalysisOptions(family="metric", correction="dunnett")
                      ).frame().set_index("variant")
    assert rows["ci_low_simultaneous"].tolist() == pytest.approx([-0.0015917, -0.0156983], abs=2e-7)
    assert rows["ci_high_simultaneous"].tolist() == pytest.approx([0.0615917, 0.0456983], abs=2e-7)
    assert rows.loc["variant_a", "ci_low"] > 0
    assert "simultaneous with the other arms [-0.001592, +0.06159]" in rows.loc["variant_a", "decision"]
    # One comparison has nothing to be simultaneous with: its own interval, and the decision says no more.
    single = ab.analyze(units[units["variant"] != "variant_b"], {"converted": "binary"}).frame().iloc[0]
    assert (single["ci_low_simultaneous"], single["ci_high_simultaneous"]) == (single["ci_low"], single["ci_high"])
    assert "simultaneous" not in single["decision"]


def test_unknown_metric_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        ab.analyze(_units(), {"converted": "ordinal"})  # type: ignore[dict-item]
