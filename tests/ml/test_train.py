"""train_cycle on the synthetic marts: runs, lineage, artifacts, registry aliases and the gate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml.train import TrainConfig, TrainReport, train_cycle
from ml.uplift import BoosterParams

LINEAGE = {"dbt_invocation_id": "dbt-inv-123", "validation_result_id": "val-456", "dag_run_id": "manual__1",
           "data_cycle_id": "2026-02-09"}
CYCLE = "2026-02-16"  # the synthetic marts' last complete as-of date (dates 2026-01-05 .. 2026-02-23)
FAST = TrainConfig(
    classifier_params=BoosterParams(n_estimators=60, num_leaves=15, min_child_samples=50, n_jobs=1),
    uplift_params=BoosterParams(n_estimators=60, num_leaves=7, min_child_samples=30, n_jobs=1),
    clv_holdout_weeks=4,
)
# Deliberately worse: the classifiers see only membership and consent, not the purchase history.
WORSE = TrainConfig(
    classifier_params=FAST.classifier_params, uplift_params=FAST.uplift_params, clv_holdout_weeks=4,
    features=("is_member", "consent_push", "consent_sms", "consent_kakao"),
)


@pytest.fixture(scope="module")
def first(synthetic_home: tuple[Path, dict], mlflow_store: str) -> tuple[Settings, TrainReport]:
    home, _ = synthetic_home
    settings = Settings(home=home)
    return settings, train_cycle(settings, CYCLE, LINEAGE, mode="auto", config=FAST)


def test_first_cycle_trains_and_promotes_every_model(first: tuple[Settings, TrainReport]) -> None:
    _, report = first
    assert set(report.models) == {"churn", "propensity", "clv", "uplift"}
    for name, model in report.models.items():
        assert model.status == "promoted", (name, model.reason, model.metrics)
        assert model.version == "1"
    assert report.models["propensity"].metrics["roc_auc"] > 0.6
    assert report.models["uplift"].metrics["qini_coefficient"] > 0
    assert report.to_dict()["models"]["churn"]["status"] == "promoted"


def test_runs_carry_lineage_metrics_artifacts_and_model(first: tuple[Settings, TrainReport]) -> None:
    import mlflow

    _, report = first
    client = mlflow.MlflowClient()
    for name, model in report.models.items():
        run = client.get_run(model.run_id)
        tags = run.data.tags
        assert tags["cycle_id"] == CYCLE
        assert tags["dbt_invocation_id"] == "dbt-inv-123"
        assert tags["validation_result_id"] == "val-456"
        assert tags["lineage.dag_run_id"] == "manual__1"
        assert tags["lineage.data_cycle_id"] == "2026-02-09"  # the data's cycle beside the scored one
        assert "train_window_end" in tags
        assert any(k.startswith("rows.") for k in tags)
        assert tags["gate.decision"] == "promote"
        assert run.data.metrics, name
        assert run.data.params, name
        artifacts = {a.path for a in client.list_artifacts(model.run_id)}
        assert {"gate_decision.md", "features.json", "plots"} <= artifacts, (name, artifacts)
        assert client.list_artifacts(model.run_id, "plots"), name
    assert "roc_auc" in client.get_run(report.models["churn"].run_id).data.metrics
    uplift_run = client.get_run(report.models["uplift"].run_id).data
    assert "qini_coefficient" in uplift_run.metrics
    # The learner is named with the evidence (or the lack of it) that chose it.
    assert uplift_run.params["learner"] in {"x", "t", "dr"} and uplift_run.params["learner_choice"]


def test_versions_are_aliased_and_described(first: tuple[Settings, TrainReport]) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    for name in ("churn", "propensity", "clv", "uplift"):
        challenger = client.get_model_version_by_alias(name, "challenger")
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(challenger.version) == str(champion.version) == "1"
        assert "## Promotion gate" in champion.description
        assert client.get_registered_model(name).description.startswith(name)
        model_info = mlflow.models.get_model_info(f"models:/{name}@champion")
        assert model_info.signature is not None
        assert model_info.saved_input_example_info is not None


def test_champions_load_by_alias_and_predict(first: tuple[Settings, TrainReport], synthetic_home: tuple[Path, dict]) -> None:
    import mlflow

    _, frames = synthetic_home
    example = frames["fct_customer_features"].head(20).copy()
    example["is_member"] = example["member_id"].notna()
    from ml.features import FEATURES, typed_features

    rows = typed_features(example)[list(FEATURES)]
    p = mlflow.pyfunc.load_model("models:/propensity@champion").predict(rows)
    assert len(p) == 20 and ((0 <= p) & (p <= 1)).all()
    uplift = mlflow.pyfunc.load_model("models:/uplift@champion").predict(rows)
    assert "uplift__pct20__email" in pd.DataFrame(uplift).columns


def test_a_worse_challenger_is_registered_but_not_promoted(first: tuple[Settings, TrainReport]) -> None:
    import mlflow

    settings, _ = first
    report = train_cycle(settings, CYCLE, LINEAGE, mode="auto", config=WORSE, models=("propensity", "churn"))
    client = mlflow.MlflowClient()
    for name in ("propensity", "churn"):
        model = report.models[name]
        assert model.status in {"kept_champion", "rejected"}, (name, model.reason)
        assert model.version == "2"
        assert model.champion_metrics is not None and model.champion_version == "1"
        # the champion was re-scored on the same holdout rows as the challenger
        assert model.champion_metrics["rows"] == model.metrics["rows"]
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
        assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
        assert client.get_model_version(name, "2").tags["gate.decision"] == "reject"


def test_too_little_data_skips_and_keeps_the_champion(first: tuple[Settings, TrainReport]) -> None:
    settings, _ = first
    strict = TrainConfig(classifier_params=FAST.classifier_params, uplift_params=FAST.uplift_params,
                         min_train_positives=10**9, uplift_min_treated=10**9)
    report = train_cycle(settings, CYCLE, LINEAGE, config=strict, models=("propensity", "uplift"))
    for model in report.models.values():
        assert model.status == "skipped"
        assert "too little data" in model.reason
        assert model.version is None


def test_manual_mode_never_moves_the_champion(first: tuple[Settings, TrainReport]) -> None:
    import mlflow

    settings, _ = first
    report = train_cycle(settings, CYCLE, LINEAGE, mode="manual", config=FAST, models=("propensity",))
    assert report.models["propensity"].status in {"awaiting_review", "kept_champion"}
    assert str(mlflow.MlflowClient().get_model_version_by_alias("propensity", "champion").version) == "1"


def test_versions_pickled_before_the_package_split_still_find_their_classes() -> None:
    import pickle

    from ml.train import predictors

    # cloudpickle stores the model classes by reference; until ml/train.py became a package that was
    # ml.train.<class>, so a home's champions registered then load only while these names resolve.
    for name in ("ProbabilityModel", "ClvPredictor"):
        assert pickle.loads(f"cml.train\n{name}\n.".encode()) is getattr(predictors, name)
