"""Uplift: one meta-learner (X, T or DR) pooled over the offer x channel actions (``ml/uplift.py``), trained on
the campaigns' randomised treatment and control assignments and ranked on the customer holdout's.

Which learner is chosen by evidence out of time: each candidate is fitted on the cycles before the newest
and ranks the newest cycle's sends to evaluation customers; the best Qini wins. That is the question the
model answers in production (rank next cycle's customers from past cycles), asked on fresh sends each cycle
rather than on one fixed evaluation set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml import evaluate, features, plots
from ml.train.config import TrainConfig
from ml.train.trained import Skip, Trained
from ml.uplift import LEARNERS, Learner, UpliftModel

if TYPE_CHECKING:
    from campaign_loop.config import Settings


def _qini_z(score: np.ndarray, t: np.ndarray, y: np.ndarray, resamples: int, seed: int = 0) -> float:
    """Qini coefficient over its bootstrap standard error (holdout rows resampled within each arm).

    A model whose ranking is noise has a Qini around 0 with this spread, so a floor on the ratio (see
    ml/registry.py GATE_RULES) keeps noise out of the champion alias however thin the evidence is.
    """
    qini = evaluate.qini_coefficient(score, t, y)
    if not np.isfinite(qini) or resamples < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    arms = [np.flatnonzero(t == 1), np.flatnonzero(t == 0)]
    draws = []
    for _ in range(resamples):
        idx = np.concatenate([rng.choice(a, len(a)) for a in arms])
        draws.append(evaluate.qini_coefficient(score[idx], t[idx], y[idx]))
    sd = float(np.nanstd(draws))
    return float(qini / sd) if sd > 0 else float("nan")


def _arm_counts(part: pd.DataFrame) -> tuple[int, int, int, int]:
    """Treated and control rows, then their conversions."""
    t = part["treatment"] == 1
    return int(t.sum()), int((~t).sum()), int(part.loc[t, "is_converted"].sum()), int(part.loc[~t, "is_converted"].sum())


def _enough_rows(frame: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, config: TrainConfig) -> dict[str, int]:
    """The row counts the run logs; raises :class:`Skip` when either arm is too thin to train or to evaluate."""
    n_t, n_c, y_t, y_c = _arm_counts(train)
    h_t, h_c, hy_t, hy_c = _arm_counts(holdout)
    rows = {"train_treated": n_t, "train_control": n_c, "train_conversions_treated": y_t,
            "train_conversions_control": y_c, "holdout_treated": h_t, "holdout_control": h_c,
            "holdout_conversions": hy_t + hy_c, "actions": int(frame["action"].nunique())}
    if n_t < config.uplift_min_treated or n_c < config.uplift_min_control or min(y_t, y_c) < config.uplift_min_conversions:
        raise Skip(f"{n_t} treated / {n_c} control training rows with {y_t} / {y_c} conversions "
                   f"(need {config.uplift_min_treated} / {config.uplift_min_control} and {config.uplift_min_conversions} each)")
    if min(h_t, h_c) == 0 or hy_t + hy_c < config.min_eval_positives:
        raise Skip(f"holdout of {h_t} treated / {h_c} control rows with {hy_t + hy_c} conversions")
    return rows


class _HoldoutScoring:
    """The challenger and champion scored on the same holdout assignments: the gate's metrics and the plots."""

    def __init__(self, holdout: pd.DataFrame, challenger: Any, bootstrap: int) -> None:
        self.holdout, self.challenger, self.bootstrap = holdout, challenger, bootstrap
        self.t = holdout["treatment"].to_numpy()
        self.y = holdout["is_converted"].to_numpy()
        self.margin = holdout["margin"].to_numpy()
        self._predicted: list[tuple[Any, np.ndarray]] = []

    def conversion_effect(self, candidate: Any) -> np.ndarray:
        # The metrics and the plot rank the same holdout rows: predict them once per model.
        for known, effect in self._predicted:
            if known is candidate:
                return effect
        self._predicted.append((candidate, candidate.effect(self.holdout, "conversion")))
        return self._predicted[-1][1]

    def metrics(self, candidate: Any) -> dict[str, float]:
        holdout, t, y = self.holdout, self.t, self.y
        covered = holdout["action"].isin(candidate.covered_actions).to_numpy()
        # An action the model does not cover ranks as zero uplift, as the scorer would use it.
        score = np.where(covered, np.nan_to_num(self.conversion_effect(candidate)), 0.0)
        margin_score = np.where(covered, np.nan_to_num(candidate.effect(holdout, "margin")), 0.0)
        out = evaluate.uplift_metrics(score, t, y)
        out.update(evaluate.uplift_metrics(margin_score, t, self.margin, prefix="margin_"))
        for action, part in holdout.assign(_score=score).groupby("action"):
            if part["treatment"].nunique() == 2:
                out[f"qini_coefficient.{action}"] = evaluate.qini_coefficient(
                    part["_score"].to_numpy(), part["treatment"].to_numpy(), part["is_converted"].to_numpy())
        out["qini_z"] = _qini_z(score, t, y, self.bootstrap)
        out["calibration_slope"], out["calibration_slope_se"] = evaluate.uplift_calibration(score, t, y)
        out["ranking_weight"] = evaluate.ranking_weight(out["calibration_slope"], out["calibration_slope_se"])
        out["mean_predicted_uplift"] = float(score.mean())
        out["observed_uplift"] = float(y[t == 1].mean() - y[t == 0].mean())
        return out

    def plot(self, directory: Path, champion: Any | None) -> list[Path]:
        t, y, model = self.t, self.y, self.challenger
        curves = {"challenger": evaluate.uplift_curves(np.nan_to_num(self.conversion_effect(model)), t, y)}
        if champion is not None:
            curves["champion"] = evaluate.uplift_curves(np.nan_to_num(self.conversion_effect(champion)), t, y)
        importance = model.learners["conversion"].models["mu1"].booster_.feature_importance("gain")
        return [
            plots.uplift_curves_plot(curves, directory / "qini_gain.png", "uplift (conversion) on holdout assignments"),
            plots.feature_importance_plot(model.learners["conversion"].columns, importance,
                                          directory / "feature_importance_mu1.png", "treated response model (gain)"),
        ]


@dataclass(frozen=True)
class LearnerChoice:
    learner: Learner
    reason: str
    qini: dict[str, float]  # out-of-time Qini per candidate; empty when not measured


def choose_learner(train: pd.DataFrame, holdout: pd.DataFrame, config: TrainConfig) -> LearnerChoice:
    """The configured learner, or under ``"auto"`` the candidate whose model fitted on the cycles before the
    newest ranks the newest cycle's ``holdout`` sends best (Qini on conversion); the X-learner while there is
    no such evidence yet."""
    if config.uplift_learner != "auto":
        return LearnerChoice(config.uplift_learner, "set in the training config", {})
    newest = max(train["as_of_date"].max(), holdout["as_of_date"].max())
    past, future = train[train["as_of_date"] < newest], holdout[holdout["as_of_date"] == newest]
    n_t, n_c, y_t, y_c = _arm_counts(past)
    f_t, f_c, fy_t, fy_c = _arm_counts(future)
    if min(n_t, n_c) == 0 or min(y_t, y_c) < config.uplift_min_conversions or min(f_t, f_c) == 0 \
            or fy_t + fy_c < config.min_eval_positives:
        return LearnerChoice(LEARNERS[0], f"no out-of-time evidence yet (before {newest}: {n_t} treated / {n_c} "
                             f"control rows, {y_t} / {y_c} conversions; at {newest}: {f_t} / {f_c} evaluation "
                             f"rows, {fy_t + fy_c} conversions)", {})
    t, y = future["treatment"].to_numpy(), future["is_converted"].to_numpy()
    qini: dict[str, float] = {}
    for learner in LEARNERS:
        model = UpliftModel(learner=learner, params=config.uplift_params, features=config.features,
                            min_action_rows=config.uplift_min_action_rows)
        try:
            model.fit(past, outcomes=("conversion",))
        except ValueError:  # an arm without both outcomes once thinned to covered actions
            qini[learner] = float("nan")
            continue
        covered = future["action"].isin(model.covered_actions).to_numpy()
        score = np.where(covered, np.nan_to_num(model.effect(future)), 0.0) if covered.any() else np.zeros(len(t))
        qini[learner] = evaluate.qini_coefficient(score, t, y)
    best = max(LEARNERS, key=lambda name: qini[name] if np.isfinite(qini[name]) else -np.inf)
    shown = ", ".join(f"{name} {value:.4f}" for name, value in qini.items())
    return LearnerChoice(best, f"best out-of-time Qini on the {newest} cycle's {len(future)} evaluation sends "
                         f"(fitted on {len(past)} earlier ones): {shown}", qini)


def train_uplift(settings: Settings, as_of: date, schema: str, config: TrainConfig) -> Trained:
    """Train on 80 % of the customers' assignments up to ``as_of``; score the challenger and the champion on
    the rest."""
    frame = features.uplift_frame(settings.warehouse_path, schema=schema, max_as_of=as_of)
    if frame.empty:
        raise Skip("no finished campaign assignments")
    held = features.evaluation_mask(frame["customer_id"], config.evaluation_share)
    train, holdout = frame[~held], frame[held]
    rows = _enough_rows(frame, train, holdout, config)
    choice = choose_learner(train, holdout, config)
    model = UpliftModel(learner=choice.learner, params=config.uplift_params,
                        min_action_rows=config.uplift_min_action_rows, features=config.features).fit(train)
    scoring = _HoldoutScoring(holdout, model, config.uplift_bootstrap)
    cycles = sorted(frame["as_of_date"].unique())
    example = holdout[list(config.features)].head(5).reset_index(drop=True)
    metrics = scoring.metrics(model) | {f"out_of_time_qini.{name}": value for name, value in choice.qini.items()}
    model.ranking_weight = metrics["ranking_weight"]
    return Trained(
        model=model,
        metrics=metrics,
        champion_metrics_fn=scoring.metrics,
        params={**asdict(config.uplift_params), "learner": choice.learner, "learner_choice": choice.reason[:480],
                "covered_actions": ",".join(model.covered_actions), "min_action_rows": config.uplift_min_action_rows},
        rows=rows,
        input_example=example,
        description=(
            f"uplift: per action (<offer>__<channel>), the change in P(purchase in the campaign window) "
            f"(uplift__*) and in margin (uplift_margin__*) from sending it, {choice.learner.upper()}-learner ({choice.reason}) over "
            "LightGBM pooled across actions (ml/uplift.py). For: consenting customers eligible for a campaign. "
            f"Features: the {len(config.features)} customer features as of the campaign's cycle start plus the action's "
            f"discount and channel. Trained on the treatment and control assignments of cycles {cycles[0]}..{cycles[-1]} "
            f"(80 % of customers); covered actions: {', '.join(model.covered_actions) or 'none'}."
        ),
        train_window=(cycles[0], cycles[-1]),
        plot_fn=scoring.plot if config.plots else None,
    )
