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


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp
