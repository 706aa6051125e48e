"""Evaluation plots saved as PNG files for MLflow artifacts (matplotlib, headless Agg backend).

Each function writes one file and returns its path. :func:`available` says whether matplotlib can be
imported; callers skip plots (and say so) when it cannot, rather than failing a training run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    # Agg: no display on Airflow workers, and no GUI backend probing (slow, noisy) anywhere else.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def roc_curve_plot(y_true: np.ndarray, p: np.ndarray, path: Path, title: str = "ROC") -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fpr, tpr, _ = roc_curve(y_true, p)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y_true, p):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def calibration_plot(bins: pd.DataFrame, path: Path, title: str = "Calibration") -> Path:
    """``bins`` from :func:`ml.evaluate.reliability_bins`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    top = float(max(bins["mean_predicted"].max(), bins["observed_rate"].max(), 1e-3)) if len(bins) else 1.0
    ax.plot([0, top], [0, top], "--", color="grey", linewidth=1)
    ax.plot(bins["mean_predicted"], bins["observed_rate"], "o-")
    ax.set(xlabel="mean predicted", ylabel="observed rate", title=title)
    return _save(fig, path)


def uplift_curves_plot(
    curves: Mapping[str, Any], path: Path, title: str = "Qini and gain curves"
) -> Path:
    """``curves``: label -> :class:`ml.evaluate.UpliftCurves` (e.g. challenger, champion, oracle)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    for label, c in curves.items():
        left.plot(c.fraction, c.qini, label=label)
        right.plot(c.fraction, c.gain, label=label)
    for ax, name in ((left, "Qini (incremental outcome per customer)"), (right, "uplift gain per customer")):
        first = next(iter(curves.values()))
        ax.plot([0, 1], [0, first.qini[-1] if ax is left else first.gain[-1]], "--", color="grey", linewidth=1)
        ax.set(xlabel="share targeted", ylabel=name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def feature_importance_plot(names: Sequence[str], importance: np.ndarray, path: Path, title: str = "Feature importance (gain)", top: int = 20) -> Path:
    plt = _pyplot()
    order = np.argsort(importance)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(order) + 1.2))
    ax.barh([names[i] for i in order], np.asarray(importance)[order])
    ax.set(title=title)
    return _save(fig, path)


def clv_holdout_plot(by_frequency: pd.DataFrame, path: Path, title: str = "CLV holdout: purchases by calibration frequency") -> Path:
    """``by_frequency`` from :class:`ml.clv.HoldoutCheck` (actual vs forecast mean per frequency)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(by_frequency["calibration_frequency"], by_frequency["actual"], "o-", label="actual")
    ax.plot(by_frequency["calibration_frequency"], by_frequency["forecast"], "s--", label="forecast")
    ax.set(xlabel="repeat purchases in calibration (7 = 7+)", ylabel="mean holdout purchases", title=title)
    ax.legend()
    return _save(fig, path)
