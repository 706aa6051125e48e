"""CLV: BG/NBD purchase counts and Gamma-Gamma spend (``ml/clv.py``), checked on the weeks before the as-of
date."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ml import clv, evaluate, features, plots
from ml.train.config import TrainConfig
from ml.train.predictors import ClvPredictor
from ml.train.trained import Skip, Trained

if TYPE_CHECKING:
    from campaign_loop.config import Settings


def train_clv(settings: Settings, as_of: date, schema: str, config: TrainConfig) -> Trained:
    """Fit on the revenue orders up to ``clv_holdout_weeks`` before ``as_of``; score the weeks after."""
    # Calibrate up to H weeks before the as-of date and check the forecast on those H weeks.
    calibration_end = as_of - timedelta(weeks=config.clv_holdout_weeks) - timedelta(days=1)
    holdout_end = as_of - timedelta(days=1)
    log = features.transactions(settings.warehouse_path, as_of, schema=schema)
    if log.empty:
        raise Skip("no transactions")
    summary = clv.rfm_summary(log, calibration_end, unit="W")
    repeaters = int(((summary["frequency"] > 0) & (summary["monetary_value"] > 0)).sum())
    rows = {"customers": len(summary), "repeaters": repeaters, "transactions": len(log)}
    if len(summary) < config.clv_min_customers or repeaters < 20:
        raise Skip(f"{len(summary)} customers with {repeaters} repeaters before {calibration_end}")
    fitted = clv.fit_clv(summary, unit="W")
    model = ClvPredictor(params=fitted.params, horizon_weeks=settings.cycle_days / 7.0)
    horizon = float(config.clv_holdout_weeks)
    actual = clv.repeat_purchases_between(log, calibration_end, holdout_end).reindex(summary["customer_id"]).fillna(0).to_numpy()
    rfm = summary[["frequency", "recency", "T", "monetary_value"]]

    def metrics_of(predictor: ClvPredictor) -> dict[str, float]:
        return evaluate.clv_metrics(actual, predictor.expected_purchases(rfm, horizon))

    check = clv.holdout_check(fitted.bgnbd, summary, pd.Series(actual, index=summary["customer_id"]), horizon=horizon)

    def plot(directory: Path, champion: Any | None) -> list[Path]:
        return [plots.clv_holdout_plot(check.by_frequency, directory / "clv_holdout.png")]

    example = pd.DataFrame({"frequency": [0, 2, 5], "recency": [0, 60, 200], "t": [30, 120, 300],
                            "monetary_value": [0.0, 70.0, 95.0]}).astype("float64")
    return Trained(
        model=model,
        metrics={**metrics_of(model), **{f"param_{k}": v for k, v in fitted.params.items()}},
        champion_metrics_fn=metrics_of,
        params={"calibration_end": calibration_end.isoformat(), "holdout_weeks": config.clv_holdout_weeks,
                "unit": "W", **{f"fit_seconds_{k}": round(v, 2) for k, v in fitted.fit_seconds.items()}},
        rows=rows,
        input_example=example,
        description=(
            "clv: BG/NBD purchase counts + Gamma-Gamma spend per purchase (ml/clv.py, maximum likelihood), scored in "
            "closed form. Predicts p_alive, expected purchases next cycle and over 52 weeks, expected spend per "
            "purchase and 52-week CLV. For: every customer with a purchase (others score as new customers). "
            "Features: frequency, recency, t (days) and monetary_value of marts.fct_customer_features. "
            f"Fitted on revenue orders up to {calibration_end}; checked on the {config.clv_holdout_weeks} weeks after."
        ),
        train_window=(None, calibration_end),
        plot_fn=plot if config.plots else None,
    )
