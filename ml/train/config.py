"""The knobs of a training cycle and the names it trains and logs under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ml import features
from ml.uplift import BoosterParams, Learner

EXPERIMENT = "campaign-loop"
MODEL_NAMES: tuple[str, ...] = ("churn", "propensity", "clv", "uplift")
CLASSIFIER_LABELS: dict[str, features.Label] = {"churn": "churned", "propensity": "purchased_next_cycle"}


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training cycle; the defaults are sized for the simulated retailer."""

    evaluation_share: float = 0.2
    train_as_of_dates: int = 12  # newest as-of dates trained on (bounds the frame at 100k customers)
    eval_as_of_dates: int = 4  # newest complete as-of dates the classifiers are evaluated on
    min_train_rows: int = 500
    min_train_positives: int = 25
    min_eval_positives: int = 10
    classifier_params: BoosterParams = field(
        default_factory=lambda: BoosterParams(n_estimators=200, num_leaves=31, min_child_samples=100)
    )
    # "auto": the learner with the best out-of-time Qini this cycle (ml/train/uplift.py:choose_learner)
    uplift_learner: Learner | Literal["auto"] = "auto"
    uplift_params: BoosterParams = field(default_factory=BoosterParams)
    uplift_min_treated: int = 100
    uplift_min_control: int = 50
    uplift_min_conversions: int = 10  # per arm; the gate's bootstrap floor, not this, keeps noise out
    uplift_bootstrap: int = 100  # resamples of the holdout for the qini z-score the gate floors
    uplift_min_action_rows: int = 30
    clv_holdout_weeks: int = 8
    clv_min_customers: int = 200
    features: tuple[str, ...] = features.FEATURES
    plots: bool = True
