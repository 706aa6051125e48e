"""The platform's one statistics core: lift, intervals and tests from per-arm sufficient statistics.

``estimators`` (binary, Welch, delta-method ratio, CUPED), ``sequential`` (always-valid intervals),
``design`` (Holm, Dunnett, sample-ratio check, power, sample size). ``ml.ab`` builds the lift report on them;
``measure``, the published ``kpi_campaign_lift`` table and the cycle report all go through ``ml.ab``.
"""

from ml.stats.design import (
    dunnett,
    holm,
    many_to_one,
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
    cuped_difference,
    cuped_theta,
    mean_difference,
    proportion_difference,
    ratio_difference,
    ratio_variance,
    relative_interval,
    wilson_interval,
)
from ml.stats.sequential import confidence_sequence, information_fraction

__all__ = [
    "ArmStats", "Estimate", "confidence_sequence", "cuped_difference", "cuped_theta", "dunnett", "holm",
    "information_fraction", "many_to_one", "many_to_one_critical", "many_to_one_step_down", "mde_at", "mean_difference", "power_at", "proportion_difference",
    "ratio_difference", "ratio_variance", "relative_interval", "sample_size_for_mde", "srm_p_value",
    "wilson_interval",
]
