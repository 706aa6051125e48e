"""Promotion gate: pure decisions (incl. a property test) and their effect on a real SQLite-backed registry."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml import registry
from ml.registry import GATE_RULES, MetricRule, gate
from tests.conftest import MLFLOW_URI_VARIABLES, restore_environ

RULES = {
    "auc": MetricRule(min_value=0.6, tolerance=0.01),
    "log_loss": MetricRule(greater_is_better=False, max_value=1.0, tolerance=0.05, tolerance_kind="relative",
                           primary=False),
}


# ------------------------------------------------------------------------------------ pure decisions


def test_worse_challenger_is_not_promoted() -> None:
    decision = gate("m", {"auc": 0.70, "log_loss": 0.50}, {"auc": 0.75, "log_loss": 0.50}, RULES)
    assert not decision.promote
    assert "auc" in decision.reason


def test_better_challenger_is_promoted() -> None:
    decision = gate("m", {"auc": 0.78, "log_loss": 0.49}, {"auc": 0.75, "log_loss": 0.50}, RULES)
    assert decision.promote
    assert [r.passed for r in decision.rows] == [True, True]


def test_tie_keeps_the_champion() -> None:
    same = {"auc": 0.75, "log_loss": 0.50}
    decision = gate("m", dict(same), dict(same), RULES)
    assert not decision.promote
    assert "tie" in decision.reason


def test_better_primary_but_secondary_worse_beyond_tolerance_is_rejected() -> None:
    # log_loss 0.50 -> 0.53 is 6 % worse, beyond the 5 % relative tolerance
    decision = gate("m", {"auc": 0.80, "log_loss": 0.53}, {"auc": 0.75, "log_loss": 0.50}, RULES)
    assert not decision.promote
    assert "log_loss" in decision.reason


def test_degradation_within_tolerance_does_not_block_an_improvement() -> None:
    decision = gate("m", {"auc": 0.80, "log_loss": 0.52}, {"auc": 0.75, "log_loss": 0.50}, RULES)
    assert decision.promote


def test_only_a_secondary_metric_better_is_not_enough() -> None:
    decision = gate("m", {"auc": 0.75, "log_loss": 0.40}, {"auc": 0.75, "log_loss": 0.50}, RULES)
    assert not decision.promote


def test_first_cycle_promotes_a_challenger_above_the_floor() -> None:
    decision = gate("m", {"auc": 0.65, "log_loss": 0.6}, None, RULES)
    assert decision.promote and decision.first_cycle


def test_first_cycle_rejects_a_challenger_below_the_floor() -> None:
    decision = gate("m", {"auc": 0.55, "log_loss": 0.6}, None, RULES)
    assert not decision.promote
    assert "floor" in decision.reason


def test_missing_or_nan_challenger_metric_fails() -> None:
    assert not gate("m", {"auc": 0.9}, None, RULES).promote
    assert not gate("m", {"auc": 0.9, "log_loss": math.nan}, {"auc": 0.7, "log_loss": 0.5}, RULES).promote


def test_rules_default_to_the_central_table() -> None:
    decision = gate("churn", {"roc_auc": 0.7, "log_loss": 0.4}, None)
    assert [r.metric for r in decision.rows] == list(GATE_RULES["churn"])


metric_value = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(
    challenger=st.fixed_dictionaries({"auc": metric_value, "log_loss": metric_value}),
    champion=st.none() | st.fixed_dictionaries({"auc": metric_value, "log_loss": metric_value}),
)
def test_promotion_implies_floors_and_tolerances_hold(
    challenger: dict[str, float], champion: dict[str, float] | None
) -> None:
    decision = gate("m", challenger, champion, RULES)
    if not decision.promote:
        return
    assert 0.6 <= challenger["auc"] and challenger["log_loss"] <= 1.0
    if champion is not None:
        # 1e-12 absorbs float rounding between "a - b <= t" (the gate) and "a <= b + t" (here)
        assert challenger["auc"] >= champion["auc"] - 0.01 - 1e-12
        assert challenger["log_loss"] <= champion["log_loss"] * 1.05 + 1e-12
        assert challenger["auc"] > champion["auc"]  # the only primary metric is strictly better


@settings(max_examples=200, deadline=None)
@given(value=metric_value)
def test_identical_metrics_never_promote(value: float) -> None:
    metrics = {"auc": value, "log_loss": value}
    assert not gate("m", metrics, dict(metrics), RULES).promote


# ------------------------------------------------------------------------------------------ registry


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One SQLite store per module: creating MLflow's tables takes seconds, so tests share it by model name."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    environ = {k: os.environ.get(k) for k in MLFLOW_URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("gate-tests", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield root
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])
    restore_environ(environ)


def _log_tiny_model(coef: float) -> str:
    """Log a two-feature logistic regression and return its run id."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 1, 0, 1])
    model = LogisticRegression(C=coef).fit(x, y)
    with mlflow.start_run() as run:
        # Explicit requirements skip MLflow's environment inference (a `uv export` of the whole project).
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return run.info.run_id


@pytest.fixture
def model_name(request: pytest.FixtureRequest, tracking: Path) -> str:
    return f"gate_{request.node.name}".replace("[", "_").replace("]", "_")


def test_register_challenger_sets_alias_description_and_tags(model_name: str) -> None:
    import mlflow

    version = registry.register_challenger(
        _log_tiny_model(1.0), model_name, "model", description="cycle 2026-01-05", tags={"cycle_id": "2026-01-05"}
    )
    client = mlflow.MlflowClient()
    mv = client.get_model_version_by_alias(model_name, registry.CHALLENGER)
    assert str(mv.version) == version
    assert mv.description == "cycle 2026-01-05"
    assert mv.tags["cycle_id"] == "2026-01-05"
    assert registry.champion_version(model_name) is None


def test_first_promotion_then_worse_challenger_keeps_champion(model_name: str) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    v1 = registry.register_challenger(_log_tiny_model(1.0), model_name)
    first = gate(model_name, {"auc": 0.7, "log_loss": 0.5}, None, RULES)
    assert registry.apply_decision(client, model_name, v1, first) is True
    assert str(registry.champion_version(model_name).version) == v1

    v2 = registry.register_challenger(_log_tiny_model(0.5), model_name)
    worse = gate(model_name, {"auc": 0.65, "log_loss": 0.5}, {"auc": 0.7, "log_loss": 0.5}, RULES)
    assert registry.apply_decision(client, model_name, v2, worse) is False
    assert str(registry.champion_version(model_name).version) == v1
    assert client.get_model_version(model_name, v2).tags["gate.decision"] == "reject"

    v3 = registry.register_challenger(_log_tiny_model(2.0), model_name)
    better = gate(model_name, {"auc": 0.72, "log_loss": 0.5}, {"auc": 0.7, "log_loss": 0.5}, RULES)
    assert registry.apply_decision(client, model_name, v3, better) is True
    assert str(registry.champion_version(model_name).version) == v3
    assert client.get_model_version(model_name, v3).tags["gate.previous_champion"] == v1


def test_manual_mode_records_but_leaves_the_alias(model_name: str) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    v1 = registry.register_challenger(_log_tiny_model(1.0), model_name)
    registry.apply_decision(client, model_name, v1, gate(model_name, {"auc": 0.7, "log_loss": 0.5}, None, RULES))
    v2 = registry.register_challenger(_log_tiny_model(2.0), model_name)
    better = gate(model_name, {"auc": 0.8, "log_loss": 0.4}, {"auc": 0.7, "log_loss": 0.5}, RULES)
    assert registry.apply_decision(client, model_name, v2, better, mode="manual") is False
    assert str(registry.champion_version(model_name).version) == v1
    tags = client.get_model_version(model_name, v2).tags
    assert tags["gate.decision"] == "promote"
    assert tags["gate.mode"] == "manual"
    assert tags["gate.action"] == "awaiting_review"


def test_comparison_table_lands_on_description_and_tags(model_name: str) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    version = registry.register_challenger(_log_tiny_model(1.0), model_name, description="trained on cycle 3")
    decision = gate(model_name, {"auc": 0.72, "log_loss": 0.45}, {"auc": 0.7, "log_loss": 0.5}, RULES)
    registry.apply_decision(client, model_name, version, decision)
    registry.apply_decision(client, model_name, version, decision)  # a rerun must not stack tables
    mv = client.get_model_version(model_name, version)
    assert mv.description.startswith("trained on cycle 3")
    assert mv.description.count(registry.GATE_SECTION) == 1
    assert "| auc (primary) | higher | 0.72 | 0.7 | >= 0.6 | 0.01 | yes |" in mv.description
    assert mv.tags["gate.auc.challenger"] == "0.72"
    assert mv.tags["gate.auc.champion"] == "0.7"
    assert mv.tags["gate.log_loss.passed"] == "true"
    assert mv.tags["gate.reason"] == decision.reason


def test_champion_loads_by_alias_uri(model_name: str) -> None:
    import mlflow

    version = registry.register_challenger(_log_tiny_model(1.0), model_name)
    registry.apply_decision(
        mlflow.MlflowClient(), model_name, version, gate(model_name, {"auc": 0.7, "log_loss": 0.5}, None, RULES)
    )
    model = registry.load_champion(model_name, flavor="sklearn")
    assert registry.champion_uri(model_name) == f"models:/{model_name}@champion"
    assert model.predict(np.array([[1.0, 1.0], [0.0, 0.0]])).tolist() == [1, 0]
    assert registry.load_champion(model_name).predict(np.array([[1.0, 1.0]])).tolist() == [1]
