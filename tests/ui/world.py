"""A tiny world for the UI tests: the demo driver runs the real DAG through `airflow dags test`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from campaign_loop import demo
from campaign_loop.config import Settings

_airflow_env = demo.airflow_env


def airflow_env_without_none(settings: Settings) -> dict[str, str]:
    """`demo.airflow_env` minus the settings that are None: it passes them down as the string "None"."""
    env = _airflow_env(settings)
    unset = [k for k, v in settings.model_dump().items() if v is None]
    for key in unset:
        env.pop(f"CAMPAIGN_LOOP_{key.upper()}", None)
    return env


def build_world(home: Path, **world: object) -> Settings:
    settings = Settings(home=home, **world)
    demo.airflow_env = airflow_env_without_none  # work around until demo.airflow_env drops None settings
    try:
        status = demo.run_demo(settings, fresh=True)
    finally:
        demo.airflow_env = _airflow_env
    if status != 0:
        raise RuntimeError(f"demo failed ({status}); see {settings.root / 'logs' / 'demo.log'}")
    return settings


if __name__ == "__main__":  # python -m tests.ui.world HOME [key=value ...]
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    build_world(Path(sys.argv[1]), **dict(a.split("=", 1) for a in sys.argv[2:]))
