"""One cycle's retraining: churn, propensity, CLV and uplift, each an MLflow run, registered and gated.

:func:`train_cycle` is what the DAG's training task calls once the cycle's marts are built and
validated. Per model it: reads its frame (``ml/features.py``), splits off the evaluation holdout
(a fixed 20 % of customers, never trained on in any cycle), trains, evaluates the challenger and the
current champion on the *same* holdout rows, logs one run in experiment ``campaign-loop`` (params,
lineage tags, metrics, plots, the model with signature and input example), registers the version as
``challenger`` and applies the gate of ``ml/registry.py``. Too little data skips the model: nothing is
registered and the champion stays.

Models (registered names, what their ``predict`` returns):

* ``churn``: P(no purchase in the 28 days from the as-of date), LightGBM.
* ``propensity``: P(purchase in the next cycle), LightGBM; the ``p_buy`` of decisioning.
* ``clv``: BG/NBD + Gamma-Gamma parameters (``ml/clv.py``), scored in closed form: ``p_alive``,
  expected purchases next cycle and over a year, expected spend per purchase, 52-week CLV.
* ``uplift``: per action ``uplift__<offer>__<channel>`` (conversion) and ``uplift_margin__...``
  (``ml/uplift.py``).
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ml import evaluate, features
from ml.uplift import BoosterParams, Learner

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from campaign_loop.config import Settings
    from ml.registry import GateDecision

EXPERIMENT = "campaign-loop"
MODEL_NAMES: tuple[str, ...] = ("churn", "propensity", "clv", "uplift")
CLASSIFIER_LABELS: dict[str, features.Label] = {"churn": "churned", "propensity": "purchased_next_cycle"}
ARTIFACT_PATH = "model"
Mode = Literal["auto", "manual"]
Status = Literal["promoted", "awaiting_review", "kept_champion", "rejected", "skipped", "failed"]


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
    uplift_learner: Learner = "x"
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


# ------------------------------------------------------------------------------------ model objects


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


# ------------------------------------------------------------------------------------------ reports


@dataclass
class ModelReport:
    name: str
    status: Status
    reason: str
    run_id: str | None = None
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class TrainReport:
    cycle_id: str
    mode: Mode
    models: dict[str, ModelReport] = field(default_factory=dict)
    seconds: float = 0.0
    plots: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (what crosses an Airflow task boundary)."""
        return json.loads(json.dumps(asdict(self), default=str, allow_nan=True))

    def summary(self) -> str:
        lines = [f"cycle {self.cycle_id} ({self.mode}), {self.seconds:.1f}s" + ("" if self.plots else ", plots skipped: no matplotlib")]
        for m in self.models.values():
            lines.append(f"- {m.name}: {m.status} (v{m.version or '-'}): {m.reason}")
        return "\n".join(lines)


@dataclass
class _Trained:
    """What a model trainer hands to the shared logging/gating step."""

    model: Any
    metrics: dict[str, float]
    champion_metrics_fn: Callable[[Any], dict[str, float]]  # scores a loaded champion on the same rows
    params: dict[str, Any]
    rows: dict[str, int]
    input_example: pd.DataFrame
    description: str
    train_window: tuple[date | None, date | None]
    plot_fn: Callable[[Path, Any | None], list[Path]] | None = None


class _Skip(Exception):
    """Too little data for a model this cycle."""


# ------------------------------------------------------------------------------------------ entry


def train_cycle(
    settings: Settings,
    cycle_id: str,
    lineage: Mapping[str, Any] | None = None,
    mode: Mode = "auto",
    *,
    schema: str = features.DEFAULT_SCHEMA,
    config: TrainConfig | None = None,
    models: tuple[str, ...] = MODEL_NAMES,
) -> TrainReport:
    """Train, register and gate every model for the cycle that starts on ``cycle_id`` (its data loaded).

    ``lineage``: ``dbt_invocation_id``, ``validation_result_id`` and any other keys to tag the runs with
    (other keys become ``lineage.<key>`` tags). Uses the tracking URI already configured in the process
    if one was set explicitly, else the settings' local store (``ml.tracking.configure``).
    """
    import mlflow

    from ml import tracking

    if mode not in ("auto", "manual"):
        raise ValueError(f"mode must be 'auto' or 'manual', not {mode!r}")
    if unknown := set(models) - set(MODEL_NAMES):
        raise ValueError(f"unknown models {sorted(unknown)}")
    config = config or TrainConfig()
    started = time.perf_counter()
    if not mlflow.is_tracking_uri_set():
        tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(EXPERIMENT, tracking.artifact_root(settings))
    client = mlflow.MlflowClient()
    as_of = date.fromisoformat(cycle_id)
    report = TrainReport(cycle_id=cycle_id, mode=mode, plots=config.plots and _plots_available())
    config = replace(config, plots=report.plots)
    classifier_frames: dict[str, pd.DataFrame] = {}

    def classifier_frame(name: str) -> pd.DataFrame:
        # Churn and propensity share their feature rows: read them once, hand each model its own frame.
        if not classifier_frames:
            labels = [CLASSIFIER_LABELS[m] for m in models if m in CLASSIFIER_LABELS]
            classifier_frames.update(features.classifier_frames(settings.warehouse_path, labels, schema=schema, max_as_of=as_of))
        return classifier_frames.pop(CLASSIFIER_LABELS[name])

    trainers: dict[str, Callable[[], _Trained]] = {
        "churn": lambda: _train_classifier(classifier_frame("churn"), "churn", as_of, config),
        "propensity": lambda: _train_classifier(classifier_frame("propensity"), "propensity", as_of, config),
        "clv": lambda: _train_clv(settings, as_of, schema, config),
        "uplift": lambda: _train_uplift(settings, as_of, schema, config),
    }
    for name in models:
        model_started = time.perf_counter()
        try:
            trained = trainers[name]()
        except _Skip as skip:
            report.models[name] = ModelReport(name, "skipped", f"too little data: {skip}; the champion stays")
            continue
        report.models[name] = _log_register_gate(
            client, experiment_id, name, trained, cycle_id, dict(lineage or {}), mode, config
        )
        report.models[name].seconds = time.perf_counter() - model_started
    report.seconds = time.perf_counter() - started
    return report


def _plots_available() -> bool:
    from ml import plots

    return plots.available()


# ------------------------------------------------------------------------------------ classifiers


def _window(as_of: date, dates: list[date], n: int) -> list[date]:
    return [d for d in dates if d <= as_of][-n:]


def _train_classifier(frame: pd.DataFrame, name: str, as_of: date, config: TrainConfig) -> _Trained:
    """Train on ``frame``, the :func:`ml.features.classifier_frame` of the model's label up to ``as_of``."""
    from lightgbm import LGBMClassifier

    label = CLASSIFIER_LABELS[name]
    dates = sorted(frame["as_of_date"].unique())
    if not dates:
        raise _Skip(f"no as-of date up to {as_of} has a complete '{label}' window")
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
        raise _Skip(f"{rows['train']} training rows with {rows['train_positives']} positives "
                    f"(need {config.min_train_rows} and {config.min_train_positives})")
    if rows["holdout_positives"] < config.min_eval_positives or rows["holdout_positives"] == rows["holdout"]:
        raise _Skip(f"{rows['holdout_positives']} positives among {rows['holdout']} holdout rows "
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
        from ml import plots

        return [
            plots.roc_curve_plot(y, p, directory / "roc.png", f"{name}: ROC on holdout"),
            plots.calibration_plot(evaluate.reliability_bins(y, p), directory / "calibration.png", f"{name}: calibration"),
            plots.feature_importance_plot(cols, estimator.booster_.feature_importance("gain"), directory / "feature_importance.png"),
        ]

    window = (min(train_dates), max(train_dates))
    what = ("P(no purchase in the 28 days from the as-of date)" if name == "churn"
            else "P(any purchase in the next cycle, i.e. the cycle_days from the as-of date)")
    return _Trained(
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


# ---------------------------------------------------------------------------------------------- CLV


def _train_clv(settings: Settings, as_of: date, schema: str, config: TrainConfig) -> _Trained:
    from ml import clv

    # Calibrate up to H weeks before the as-of date and check the forecast on those H weeks.
    calibration_end = as_of - timedelta(weeks=config.clv_holdout_weeks) - timedelta(days=1)
    holdout_end = as_of - timedelta(days=1)
    log = features.transactions(settings.warehouse_path, as_of, schema=schema)
    if log.empty:
        raise _Skip("no transactions")
    summary = clv.rfm_summary(log, calibration_end, unit="W")
    repeaters = int(((summary["frequency"] > 0) & (summary["monetary_value"] > 0)).sum())
    rows = {"customers": len(summary), "repeaters": repeaters, "transactions": len(log)}
    if len(summary) < config.clv_min_customers or repeaters < 20:
        raise _Skip(f"{len(summary)} customers with {repeaters} repeaters before {calibration_end}")
    fitted = clv.fit_clv(summary, unit="W")
    model = ClvPredictor(params=fitted.params, horizon_weeks=settings.cycle_days / 7.0)
    horizon = float(config.clv_holdout_weeks)
    actual = clv.repeat_purchases_between(log, calibration_end, holdout_end).reindex(summary["customer_id"]).fillna(0).to_numpy()
    rfm = summary[["frequency", "recency", "T", "monetary_value"]]

    def metrics_of(predictor: ClvPredictor) -> dict[str, float]:
        return evaluate.clv_metrics(actual, predictor.expected_purchases(rfm, horizon))

    check = clv.holdout_check(fitted.bgnbd, summary, pd.Series(actual, index=summary["customer_id"]), horizon=horizon)

    def plot(directory: Path, champion: Any | None) -> list[Path]:
        from ml import plots

        return [plots.clv_holdout_plot(check.by_frequency, directory / "clv_holdout.png")]

    example = pd.DataFrame({"frequency": [0, 2, 5], "recency": [0, 60, 200], "t": [30, 120, 300],
                            "monetary_value": [0.0, 70.0, 95.0]}).astype("float64")
    return _Trained(
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


# ------------------------------------------------------------------------------------------- uplift


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


def _train_uplift(settings: Settings, as_of: date, schema: str, config: TrainConfig) -> _Trained:
    from ml.uplift import UpliftModel

    frame = features.uplift_frame(settings.warehouse_path, schema=schema, max_as_of=as_of)
    if frame.empty:
        raise _Skip("no finished campaign assignments")
    held = features.evaluation_mask(frame["customer_id"], config.evaluation_share)
    train, holdout = frame[~held], frame[held]

    def arm_counts(part: pd.DataFrame) -> tuple[int, int, int, int]:
        t = part["treatment"] == 1
        return int(t.sum()), int((~t).sum()), int(part.loc[t, "is_converted"].sum()), int(part.loc[~t, "is_converted"].sum())

    n_t, n_c, y_t, y_c = arm_counts(train)
    h_t, h_c, hy_t, hy_c = arm_counts(holdout)
    rows = {"train_treated": n_t, "train_control": n_c, "train_conversions_treated": y_t,
            "train_conversions_control": y_c, "holdout_treated": h_t, "holdout_control": h_c,
            "holdout_conversions": hy_t + hy_c, "actions": int(frame["action"].nunique())}
    if n_t < config.uplift_min_treated or n_c < config.uplift_min_control or min(y_t, y_c) < config.uplift_min_conversions:
        raise _Skip(f"{n_t} treated / {n_c} control training rows with {y_t} / {y_c} conversions "
                    f"(need {config.uplift_min_treated} / {config.uplift_min_control} and {config.uplift_min_conversions} each)")
    if min(h_t, h_c) == 0 or hy_t + hy_c < config.min_eval_positives:
        raise _Skip(f"holdout of {h_t} treated / {h_c} control rows with {hy_t + hy_c} conversions")
    model = UpliftModel(learner=config.uplift_learner, params=config.uplift_params,
                        min_action_rows=config.uplift_min_action_rows, features=config.features).fit(train)
    t = holdout["treatment"].to_numpy()
    y = holdout["is_converted"].to_numpy()
    margin = holdout["margin"].to_numpy()
    predicted: list[tuple[Any, np.ndarray]] = []

    def conversion_effect(candidate: Any) -> np.ndarray:
        # The metrics and the plot rank the same holdout rows: predict them once per model.
        for known, effect in predicted:
            if known is candidate:
                return effect
        predicted.append((candidate, candidate.effect(holdout, "conversion")))
        return predicted[-1][1]

    def metrics_of(candidate: Any) -> dict[str, float]:
        covered = holdout["action"].isin(candidate.covered_actions).to_numpy()
        # An action the model does not cover ranks as zero uplift, as the scorer would use it.
        score = np.where(covered, np.nan_to_num(conversion_effect(candidate)), 0.0)
        margin_score = np.where(covered, np.nan_to_num(candidate.effect(holdout, "margin")), 0.0)
        out = evaluate.uplift_metrics(score, t, y)
        out.update(evaluate.uplift_metrics(margin_score, t, margin, prefix="margin_"))
        for action, part in holdout.assign(_score=score).groupby("action"):
            if part["treatment"].nunique() == 2:
                out[f"qini_coefficient.{action}"] = evaluate.qini_coefficient(
                    part["_score"].to_numpy(), part["treatment"].to_numpy(), part["is_converted"].to_numpy())
        out["qini_z"] = _qini_z(score, t, y, config.uplift_bootstrap)
        out["calibration_slope"], out["calibration_slope_se"] = evaluate.uplift_calibration(score, t, y)
        out["ranking_weight"] = evaluate.ranking_weight(out["calibration_slope"], out["calibration_slope_se"])
        out["mean_predicted_uplift"] = float(score.mean())
        out["observed_uplift"] = float(y[t == 1].mean() - y[t == 0].mean())
        return out

    def plot(directory: Path, champion: Any | None) -> list[Path]:
        from ml import plots

        curves = {"challenger": evaluate.uplift_curves(np.nan_to_num(conversion_effect(model)), t, y)}
        if champion is not None:
            curves["champion"] = evaluate.uplift_curves(np.nan_to_num(conversion_effect(champion)), t, y)
        importance = model.learners["conversion"].models["mu1"].booster_.feature_importance("gain")
        return [
            plots.uplift_curves_plot(curves, directory / "qini_gain.png", "uplift (conversion) on holdout assignments"),
            plots.feature_importance_plot(model.learners["conversion"].columns, importance,
                                          directory / "feature_importance_mu1.png", "treated response model (gain)"),
        ]

    cycles = sorted(frame["as_of_date"].unique())
    example = holdout[list(config.features)].head(5).reset_index(drop=True)
    metrics = metrics_of(model)
    model.ranking_weight = metrics["ranking_weight"]
    return _Trained(
        model=model,
        metrics=metrics,
        champion_metrics_fn=metrics_of,
        params={**asdict(config.uplift_params), "learner": config.uplift_learner,
                "covered_actions": ",".join(model.covered_actions), "min_action_rows": config.uplift_min_action_rows},
        rows=rows,
        input_example=example,
        description=(
            f"uplift: per action (<offer>__<channel>), the change in P(purchase in the campaign window) "
            f"(uplift__*) and in margin (uplift_margin__*) from sending it, {config.uplift_learner.upper()}-learner over "
            "LightGBM pooled across actions (ml/uplift.py). For: consenting customers eligible for a campaign. "
            f"Features: the {len(config.features)} customer features as of the campaign's cycle start plus the action's "
            f"discount and channel. Trained on the treatment and control assignments of cycles {cycles[0]}..{cycles[-1]} "
            f"(80 % of customers); covered actions: {', '.join(model.covered_actions) or 'none'}."
        ),
        train_window=(cycles[0], cycles[-1]),
        plot_fn=plot if config.plots else None,
    )


# -------------------------------------------------------------------------- logging, registry, gate


def pip_requirements() -> list[str]:
    """Pinned to the versions in this environment. Explicit, because without it MLflow infers them
    by running ``uv export`` on the project."""
    return list(_installed_versions())


@functools.cache
def _installed_versions() -> tuple[str, ...]:
    # Installed versions do not change within a process; each lookup scans site-packages.
    from importlib.metadata import version

    return tuple(f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy", "scipy"))


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _load_champion(name: str, client: MlflowClient) -> tuple[Any | None, str | None]:
    import mlflow

    from ml.registry import champion_uri, champion_version

    current = champion_version(name, client)
    if current is None:
        return None, None
    return mlflow.sklearn.load_model(champion_uri(name)), str(current.version)


def _log_register_gate(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    trained: _Trained,
    cycle_id: str,
    lineage: dict[str, Any],
    mode: Mode,
    config: TrainConfig,
) -> ModelReport:
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature
    from mlflow.utils.time import get_current_time_millis

    from ml import registry, tracking

    champion, champion_version = _load_champion(name, client)
    champion_metrics = trained.champion_metrics_fn(champion) if champion is not None else None
    rules = registry.GATE_RULES[name]
    decision: GateDecision = registry.gate(name, trained.metrics, champion_metrics, rules)
    known = {"dbt_invocation_id", "validation_result_id"}
    tags = {
        **tracking.lineage_tags(
            cycle_id=cycle_id,
            dbt_invocation_id=lineage.get("dbt_invocation_id"),
            validation_result_id=lineage.get("validation_result_id"),
            train_start=trained.train_window[0],
            train_end=trained.train_window[1],
            row_counts=trained.rows,
        ),
        "model_name": name, "gate.mode": mode,
        **{f"lineage.{k}": str(v) for k, v in lineage.items() if k not in known},
    }
    metrics = _finite(trained.metrics)
    if champion_metrics is not None:
        metrics.update(_finite({f"champion.{k}": v for k, v in champion_metrics.items()}))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-{cycle_id}") as run:
        run_id = run.info.run_id
        # One request for the run's tags, params and metrics: every round trip to the server costs.
        now = get_current_time_millis()
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0, run_id=run_id) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in trained.params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            (directory / "gate_decision.md").write_text(decision.to_markdown())
            (directory / "features.json").write_text(json.dumps(list(config.features)))
            mlflow.log_artifact(str(directory / "gate_decision.md"))
            mlflow.log_artifact(str(directory / "features.json"))
            if trained.plot_fn is not None:
                for path in trained.plot_fn(directory / "plots", champion):
                    mlflow.log_artifact(str(path), artifact_path="plots")
        example = trained.input_example
        output = trained.model.predict(example)
        info = mlflow.sklearn.log_model(
            sk_model=trained.model,
            name=ARTIFACT_PATH,
            # Our model objects are not sklearn estimators: skops (the safe default) cannot store them.
            serialization_format="cloudpickle",
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
    version = registry.register_challenger(
        run_id, name, ARTIFACT_PATH, description=trained.description,
        tags={"cycle_id": cycle_id}, model_uri=info.model_uri, client=client,
    )
    client.update_registered_model(name, description=trained.description.split(" Trained on")[0].split(" Fitted on")[0])
    promoted = registry.apply_decision(client, name, version, decision, mode)
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in decision.tags().items()])
    if promoted:
        status: Status = "promoted"
    elif decision.promote:
        status = "awaiting_review"
    elif champion is None:
        status = "rejected"
    else:
        status = "kept_champion"
    return ModelReport(
        name=name, status=status, reason=decision.reason, run_id=run_id, version=version,
        metrics=trained.metrics, champion_metrics=champion_metrics, champion_version=champion_version,
        rows=trained.rows,
    )
