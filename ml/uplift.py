"""Uplift per action: meta-learners over LightGBM, on conversion and on margin.

**Pooled across actions.** A cycle's randomised campaigns give each of the 12 actions (offer x channel)
only a few hundred assignments, far too few for 12 separate pairs of models. So each learner's
response models are fitted on the assignments of all actions at once, with the action described by
:data:`ml.features.ACTION_FEATURES` (discount share, channel), and the effect of action ``a`` for a
customer is read by setting those columns to ``a``. Only treatment and control rows of an action are
evidence about it (customers never assigned to it are not in the data), and an action with fewer
than ``min_action_rows`` assignments gets no prediction (NaN), which the scorer turns into 0: the
design then explores it.

**Three meta-learners** (X: Kunzel, Sekhon, Bickel & Yu 2019; T, the baseline; DR):

* T: ``tau(x) = mu1(x) - mu0(x)`` with separate treated / control response models. Each model
  regularises on its own, so its difference is noisy where the effect is small next to the baseline,
  and the small arm's model is poor.
* X: impute individual effects with the other arm's model (``D1 = Y1 - mu0(x)`` on the treated,
  ``D0 = mu1(x) - Y0`` on the controls), regress them on x, and blend ``tau = g*tau0 + (1-g)*tau1``
  with ``g`` the treated share. Designed campaigns are unbalanced (a 10-20 % holdout), which is exactly
  the case the X-learner was built for: the big arm's model imputes the small arm's effects.
* DR (Kennedy 2023): regress the doubly robust pseudo-outcome
  ``mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e)`` on x, with ``e`` the treated share (the
  assignment is randomised, so ``e`` is known, not estimated). Its pseudo-outcome divides by ``e`` and
  ``1 - e``: for rare conversions it is very noisy at these sizes, which is why it is a candidate, not the
  default.

Which of them a cycle uses is measured, not assumed: ``learner="auto"`` in training (ml/train/uplift.py)
fits each on the older cycles and keeps the one with the best Qini on the newest cycle's randomised sends.

LightGBM is imported inside the functions that fit; the classes pickle with the fitted boosters, and
MLflow stores them through its sklearn flavour (``predict`` takes and returns a DataFrame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from campaign_loop.actions import ACTIONS
from ml.features import ACTION_FEATURES, FEATURES, action_features

Learner = Literal["t", "x", "dr"]
LEARNERS: tuple[Learner, ...] = ("x", "t", "dr")  # "auto" (training) tries them in this order; ties keep the first
Outcome = Literal["conversion", "margin"]
OUTCOME_COLUMN: dict[str, str] = {"conversion": "is_converted", "margin": "margin"}
COLUMN_PREFIX: dict[str, str] = {"conversion": "uplift__", "margin": "uplift_margin__"}


@dataclass(frozen=True)
class BoosterParams:
    """LightGBM settings for the response and effect models: small, shallow and regularised, because
    the signal (a point of conversion) is small next to the noise."""

    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 40
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    n_jobs: int = -1
    seed: int = 0

    def lgbm_kwargs(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": 1,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "n_jobs": self.n_jobs,
            "random_state": self.seed,
            "verbose": -1,
        }


def _classifier(params: BoosterParams) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**params.lgbm_kwargs())


def _regressor(params: BoosterParams) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**params.lgbm_kwargs())


@dataclass
class MetaLearner:
    """One meta-learner for one outcome, pooled over actions; rows carry FEATURES + ACTION_FEATURES."""

    learner: Learner = "x"
    outcome: Outcome = "conversion"
    params: BoosterParams = field(default_factory=BoosterParams)
    features: tuple[str, ...] = FEATURES
    models: dict[str, Any] = field(default_factory=dict)
    treated_share: float = 0.5

    @property
    def columns(self) -> list[str]:
        return [*self.features, *ACTION_FEATURES]

    def _response(self) -> Any:
        return _classifier(self.params) if self.outcome == "conversion" else _regressor(self.params)

    def _mu(self, name: str, x: pd.DataFrame) -> np.ndarray:
        model = self.models[name]
        if self.outcome == "conversion":
            return model.predict_proba(x)[:, 1]
        return model.predict(x)

    def fit(self, x: pd.DataFrame, treatment: np.ndarray, y: np.ndarray) -> MetaLearner:
        if self.learner not in LEARNERS:
            raise ValueError(f"unknown learner {self.learner!r}")
        x = x[self.columns]
        t = np.asarray(treatment, dtype=int)
        y = np.asarray(y, dtype=float)
        treated, control = t == 1, t == 0
        if treated.sum() == 0 or control.sum() == 0:
            raise ValueError("uplift needs both treated and control rows")
        if self.outcome == "conversion" and (len(np.unique(y[treated])) < 2 or len(np.unique(y[control])) < 2):
            raise ValueError("each arm needs both outcomes (some conversions and some non-conversions)")
        self.treated_share = float(treated.mean())
        self.models = {"mu1": self._response().fit(x[treated], y[treated].astype(int) if self.outcome == "conversion" else y[treated])}
        self.models["mu0"] = self._response().fit(x[control], y[control].astype(int) if self.outcome == "conversion" else y[control])
        if self.learner == "x":
            d1 = y[treated] - self._mu("mu0", x[treated])
            d0 = self._mu("mu1", x[control]) - y[control]
            self.models["tau1"] = _regressor(self.params).fit(x[treated], d1)
            self.models["tau0"] = _regressor(self.params).fit(x[control], d0)
        elif self.learner == "dr":
            # In-sample response predictions: cross-fitting would halve the few conversions each model sees.
            mu1, mu0, e = self._mu("mu1", x), self._mu("mu0", x), self.treated_share
            pseudo = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
            self.models["tau"] = _regressor(self.params).fit(x, pseudo)
        return self

    def effect(self, x: pd.DataFrame) -> np.ndarray:
        """Uplift of each row's own action (its ACTION_FEATURES)."""
        if not self.models:
            raise RuntimeError("fit the learner first")
        x = x[self.columns]
        if self.learner == "t":
            return self._mu("mu1", x) - self._mu("mu0", x)
        if self.learner == "dr":
            return np.asarray(self.models["tau"].predict(x), dtype=float)
        g = self.treated_share
        return g * self.models["tau0"].predict(x) + (1.0 - g) * self.models["tau1"].predict(x)


def with_action(frame: pd.DataFrame, action: str) -> pd.DataFrame:
    """``frame``'s customer features with the action columns set to ``action``."""
    described = action_features([action] * len(frame))
    described.index = frame.index
    out = frame.drop(columns=[c for c in ACTION_FEATURES if c in frame.columns])
    return pd.concat([out, described], axis=1)


@dataclass
class UpliftModel:
    """Uplift per action on conversion and on margin: the object registered as model ``uplift``.

    ``predict(customers)`` returns one column per covered action and outcome:
    ``uplift__<offer>__<channel>`` (purchase probability, what ml/decide/ reads) and
    ``uplift_margin__<offer>__<channel>`` (margin in currency per customer); NaN for actions without
    enough evidence.
    """

    learner: Learner = "x"
    params: BoosterParams = field(default_factory=BoosterParams)
    min_action_rows: int = 30
    features: tuple[str, ...] = FEATURES
    actions: tuple[str, ...] = tuple(a.name for a in ACTIONS)
    learners: dict[str, MetaLearner] = field(default_factory=dict)
    covered_actions: tuple[str, ...] = ()
    action_rows: dict[str, int] = field(default_factory=dict)
    # How much of its ranking between customers the scorer may use (ml.evaluate.ranking_weight), set by
    # training from the held-out assignments; none until measured.
    ranking_weight: float = 0.0

    def fit(self, frame: pd.DataFrame, outcomes: Sequence[Outcome] = ("conversion", "margin")) -> UpliftModel:
        """Fit on an :func:`ml.features.uplift_frame` (rows of catalogue actions, both arms)."""
        counts = frame.groupby("action").size()
        self.action_rows = {str(a): int(n) for a, n in counts.items()}
        self.covered_actions = tuple(a for a in self.actions if self.action_rows.get(a, 0) >= self.min_action_rows)
        rows = frame[frame["action"].isin(self.covered_actions)]
        self.learners = {}
        for outcome in outcomes:
            learner = MetaLearner(learner=self.learner, outcome=outcome, params=self.params, features=self.features)
            self.learners[outcome] = learner.fit(rows, rows["treatment"].to_numpy(), rows[OUTCOME_COLUMN[outcome]].to_numpy())
        return self

    def effect(self, frame: pd.DataFrame, outcome: Outcome = "conversion") -> np.ndarray:
        """Uplift of each row's own action (for evaluation on assignment rows)."""
        return self.learners[outcome].effect(frame)

    def predict(self, customers: pd.DataFrame) -> pd.DataFrame:
        # Only the customer features reach the learners: copy those once per action, not every column.
        base = customers[list(self.features)]
        described = {action: with_action(base, action) for action in self.covered_actions}
        columns: dict[str, np.ndarray] = {}
        for outcome, learner in self.learners.items():
            for action in self.actions:
                column = f"{COLUMN_PREFIX[outcome]}{action}"
                if action in self.covered_actions:
                    columns[column] = learner.effect(described[action])
                else:
                    columns[column] = np.full(len(customers), np.nan)
        return pd.DataFrame(columns, index=customers.index)
