"""The randomised holdout: sized by a power calculation, drawn stratified by action x segment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from ml.decide.config import DesignConfig, random_stream


def power_two_proportions(p0: float, lift: float, n_control: float, n_treatment: float, alpha: float) -> float:
    """Power of a two-sided two-proportion z-test to detect ``p0 -> p0 + lift``."""
    if n_control <= 0 or n_treatment <= 0:
        return 0.0
    p1 = min(p0 + lift, 1.0)
    se = math.sqrt(p0 * (1 - p0) / n_control + p1 * (1 - p1) / n_treatment)
    if se == 0:
        return 1.0
    return float(norm.cdf(abs(p1 - p0) / se - norm.ppf(1 - alpha / 2)))


def holdout_share_for_power(
    p0: float, lift: float, n: int, alpha: float, power: float, floor: float, cap: float
) -> tuple[float, float, bool]:
    """Smallest holdout share in [floor, cap] reaching ``power``; (share, power at share, underpowered).

    If even ``cap`` is not enough, fall back to ``floor``: a test that cannot reach its power this
    cycle is better pooled across cycles than paid for with half the campaign.
    """
    def power_at(h: float) -> float:
        return power_two_proportions(p0, lift, h * n, (1 - h) * n, alpha)

    if power_at(floor) >= power:
        return floor, power_at(floor), False
    if power_at(cap) < power:
        return floor, power_at(floor), True
    lo, hi = floor, cap  # power rises with the holdout share up to about one half
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if power_at(mid) >= power else (mid, hi)
    return hi, power_at(hi), False


def _systematic_holdout(strata: np.ndarray, n_holdout: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n_holdout`` of ``len(strata)`` rows, each with probability n_holdout/n, balanced on strata.

    Rows are shuffled within strata and laid out stratum by stratum; every (n/n_holdout)-th row from a
    random start goes to control, so each stratum gets the floor or ceiling of its share.
    """
    n = len(strata)
    order = np.lexsort((rng.random(n), strata))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    start = int(rng.integers(n))
    # Integer arithmetic so the count is exactly n_holdout and no float rounding moves a row.
    return ((position + 1) * n_holdout + start) // n - (position * n_holdout + start) // n == 1


@dataclass(frozen=True)
class Holdout:
    """The control arm of the planned customers and what it can measure."""

    control: np.ndarray  # (planned,) True where the customer is held out
    share: float  # realised: size / planned customers (the asked share when nobody is planned)
    size: int
    power: float  # to detect min_detectable_lift over baseline_conversion at the realised size
    underpowered: bool | None  # None: the share was given, not sized for power
    baseline_conversion: float

    def summary(self, config: DesignConfig) -> dict[str, Any]:
        """The plan summary's ``holdout`` entry."""
        return {"share": self.share, "size": self.size, "power": self.power, "underpowered": self.underpowered,
                "baseline_conversion": self.baseline_conversion, "min_detectable_lift": config.min_detectable_lift,
                "alpha": config.alpha, "target_power": config.power}


def draw_holdout(actions: np.ndarray, segments: np.ndarray, share: float, baseline_conversion: float,
                 underpowered: bool | None, config: DesignConfig) -> Holdout:
    """Hold out ``share`` of the planned customers (``actions``, ``segments``: one entry each), stratified by
    action x segment."""
    planned = len(actions)
    size = math.ceil(share * planned - 1e-9)
    strata = pd.factorize(pd.Series(actions).astype(str) + "|" + segments)[0]
    control = _systematic_holdout(strata, size, random_stream(config, "holdout")) if planned else np.zeros(0, dtype=bool)
    return Holdout(
        control=control, share=size / planned if planned else share, size=int(size),
        power=power_two_proportions(baseline_conversion, config.min_detectable_lift, size, planned - size, config.alpha),
        underpowered=underpowered, baseline_conversion=baseline_conversion)
