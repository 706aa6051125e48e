"""The deploy profile on loopback: PostgreSQL 15 (Airflow's metadata and MLflow's store), Redis, Airflow's
api-server, scheduler, dag-processor and triggerer, two Celery workers and MLflow; two demo cycles of a small
world through the unchanged DAG, one worker SIGKILLed while it trains in cycle 1. The lost task must be retried
on the other worker, the cycle complete, and the published marts equal those of the embedded default
(`campaign-loop demo`: SQLite, `airflow dags test`) on the same world, run beside the stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest

from tests.support import postgres

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
INSTALL = "apt-get install -y redis-server postgresql-15"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (Path(REDIS).exists() and postgres.available()),
                       reason=f"redis-server or PostgreSQL 15 is not installed: {INSTALL}"),
]

# Small: a short history keeps each cycle's dbt and training to seconds; every customer in the business-as-
# usual test, so cycle 1's training has randomised campaigns to learn from (as the suite's demo world).
WORLD: dict[str, Any] = {"customers": 2000, "cycles": 2, "history_weeks": 8, "bau_contact_share": 1.0}
KILLED_TASK = "train"  # cycle 1's longest task (~45 s): time to see it running and kill its worker
# Published marts compared with the embedded run: rows and sums of their money and count columns.
MART_CHECKS = {
    "fct_orders": "count(*), sum(total_amount)",
    "fct_campaign_sends": "count(*), count(*) filter (where is_treatment), count(distinct customer_id)",
    "dim_customers": "count(*), count(distinct member_id), count(email_hash)",
    "kpi_cycle": "count(*), sum(net_revenue), sum(customers)",
}


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str]:
    """A throwaway Redis on a loopback port with a password, no persistence; yields its broker URL."""
    from campaign_loop.runner import free_port

    port, password = free_port(), secrets.token_urlsafe(16)
    process = subprocess.Popen(
        [REDIS, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(root)],
        stdout=(root / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)


class Api:
    """Airflow's REST API with the admin's token."""

    def __init__(self, url: str, password: str) -> None:
        self.url = url
        self.token = self._call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}
                                         | ({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}))
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str) -> Any:
        return self._call("GET", f"/api/v2{path}")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", f"/api/v2{path}", body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PATCH", f"/api/v2{path}", body)


def wait(what: str, check: Any, timeout_s: float, logs: Path) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log")))
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s; logs in {logs}:\n{tails}")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """`campaign-loop demo` of the same world (started first, so it runs while the stack starts)."""
    home = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW", "MLFLOW_"))}
    cli = Path(sys.executable).with_name("campaign-loop")
    with (home.parent / "embedded.log").open("w") as log:
        process = subprocess.Popen([str(cli), "demo", "--fresh", "--home", str(home / "home"),
                                    *(f"--{k}={v}" for k, v in WORLD.items())],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)  # its MLflow server forks: stop the whole group
    process.home = home / "home"  # type: ignore[attr-defined]
    yield process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def marts(warehouse: Path) -> dict[str, tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {mart: con.execute(f"select {select} from published.{mart}").fetchone()
                for mart, select in MART_CHECKS.items()}


def test_a_killed_worker_s_task_is_retried_elsewhere_and_the_marts_match(embedded, tmp_path: Path) -> None:
    from campaign_loop.config import Settings, logical_date_of_cycle
    from campaign_loop.deploy import start_stack
    from campaign_loop.runner import free_port

    started = time.monotonic()
    with postgres.throwaway_postgres("airflow") as pg, redis_server(tmp_path) as broker:
        con = pg.connect()
        con.autocommit = True  # CREATE DATABASE runs outside a transaction
        con.cursor().execute("create database mlflow")
        con.close()
        settings = Settings(
            home=tmp_path / "home", **WORLD, celery_broker_url=broker, airflow_database_url=pg.url,
            mlflow_database_url=f"postgresql+psycopg2://{pg.user}@{pg.host}:{pg.port}/mlflow",
            task_heartbeat_timeout_seconds=15, task_retry_delay_seconds=5)
        with start_stack(settings, free_port(), free_port(), free_port()) as stack:
            logs = stack.logs_dir
            api = Api(stack.airflow_url, wait("admin password", stack.airflow_password, 60, logs))
            dag = "/dags/campaign_feedback_loop"
            wait("the DAG parsed", lambda: api.get(dag) if _exists(api, dag) else None, 180, logs)
            api.patch(dag, {"is_paused": False})
            runs = []
            for cycle in range(2):
                logical = datetime.combine(logical_date_of_cycle(settings, cycle), clock_time(6), tzinfo=UTC)
                run = api.post(f"{dag}/dagRuns", {"logical_date": logical.isoformat(), "conf": {}})["dag_run_id"]
                runs.append(run)
                tis = f"{dag}/dagRuns/{run}/taskInstances"
                if cycle == 1:
                    victim = wait(f"{KILLED_TASK} running on a worker",
                                  lambda tis=tis: _running_on(api, f"{tis}/{KILLED_TASK}"), 600, logs)
                    worker = stack.processes[f"celery-{victim}"]
                    os.killpg(worker.pid, signal.SIGKILL)
                state = wait(f"cycle {cycle} ({run}) done", lambda run=run: _finished(api, f"{dag}/dagRuns/{run}"),
                             900, logs)
                failed = [(t["task_id"], t["state"]) for t in api.get(f"{tis}?limit=200")["task_instances"]
                          if t["state"] not in ("success", "skipped")]
                assert state == "success", f"cycle {cycle}: run {run} {state}; tasks not done: {failed}"
            tries = api.get(f"{dag}/dagRuns/{runs[1]}/taskInstances/{KILLED_TASK}/tries")["task_instances"]
            stack_seconds = time.monotonic() - started
    hosts = {t["try_number"]: (t["hostname"] or "").split("@")[0] for t in tries}
    assert hosts.get(1) == victim and hosts.get(2) not in (None, victim), \
        f"{KILLED_TASK}'s tries ran on {hosts}; try 1 was to be on the killed {victim}, try 2 on the other worker"
    assert embedded.wait(timeout=600) == 0, (Path(embedded.home).parent / "embedded.log").read_text()[-3000:]
    assert marts(settings.warehouse_path) == marts(Settings(home=embedded.home).warehouse_path)
    # Where CI keeps its measurements (docs/deploy.md quotes them).
    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "deploy" / "celery_stack.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"stack_s": round(stack_seconds), "total_s": round(time.monotonic() - started),
                               "killed": victim, "tries": hosts}, indent=2))


def _exists(api: Api, path: str) -> bool:
    try:
        api.get(path)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
    return True


def _running_on(api: Api, path: str) -> str | None:
    ti = api.get(path)
    host = ti.get("hostname") or ""
    return host.split("@")[0] if ti["state"] == "running" and host.startswith("worker-") else None


def _finished(api: Api, path: str) -> str | None:
    state = api.get(path)["state"]
    return state if state in ("success", "failed") else None
