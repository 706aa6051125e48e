"""The cycle's training: every model's trainer in turn, each result logged, registered and gated."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from ml import features, plots, tracking
from ml.train.classifiers import train_classifier
from ml.train.clv import train_clv
from ml.train.config import CLASSIFIER_LABELS, EXPERIMENT, MODEL_NAMES, TrainConfig
from ml.train.registration import CycleRun, Mode, ModelReport, log_register_gate
from ml.train.trained import Skip, Trained
from ml.train.uplift import train_uplift

if TYPE_CHECKING:
    from campaign_loop.config import Settings


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

    if mode not in ("auto", "manual"):
        raise ValueError(f"mode must be 'auto' or 'manual', not {mode!r}")
    if unknown := set(models) - set(MODEL_NAMES):
        raise ValueError(f"unknown models {sorted(unknown)}")
    config = config or TrainConfig()
    started = time.perf_counter()
    if not mlflow.is_tracking_uri_set():
        tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(EXPERIMENT, tracking.artifact_root(settings))
    report = TrainReport(cycle_id=cycle_id, mode=mode, plots=config.plots and _plots_available())
    config = replace(config, plots=report.plots)
    run = CycleRun(client=mlflow.MlflowClient(), experiment_id=experiment_id, cycle_id=cycle_id,
                   lineage=dict(lineage or {}), mode=mode, config=config)
    trainers = _trainers(settings, date.fromisoformat(cycle_id), schema, config, models)
    for name in models:
        model_started = time.perf_counter()
        try:
            trained = trainers[name]()
        except Skip as skip:
            report.models[name] = ModelReport(name, "skipped", f"too little data: {skip}; the champion stays")
            continue
        report.models[name] = log_register_gate(run, name, trained)
        report.models[name].seconds = time.perf_counter() - model_started
    report.seconds = time.perf_counter() - started
    return report


def _trainers(settings: Settings, as_of: date, schema: str, config: TrainConfig,
              models: tuple[str, ...]) -> dict[str, Callable[[], Trained]]:
    """Each model's trainer, called when its turn comes."""
    classifier_frames: dict[str, pd.DataFrame] = {}

    def classifier_frame(name: str) -> pd.DataFrame:
        # Churn and propensity share their feature rows: read them once, hand each model its own frame.
        if not classifier_frames:
            labels = [CLASSIFIER_LABELS[m] for m in models if m in CLASSIFIER_LABELS]
            classifier_frames.update(features.classifier_frames(settings.warehouse_path, labels, schema=schema, max_as_of=as_of))
        return classifier_frames.pop(CLASSIFIER_LABELS[name])

    return {
        "churn": lambda: train_classifier(classifier_frame("churn"), "churn", as_of, config),
        "propensity": lambda: train_classifier(classifier_frame("propensity"), "propensity", as_of, config),
        "clv": lambda: train_clv(settings, as_of, schema, config),
        "uplift": lambda: train_uplift(settings, as_of, schema, config),
    }


def _plots_available() -> bool:
    return plots.available()
