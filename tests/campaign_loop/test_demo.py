"""The demo hands its settings to Airflow's processes through the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_loop.config import Settings
from campaign_loop.runner import airflow_env


@pytest.mark.parametrize("overrides", [
    {},
    {"channel_budgets": "sms:500,email:2000", "offers": "message,pct10", "faults": "drop_source:orders@1",
     "kpi_alert_callback": "alerts:send", "exploration": "epsilon"},
])
def test_every_setting_survives_the_trip_through_the_environment(
    overrides: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A task's Settings() reads only the environment: a value the demo writes in a form Settings cannot
    # read back (a mapping as "{}") fails every task of the run.
    sent = Settings(home=tmp_path, **overrides)
    for key, value in airflow_env(sent).items():
        if key.startswith("CAMPAIGN_LOOP_"):
            monkeypatch.setenv(key, value)
    received = Settings()
    assert received.model_dump() == sent.model_dump() | {"home": tmp_path.resolve()}
