"""The churn and propensity classifiers: LightGBM on the point-in-time features, evaluated on the fixed
customer holdout."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from ml import evaluate, features, plots
from ml.train.config import CLASSIFIER_LABELS, TrainConfig
from ml.train.predictors import ProbabilityModel
from ml.train.trained import Skip, Trained


def _window(as_of: date, dates: list[date], n: int) -> list[date]:
    return [d for d in dates if d <= as_of][-n:]


def train_classifier(frame: pd.DataFrame, name: str, as_of: date, config: TrainConfig) -> Trained:
    """Train on ``frame``, the :func:`ml.features.classifier_frame` of the model's label up to ``as_of``."""
    from lightgbm import LGBMClassifier

    label = CLASSIFIER_LABELS[name]
    dates = sorted(frame["as_of_date"].unique())
    if not dates:
        raise Skip(f"no as-of date up to {as_of} has a complete '{label}' window")
    train_dates = set(_window(as_of, dates, config.train_as_of_dates))
    eval_dates = set(_window(as_of, dates, config.eval_as_of_dates))
    held = features.evaluation_mask(frame["customer_id"], config.evaluation_share)
    train = frame[~held & frame["as_of_date"].isin(train_dates)]
    holdout = frame[held & frame["as_of_date"].isin(eval_dates)]
    rows = {
        "train": len(train), "train_positives": int(train["label"].sum()),
        "holdout": len(holdout), "holdout_positives": int(holdout["label"].sum()),
        "as_of_dates": len(train_dates),
    }
    if rows["train"] < config.min_train_rows or rows["train_positives"] < config.min_train_positives:
        raise Skip(f"{rows['train']} training rows with {rows['train_positives']} positives "
                    f"(need {config.min_train_rows} and {config.min_train_positives})")
    if rows["holdout_positives"] < config.min_eval_positives or rows["holdout_positives"] == rows["holdout"]:
        raise Skip(f"{rows['holdout_positives']} positives among {rows['holdout']} holdout rows "
                    f"(need {config.min_eval_positives} and some negatives)")
    cols = list(config.features)
    estimator = LGBMClassifier(**config.classifier_params.lgbm_kwargs())
    estimator.fit(train[cols].astype("float64"), train["label"].to_numpy())
    model = ProbabilityModel(estimator=estimator, features=tuple(cols), label=label)
    y = holdout["label"].to_numpy()
    p = model.predict(holdout)

    def champion_metrics(champion: Any) -> dict[str, float]:
        return evaluate.classifier_metrics(y, champion.predict(holdout))

    def plot(directory: Path, champion: Any | None) -> list[Path]:
        return [
            plots.roc_curve_plot(y, p, directory / "roc.png", f"{name}: ROC on holdout"),
            plots.calibration_plot(evaluate.reliability_bins(y, p), directory / "calibration.png", f"{name}: calibration"),
            plots.feature_importance_plot(cols, estimator.booster_.feature_importance("gain"), directory / "feature_importance.png"),
        ]

    window = (min(train_dates), max(train_dates))
    what = ("P(no purchase in the 28 days from the as-of date)" if name == "churn"
            else "P(any purchase in the next cycle, i.e. the cycle_days from the as-of date)")
    return Trained(
        model=model,
        metrics=evaluate.classifier_metrics(y, p),
        champion_metrics_fn=champion_metrics,
        params={**asdict(config.classifier_params), "label": label, "features": len(cols)},
        rows=rows,
        input_example=holdout[cols].head(5).reset_index(drop=True),
        description=(
            f"{name}: {what}, LightGBM. For: every customer of marts.fct_customer_features (members and buyers). "
            f"Features: {len(cols)} point-in-time columns ({', '.join(cols)}). "
            f"Trained on as-of dates {window[0]}..{window[1]} with complete labels, 80 % of customers; "
            "evaluated on the fixed 20 % customer holdout."
        ),
        train_window=window,
        plot_fn=plot if config.plots else None,
    )
