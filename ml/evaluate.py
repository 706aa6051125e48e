"""Model metrics: classifiers (discrimination and calibration), uplift (Qini, AUUC, uplift@k), CLV.

The uplift metrics are written out in numpy so their definitions are on the page (and tested against a
hand-computed example) rather than inherited from a library's conventions. Rows are ranked by score,
highest first; ties keep the input order (a stable sort), so equal scores give a deterministic curve.

With ``k`` the top-k rows, ``n_t(k), n_c(k)`` treated and control rows among them and ``y_t(k), y_c(k)``
their summed outcomes:

* Qini curve (Radcliffe 2007): ``Q(k) = y_t(k) - y_c(k) * n_t(k) / n_c(k)`` (0 while ``n_c(k) = 0``), the
  incremental outcome of treating the top k, scaled to the treated count. Divided by ``n`` it reads as
  incremental outcome per customer of the whole list.
* Qini coefficient: area between the Qini curve (per customer, x = k/n from 0 to 1, trapezoids) and the
  straight line of a random ranking to the same end point. 0 for a random ranking, higher is better, in
  the outcome's units (conversions per customer), so comparable across models on the same rows.
* Uplift (gain) curve: ``G(k) = (y_t(k)/n_t(k) - y_c(k)/n_c(k)) * k`` (0 while either arm is empty);
  AUUC is its area per customer (trapezoids over x = k/n).
* uplift@k: treated mean minus control mean among the top ``ceil(k * n)`` rows.
* Calibration slope of uplift: in ``y = a + b t + c s + beta t s`` (OLS, ``s`` the score minus its mean),
  ``beta`` is how much of a predicted difference in uplift between customers shows up as a measured
  one: 1 when the model's deviations are right, 0 when its ranking is noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.engagement import slope_posterior

# ---------------------------------------------------------------------------------------- classifiers


def classifier_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), log loss, Brier score and expected calibration error."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y_true, dtype=int)
    prob = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    bins = reliability_bins(y, prob)
    ece = float((bins["count"] * (bins["mean_predicted"] - bins["observed_rate"]).abs()).sum() / max(len(y), 1))
    return {
        "roc_auc": float(roc_auc_score(y, prob)) if both else math.nan,
        "average_precision": float(average_precision_score(y, prob)) if both else math.nan,
        "log_loss": float(log_loss(y, prob, labels=[0, 1])),
        "brier": float(brier_score_loss(y, prob)),
        "ece": ece,
        "base_rate": float(y.mean()) if len(y) else math.nan,
        "mean_predicted": float(prob.mean()) if len(prob) else math.nan,
        "rows": float(len(y)),
    }


def reliability_bins(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Calibration table on equal-count bins of the prediction (rare positives leave uniform bins empty)."""
    frame = pd.DataFrame({"y": np.asarray(y_true, dtype=float), "p": np.asarray(p, dtype=float)})
    if frame.empty:
        return pd.DataFrame(columns=["bin", "count", "mean_predicted", "observed_rate"])
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    table = frame.groupby("bin").agg(count=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    return table.reset_index()


# --------------------------------------------------------------------------------------------- uplift


@dataclass(frozen=True)
class UpliftCurves:
    """Cumulative counts of the ranking, with the point k = 0 first (length n + 1)."""

    fraction: np.ndarray
    qini: np.ndarray  # Q(k) / n
    gain: np.ndarray  # G(k) / n


def uplift_curves(score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray) -> UpliftCurves:
    score, t, y = (np.asarray(a, dtype=float) for a in (score, treatment, outcome))
    if not (len(score) == len(t) == len(y)):
        raise ValueError("score, treatment and outcome must have the same length")
    n = len(score)
    order = np.argsort(-score, kind="stable")
    t, y = t[order], y[order]
    n_t = np.concatenate([[0.0], np.cumsum(t)])
    n_c = np.concatenate([[0.0], np.cumsum(1 - t)])
    y_t = np.concatenate([[0.0], np.cumsum(y * t)])
    y_c = np.concatenate([[0.0], np.cumsum(y * (1 - t))])
    k = np.arange(n + 1, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(n_c > 0, y_t - y_c * n_t / n_c, 0.0)
        gain = np.where((n_t > 0) & (n_c > 0), (y_t / n_t - y_c / n_c) * k, 0.0)
    scale = max(n, 1)
    return UpliftCurves(fraction=k / scale, qini=qini / scale, gain=gain / scale)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def qini_coefficient(score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray) -> float:
    """Area between the Qini curve and the random line (see the module docstring); NaN without both arms."""
    t = np.asarray(treatment, dtype=float)
    if len(t) == 0 or t.min() == t.max():
        return math.nan
    curves = uplift_curves(score, treatment, outcome)
    random_line = curves.fraction * curves.qini[-1]
    return _trapezoid(curves.qini - random_line, curves.fraction)


def auuc(score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray) -> float:
    """Area under the uplift (gain) curve per customer; NaN without both arms."""
    t = np.asarray(treatment, dtype=float)
    if len(t) == 0 or t.min() == t.max():
        return math.nan
    curves = uplift_curves(score, treatment, outcome)
    return _trapezoid(curves.gain, curves.fraction)


def uplift_at_k(score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray, k: float = 0.1) -> float:
    """Treated minus control mean outcome among the top ``ceil(k * n)`` by score; NaN if an arm is empty there."""
    if not 0 < k <= 1:
        raise ValueError("k is a fraction in (0, 1]")
    score, t, y = (np.asarray(a, dtype=float) for a in (score, treatment, outcome))
    top = np.argsort(-score, kind="stable")[: math.ceil(k * len(score))]
    t, y = t[top], y[top]
    if t.sum() == 0 or (1 - t).sum() == 0:
        return math.nan
    return float(y[t == 1].mean() - y[t == 0].mean())


def oracle_qini(true_uplift: np.ndarray, treatment: np.ndarray, outcome: np.ndarray) -> float:
    """Qini coefficient of ranking the same customers by their TRUE uplift (simulator only): the best a
    model can do on these rows, given the outcome noise, and the yardstick for a model's Qini."""
    return qini_coefficient(true_uplift, treatment, outcome)


def uplift_calibration(score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray) -> tuple[float, float]:
    """(slope, standard error) of the measured uplift on the predicted one (module docstring); NaNs
    without both arms or without spread in the scores. The error is heteroskedasticity-robust (HC0):
    a binary outcome's variance differs with its rate."""
    s, t, y = (np.asarray(a, dtype=float) for a in (score, treatment, outcome))
    if len(t) < 5 or t.min() == t.max() or np.ptp(s) == 0:
        return math.nan, math.nan
    s = s - s.mean()
    x = np.column_stack([np.ones(len(s)), t, s, t * s])
    bread = np.linalg.pinv(x.T @ x)
    beta = bread @ (x.T @ y)
    residual = y - x @ beta
    covariance = bread @ (x.T @ (x * residual[:, None] ** 2)) @ bread
    return float(beta[3]), float(math.sqrt(max(covariance[3, 3], 0.0)))


# The prior of an uplift model's calibration slope, (mean, standard deviation): its ranking between customers
# is presumed not to hold until precise evidence says it does. A champion is the challenger whose holdout
# metrics beat the champion's, so its holdout slope carries the winner's curse: in the 100k world a promoted
# champion's slope of 0.42 +- 0.18 came with predictions uncorrelated with the true uplift (-0.02), and using
# them at the weight that slope gave cost the plans 0.08-0.12 of the oracle (bench/RESULTS.md, "Uplift ranking").
RANKING_PRIOR = (0.0, 0.05)


def ranking_weight(slope: float, se: float, prior: tuple[float, float] = RANKING_PRIOR) -> float:
    """How much of a model's uplift ranking to trust, in [0, 1]: the posterior mean of its calibration slope
    under :data:`RANKING_PRIOR`, so only a slope measured far more precisely than the prior's spread counts."""
    return slope_posterior(slope, se, prior)


def uplift_metrics(
    score: np.ndarray, treatment: np.ndarray, outcome: np.ndarray, *, prefix: str = ""
) -> dict[str, float]:
    """The gate's uplift metrics (``qini_coefficient``, ``uplift_at_top_decile``) plus AUUC and counts."""
    t = np.asarray(treatment, dtype=float)
    return {
        f"{prefix}qini_coefficient": qini_coefficient(score, treatment, outcome),
        f"{prefix}auuc": auuc(score, treatment, outcome),
        f"{prefix}uplift_at_top_decile": uplift_at_k(score, treatment, outcome, 0.1),
        f"{prefix}uplift_at_top_30pct": uplift_at_k(score, treatment, outcome, 0.3),
        f"{prefix}treated_rows": float(t.sum()),
        f"{prefix}control_rows": float(len(t) - t.sum()),
    }


# ------------------------------------------------------------------------------------------------ CLV


def clv_metrics(actual_purchases: np.ndarray, forecast_purchases: np.ndarray) -> dict[str, float]:
    """Holdout error of the summed forecast in percent (absolute) and the rank agreement per customer."""
    from scipy.stats import spearmanr

    actual = np.asarray(actual_purchases, dtype=float)
    forecast = np.asarray(forecast_purchases, dtype=float)
    total = actual.sum()
    error_pct = 100.0 * (forecast.sum() - total) / total if total > 0 else math.nan
    rho = spearmanr(forecast, actual).statistic if np.ptp(actual) > 0 and np.ptp(forecast) > 0 else math.nan
    return {
        "holdout_abs_error_pct": abs(error_pct),
        "holdout_error_pct": error_pct,
        "holdout_actual": float(total),
        "holdout_forecast": float(forecast.sum()),
        "spearman_clv": float(rho),
        "mae_per_customer": float(np.abs(forecast - actual).mean()) if len(actual) else math.nan,
    }
