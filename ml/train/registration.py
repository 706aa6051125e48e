"""One trained model into MLflow: a run with its lineage, metrics, artifacts and model, registered as
``challenger``, then the gate of ``ml/registry.py`` against the champion on the same holdout."""

from __future__ import annotations

import functools
import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ml import registry, tracking
from ml.arviz_stamp import settle_arviz_stamp
from ml.registry import GateDecision, champion_uri, champion_version
from ml.train.config import TrainConfig
from ml.train.trained import Trained

if TYPE_CHECKING:
    from mlflow import MlflowClient

ARTIFACT_PATH = "model"
Mode = Literal["auto", "manual"]
Status = Literal["promoted", "awaiting_review", "kept_champion", "rejected", "skipped", "failed"]


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


@dataclass(frozen=True)
class CycleRun:
    """Where and under which lineage a cycle logs its models, and how the gate may move the champion."""

    client: MlflowClient
    experiment_id: str
    cycle_id: str
    lineage: dict[str, Any]  # dbt_invocation_id, validation_result_id; other keys become lineage.<key> tags
    mode: Mode
    config: TrainConfig


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

    current = champion_version(name, client)
    if current is None:
        return None, None
    settle_arviz_stamp()  # a CLV champion unpickles pymc-marketing
    return mlflow.sklearn.load_model(champion_uri(name)), str(current.version)


def log_register_gate(run: CycleRun, name: str, trained: Trained) -> ModelReport:
    """Log ``trained`` as a run, register it as ``challenger`` and apply the gate against the champion."""
    champion, champion_version = _load_champion(name, run.client)
    champion_metrics = trained.champion_metrics_fn(champion) if champion is not None else None
    decision: GateDecision = registry.gate(name, trained.metrics, champion_metrics, registry.GATE_RULES[name])
    metrics = _finite(trained.metrics)
    if champion_metrics is not None:
        metrics.update(_finite({f"champion.{k}": v for k, v in champion_metrics.items()}))
    run_id, model_uri = _log_run(run, name, trained, metrics, decision, champion)
    version = registry.register_challenger(
        run_id, name, ARTIFACT_PATH, description=trained.description,
        tags={"cycle_id": run.cycle_id}, model_uri=model_uri, client=run.client,
    )
    run.client.update_registered_model(name, description=trained.description.split(" Trained on")[0].split(" Fitted on")[0])
    promoted = registry.apply_decision(run.client, name, version, decision, run.mode)
    _tag(run.client, run_id, decision.tags())
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


def _tags(run: CycleRun, name: str, trained: Trained) -> dict[str, Any]:
    """The run's lineage tags (``ml.tracking.lineage_tags``), its model and gate mode, and the other lineage."""
    known = {"dbt_invocation_id", "validation_result_id"}
    return {
        **tracking.lineage_tags(
            cycle_id=run.cycle_id,
            dbt_invocation_id=run.lineage.get("dbt_invocation_id"),
            validation_result_id=run.lineage.get("validation_result_id"),
            train_start=trained.train_window[0],
            train_end=trained.train_window[1],
            row_counts=trained.rows,
        ),
        "model_name": name, "gate.mode": run.mode,
        **{f"lineage.{k}": str(v) for k, v in run.lineage.items() if k not in known},
    }


def _tag(client: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def _log_run(run: CycleRun, name: str, trained: Trained, metrics: dict[str, float], decision: GateDecision,
             champion: Any | None) -> tuple[str, str]:
    """The model's MLflow run: tags, params and metrics, the gate's table, the plots and the model; returns
    (run id, model URI)."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature
    from mlflow.utils.time import get_current_time_millis

    tags = _tags(run, name, trained)
    with mlflow.start_run(experiment_id=run.experiment_id, run_name=f"{name}-{run.cycle_id}") as active:
        run_id = active.info.run_id
        # One request for the run's tags, params and metrics: every round trip to the server costs.
        now = get_current_time_millis()
        run.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0, run_id=run_id) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in trained.params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            (directory / "gate_decision.md").write_text(decision.to_markdown())
            (directory / "features.json").write_text(json.dumps(list(run.config.features)))
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
    return run_id, info.model_uri
