"""A small world for the UI tests: the demo driver runs the real DAG through `airflow dags test`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from campaign_loop import demo
from campaign_loop.config import Settings


def build_world(home: Path, **world: object) -> Settings:
    settings = Settings(home=home, **world)
    status = demo.run_demo(settings, fresh=True)
    if status != 0:
        raise RuntimeError(f"demo failed ({status}); see {settings.root / 'logs' / 'demo.log'}")
    return settings


if __name__ == "__main__":  # python -m tests.ui.world HOME [key=value ...]
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    build_world(Path(sys.argv[1]), **dict(a.split("=", 1) for a in sys.argv[2:]))
