"""The model objects MLflow stores for churn, propensity and CLV (uplift's is ``ml.uplift.UpliftModel``).

Registered versions pickle these classes by reference; versions logged before this package existed name them
``ml.train.ProbabilityModel`` and ``ml.train.ClvPredictor``, which ``ml/train/__init__.py`` keeps importable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class ProbabilityModel:
    """A fitted classifier and its feature list; ``predict(frame)`` is P(label = 1) per row."""

    estimator: Any
    features: tuple[str, ...]
    label: str

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(frame[list(self.features)].astype("float64"))[:, 1]


@dataclass
class ClvPredictor:
    """BG/NBD + Gamma-Gamma parameters, scored in closed form from the features' RFM columns (days).

    Closed form (Fader, Hardie & Lee 2005 eq. 10 and the P(alive) of their note 021; Fader & Hardie
    2013 for the spend) rather than the pymc-marketing objects: the registered model then loads and
    scores without PyMC, and a champion and a challenger are scored by the same code.
    """

    params: dict[str, float]
    horizon_weeks: float = 1.0  # expected purchases of the next cycle
    clv_weeks: float = 52.0

    @staticmethod
    def rfm_from_features(frame: pd.DataFrame) -> pd.DataFrame:
        """Weeks-based RFM from ``frequency``, ``recency``, ``t`` (days) and ``monetary_value``."""
        t = frame["t"].astype("float64")
        return pd.DataFrame(
            {
                "frequency": frame["frequency"].astype("float64").fillna(0.0).to_numpy(),
                "recency": (frame["recency"].astype("float64").fillna(0.0) / 7.0).to_numpy(),
                "T": (t / 7.0).to_numpy(),
                "monetary_value": frame["monetary_value"].astype("float64").fillna(0.0).to_numpy(),
            },
            index=frame.index,
        )

    def expected_purchases(self, rfm: pd.DataFrame, horizon: float) -> np.ndarray:
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params[k] for k in ("r", "alpha", "a", "b"))
        x = rfm["frequency"].to_numpy(float)
        tx = rfm["recency"].to_numpy(float)
        big_t = rfm["T"].to_numpy(float)
        known = np.isfinite(big_t)
        big_t = np.where(known, big_t, 0.0)
        z = horizon / (alpha + big_t + horizon)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + big_t) / (alpha + big_t + horizon)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        denominator = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + big_t) / (alpha + tx)) ** (r + x)
        # A customer without a purchase yet has no T: score them as a new customer over the horizon.
        new = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + horizon)) ** r * hyp2f1(r, b, a + b - 1, horizon / (alpha + horizon)))
        return np.where(known, head * body / denominator, new)

    def p_alive(self, rfm: pd.DataFrame) -> np.ndarray:
        r, alpha, a, b = (self.params[k] for k in ("r", "alpha", "a", "b"))
        x = rfm["frequency"].to_numpy(float)
        tx = rfm["recency"].to_numpy(float)
        big_t = rfm["T"].to_numpy(float)
        ratio = ((alpha + np.nan_to_num(big_t)) / (alpha + tx)) ** (r + x)
        alive = 1.0 / (1.0 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ratio)
        return np.where(np.isfinite(big_t), alive, 1.0)

    def expected_spend(self, rfm: pd.DataFrame) -> np.ndarray:
        p, q, v = (self.params[k] for k in ("p", "q", "v"))
        x = rfm["frequency"].to_numpy(float)
        m = rfm["monetary_value"].to_numpy(float)
        population = p * v / (q - 1)
        weight = p * x / (p * x + q - 1)
        return np.where(x > 0, (1 - weight) * population + weight * m, population)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        rfm = self.rfm_from_features(frame)
        spend = self.expected_spend(rfm)
        purchases_year = self.expected_purchases(rfm, self.clv_weeks)
        return pd.DataFrame(
            {
                "p_alive": self.p_alive(rfm),
                "expected_purchases_next_cycle": self.expected_purchases(rfm, self.horizon_weeks),
                "expected_purchases_52w": purchases_year,
                "expected_spend": spend,
                "clv_52w": purchases_year * spend,
            },
            index=frame.index,
        )
