from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Before anything imports Airflow or Cosmos (both read their configuration once, at import): a private
# Airflow home, no example DAGs, and no Cosmos cache in Airflow Variables (tests have no metadata DB).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="campaign-loop-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_CACHE", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SCARF_ANALYTICS", "false")


# mlflow.set_tracking_uri / set_registry_uri write these into os.environ, where every later caller reads them.
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(scope="module", autouse=True)
def mlflow_uri_restored() -> Iterator[None]:
    """A module that points MLflow at its own store leaves it behind: a later module's cycle report then read
    another world's (since deleted) store and drew no model chart (CI, serial run)."""
    import sys

    saved = {k: os.environ.get(k) for k in MLFLOW_URI_VARIABLES}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"] or "")
    restore_environ(saved)  # set_*_uri wrote them again


def restore_environ(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp
