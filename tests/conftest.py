from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from campaign_loop.config import NO_TELEMETRY  # imports neither Airflow nor Cosmos

# Before anything imports Airflow or Cosmos (both read their configuration once, at import): a private
# Airflow home, no example DAGs, and no Cosmos cache in Airflow Variables (tests have no metadata DB).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="campaign-loop-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_CACHE", "False")
for _key, _value in NO_TELEMETRY.items():
    os.environ.setdefault(_key, _value)


# Session fixtures cheap enough to build on every xdist worker; any other session fixture is a world that
# costs seconds to minutes, and all its tests run on the one worker that builds it.
CHEAP_SESSION_FIXTURES = {"chromium", "artifacts", "tmp_path_factory", "worker_id", "testrun_uid"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One xdist group per test file, merged with every file that shares an expensive session world.

    Grouping by file keeps a module fixture (a world built for one file) on one worker; merging by session
    fixture keeps the suite's demo world from being built once per worker. Groups with end-to-end tests go
    first (``--no-loadscope-reorder`` keeps this order), so the longest ones do not start last.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return  # `-p no:xdist`: one process, nothing to group
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for item in items:
        file = item.nodeid.split("::", 1)[0]
        for name, defs in item._fixtureinfo.name2fixturedefs.items():
            if name not in CHEAP_SESSION_FIXTURES and defs[-1].scope == "session":
                parent[root(f"{defs[-1].baseid}::{name}")] = root(file)
    heavy = {root(item.nodeid.split("::", 1)[0]) for item in items if item.get_closest_marker("e2e")}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(root(item.nodeid.split("::", 1)[0]).replace("@", "_")))
    items.sort(key=lambda item: root(item.nodeid.split("::", 1)[0]) not in heavy)  # stable: files stay in order


# Where CI's wall time goes (bench/ci_timeline.py reads it): each test's worker, xdist group, span (setup to
# teardown) and CPU seconds, its own and its reaped subprocesses' (an Airflow or dbt run is one), one JSON
# line per test in test-artifacts/timeline/<worker>.jsonl.
TIMELINE = Path(__file__).resolve().parents[1] / "test-artifacts" / "timeline"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook starts the workers
def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist) starts afresh
        import shutil

        shutil.rmtree(TIMELINE, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    import time

    started, cpu = time.time(), _cpu_seconds()
    yield
    mark = item.get_closest_marker("xdist_group")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    TIMELINE.mkdir(parents=True, exist_ok=True)
    with (TIMELINE / f"{worker}.jsonl").open("a") as out:
        out.write(json.dumps({"worker": worker, "group": mark.args[0] if mark else None, "test": item.nodeid,
                              "start": started, "end": time.time(),
                              "cpu": round(_cpu_seconds() - cpu, 2)}) + "\n")


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# mlflow.set_tracking_uri / set_registry_uri write these into os.environ, where every later caller reads them.
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(scope="module", autouse=True)
def mlflow_uri_restored() -> Iterator[None]:
    """A module that points MLflow at its own store leaves it behind: a later module's cycle report then read
    another world's (since deleted) store and drew no model chart (CI, serial run)."""
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


# The one demo world of the suite, shared by the demo's end-to-end tests and the browser tests: each Airflow
# demo costs minutes of CI. 2 cycles, so cycle 1 measures a designed campaign; a year of history, so CLV and
# propensity train. Uplift trains only on finished randomised campaigns with >= 10 conversions per arm
# (ml/train/uplift.py), and the control arm converts ~1.5 %: business as usual (10 % of 3,000 customers contacted,
# half held out) gave 4-8 control conversions, so uplift was skipped; a business-as-usual test of every
# consenting customer (half held out) of 5,000 gives ~20 in training from cycle 0. A 30-day raw PII retention,
# so the year of history holds PII past it and the DAG's last task pseudonymises it.
DEMO_WORLD = {"customers": 5000, "cycles": 2, "history_weeks": 52, "bau_contact_share": 1.0,
              "raw_pii_retention_days": 30}
DEMO_RUN_FILE = "test-demo-run.json"  # in the world's home: the demo's output and the ports its links use


@dataclass(frozen=True)
class DemoWorld:
    home: Path
    returncode: int
    stdout: str
    stderr: str
    ports: dict[str, int]  # chosen before the build: the report tasks store links to the site's port

    @property
    def settings(self):  # noqa: ANN201 (config imported lazily: nothing before this file may import Airflow)
        from campaign_loop.config import Settings

        return Settings(home=self.home, **DEMO_WORLD)


def _port_below_ephemeral_range() -> int:
    """A free port outside Linux's ephemeral range (32768-60999): the site's port is chosen before the world
    is built, and minutes of client connections there could otherwise take it as their local port."""
    import random
    import socket

    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorld:
    """`campaign-loop demo` as the README runs it, once per session. ``CAMPAIGN_LOOP_TEST_DEMO_HOME`` keeps the
    world between local runs (a home that holds one is reused as it is)."""
    from campaign_loop.runner import free_port
    from campaign_loop.ui import HOST, SITE_URL_ENV

    kept = os.environ.get("CAMPAIGN_LOOP_TEST_DEMO_HOME")
    if kept and (Path(kept) / DEMO_RUN_FILE).exists():
        return DemoWorld(home=Path(kept), **json.loads((Path(kept) / DEMO_RUN_FILE).read_text()))
    home = Path(kept) if kept else tmp_path_factory.mktemp("demo-world")
    ports = {"airflow": free_port(), "mlflow": free_port(), "site": _port_below_ephemeral_range()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW", "MLFLOW_"))}
    cli = Path(sys.executable).with_name("campaign-loop")
    run = subprocess.run(
        [str(cli), "demo", "--fresh", "--home", str(home), *(f"--{k}={v}" for k, v in DEMO_WORLD.items())],
        env=env | {SITE_URL_ENV: f"http://{HOST}:{ports['site']}"}, capture_output=True, text=True, timeout=1800,
    )
    fields = {"returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr, "ports": ports}
    if run.returncode == 0:
        (home / DEMO_RUN_FILE).write_text(json.dumps(fields))
    return DemoWorld(home=home, **fields)
