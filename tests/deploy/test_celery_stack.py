"""The deploy profile on loopback: PostgreSQL 15 (Airflow's metadata and MLflow's store), Redis, Airflow's
api-server, scheduler, dag-processor and triggerer, two Celery workers and MLflow; two demo cycles of a small
world through the unchanged DAG (all 114 tasks each), one worker SIGKILLed while it runs the second cycle's
`validate_raw`. The lost task must be retried on the other worker, the cycle complete, and the marts it then
builds and publishes equal those of an unkilled run of the same cycle: the simulator, ingest and `dbt build
--selector cycle` in one process, on a copy of the stack's home taken before the cycle, as the first cycle
left it (started once the worker is killed, while the stack waits out the heartbeat timeout).

Every wait polls with a deadline and, past it, fails naming what did not happen, with the tails of the
stack's logs. Each phase's time goes to test-artifacts/deploy/celery_stack.json (docs/deploy.md quotes it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
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

# Small: a short history keeps each cycle's simulation, dbt and training to seconds; most of a cycle's
# minutes are Airflow's per-task start-up (114 tasks). Two cycles, the second killed: the second starts from
# what the stack's first left (the world's state, the designed plan, the warehouse, MLflow's champions), and
# its `train` logs to MLflow's server through a worker (in cycle 0 every model is skipped on this history).
WORLD: dict[str, Any] = {"customers": 2000, "cycles": 2, "history_weeks": 8, "bau_contact_share": 1.0}
KILLED_CYCLE = 1
# The raw gate: the cycle's longest task before the marts (10-35 s: Great Expectations' import and checks),
# so the kill lands mid-task and the marts are built after it.
KILLED_TASK = "validate_raw"
# Airflow's line once the task's process has parsed the DAG: the kill waits for it, so it hits the task's own work.
TASK_STARTED_LINE = "Worker startup parse complete"
# Published marts compared with the unkilled run: rows and sums of their money and count columns.
MART_CHECKS = {
    "fct_orders": "count(*), sum(total_amount)",
    "fct_campaign_sends": "count(*), count(*) filter (where is_treatment), count(distinct customer_id)",
    "dim_customers": "count(*), count(distinct member_id), count(email_hash)",
    "kpi_cycle": "count(*), sum(net_revenue), sum(customers)",
}
# Only for this test: a lost task noticed within seconds, not the profile's minute. The task supervisor
# heartbeats every 2 s (Airflow: 5), so a 10 s timeout leaves five heartbeats' slack on a busy machine;
# the scheduler looks for silent tasks every 2 s (Airflow: 10).
HEARTBEAT_TIMEOUT_S, RETRY_DELAY_S = 10, 1
FAILOVER_ENV = {
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
}
# Deadlines of the waits, only ever reached when something is wrong: about twice what each took on a 2-core
# machine at load average 20 (the stack 92 s, the cycle 700 s; idle, a third of that).
STACK_TIMEOUT_S, DAG_PARSED_TIMEOUT_S, CYCLE_TIMEOUT_S = 300, 180, 1500
KILL_WINDOW_TIMEOUT_S, FAILOVER_TIMEOUT_S, REFERENCE_TIMEOUT_S = 600, 180, 600
POLL_S = 0.5
ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "deploy" / "celery_stack.json"
# The unkilled run of the killed cycle: what the DAG's simulate, ingest and dbt producer do, in one process.
REFERENCE_SCRIPT = """
import json, sys
from pathlib import Path
from campaign_loop import pipeline
from campaign_loop.config import Settings
from campaign_loop.dbt import run_dbt

settings = Settings(home=Path(sys.argv[1]), **json.loads(sys.argv[2]))
cycle = int(sys.argv[3])
pipeline.simulate(settings, cycle)
pipeline.ingest(settings, cycle)
build = run_dbt(settings, "build", "--selector", "cycle")
print(build.stdout[-3000:], build.stderr[-3000:])
sys.exit(build.returncode)
"""


class Phases:
    """Seconds since the test started at each step, printed as they happen (`pytest -s`) and kept."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.at: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        self.at[name] = round(time.monotonic() - self.started, 1)
        print(f"[celery stack {self.at[name]:6.1f} s] {name}", flush=True)  # noqa: T201 (progress, pytest -s)


def log_tails(logs: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(logs.rglob("*.log"))
                     if "dag_id=" not in str(p))  # the services', not every task's


def wait(what: str, check: Callable[[], Any], timeout_s: float, logs: Path) -> Any:
    """``check()`` every POLL_S until it returns something other than None; past the deadline, fail naming
    ``what`` did not happen, with the tails of the services' logs."""
    deadline = time.monotonic() + timeout_s
    while True:
        if (value := check()) is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s; logs under {logs}:\n{log_tails(logs)}")
        time.sleep(POLL_S)


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str]:
    """A throwaway Redis on a loopback port with a password, no persistence; yields its broker URL once it
    accepts connections."""
    from campaign_loop.runner import free_port

    port, password = free_port(), secrets.token_urlsafe(16)
    process = subprocess.Popen(
        [REDIS, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(root)],
        stdout=(root / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def accepts() -> bool | None:
        if process.poll() is not None:
            raise AssertionError(f"redis-server exited {process.returncode}: {(root / 'redis.log').read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return None

    try:
        wait("redis-server accepting connections", accepts, 30, root)
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


def snapshot(stack_home: Path, home: Path) -> None:
    """The stack's home as the cycle before the killed one left it: the world's state, the landing files, the
    warehouse and the plan the stack designed (not Airflow's, MLflow's or the logs)."""
    home.mkdir(parents=True)
    for entry in stack_home.iterdir():
        if entry.name not in ("airflow", "mlflow", "logs"):
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, home / entry.name)


@contextlib.contextmanager
def reference_run(home: Path, cycle: int) -> Iterator[subprocess.Popen[str]]:
    """The unkilled run of ``cycle`` on a snapshot, started in the background; stopped on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_LOOP_", "AIRFLOW", "MLFLOW_"))}
    with (home.parent / "reference.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-c", REFERENCE_SCRIPT, str(home), json.dumps(WORLD), str(cycle)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def marts(warehouse: Path, schema: str) -> dict[str, tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {mart: con.execute(f"select {select} from {schema}.{mart}").fetchone()
                for mart, select in MART_CHECKS.items()}


def test_a_killed_worker_s_task_is_retried_elsewhere_and_the_marts_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    from campaign_loop.config import Settings, logical_date_of_cycle
    from campaign_loop.deploy import start_stack
    from campaign_loop.runner import DAG_ID, free_port
    from expectations.publish import PUBLISHED_SCHEMA, SOURCE_SCHEMA

    phase = Phases()
    for key, value in FAILOVER_ENV.items():
        monkeypatch.setenv(key, value)  # start_stack passes this process's environment to every service
    reference_home = tmp_path / "reference" / "home"
    with contextlib.ExitStack() as services:
        broker = services.enter_context(redis_server(tmp_path))  # returns at once; PostgreSQL takes seconds
        pg = services.enter_context(postgres.throwaway_postgres("airflow"))
        con = pg.connect()
        con.autocommit = True  # CREATE DATABASE runs outside a transaction
        con.cursor().execute("create database mlflow")
        con.close()
        phase("postgres and redis up")
        settings = Settings(
            home=tmp_path / "home", **WORLD, celery_broker_url=broker, airflow_database_url=pg.url,
            mlflow_database_url=f"postgresql+psycopg2://{pg.user}@{pg.host}:{pg.port}/mlflow",
            task_heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S, task_retry_delay_seconds=RETRY_DELAY_S)
        stack = services.enter_context(start_stack(settings, free_port(), free_port(), free_port(),
                                                   timeout_s=STACK_TIMEOUT_S))
        logs = settings.root / "logs"
        phase("stack up: airflow api-server and mlflow answer")
        api = Api(stack.airflow_url, wait("the admin password written", stack.airflow_password, 60, logs))
        dag = f"/dags/{DAG_ID}"
        wait("the DAG parsed by the dag-processor", lambda: True if _exists(api, dag) else None,
             DAG_PARSED_TIMEOUT_S, logs)
        api.patch(dag, {"is_paused": False})
        phase("DAG parsed")
        runs = []
        for cycle in range(WORLD["cycles"]):
            logical = datetime.combine(logical_date_of_cycle(settings, cycle), clock_time(6), tzinfo=UTC)
            if cycle == KILLED_CYCLE:
                snapshot(settings.root, reference_home)  # before the cycle's simulate writes the home
            run = api.post(f"{dag}/dagRuns", {"logical_date": logical.isoformat(), "conf": {}})["dag_run_id"]
            runs.append(run)
            tis = f"{dag}/dagRuns/{run}/taskInstances"
            if cycle == KILLED_CYCLE:
                victim = wait(f"cycle {cycle}'s {KILLED_TASK} running on a worker",
                              lambda tis=tis: _running_on(api, f"{tis}/{KILLED_TASK}"), KILL_WINDOW_TIMEOUT_S, logs)
                task_log = (settings.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run}"
                            / f"task_id={KILLED_TASK}" / "attempt=1.log")
                wait(f"{KILLED_TASK}'s try 1 past parsing the DAG ({TASK_STARTED_LINE!r} in {task_log})",
                     lambda task_log=task_log: True if task_log.exists()
                     and TASK_STARTED_LINE in task_log.read_text(errors="replace")
                     else None, 120, logs)
                kill_tree(stack.processes[f"celery-{victim}"].pid)
                phase(f"cycle {cycle}: {KILLED_TASK} running on {victim}; the worker and its task SIGKILLed")
                # The stack now idles until the heartbeat timeout: the unkilled run uses the cores meanwhile.
                reference = services.enter_context(reference_run(reference_home, cycle))
                wait(f"{KILLED_TASK}'s try 1 on the killed {victim} marked failed (heartbeat timeout "
                     f"{HEARTBEAT_TIMEOUT_S} s)", lambda tis=tis: _try_state(api, tis, 1, ("up_for_retry", "failed")),
                     FAILOVER_TIMEOUT_S, logs)
                phase(f"{KILLED_TASK}'s try 1 marked lost")
                wait(f"{KILLED_TASK}'s try 2 started on the other worker",
                     lambda tis=tis: _try_state(api, tis, 2, ("running", "success", "failed")), FAILOVER_TIMEOUT_S, logs)
                phase(f"{KILLED_TASK}'s try 2 started")
            state = wait(f"cycle {cycle} ({run}) finished", lambda run=run: _finished(api, f"{dag}/dagRuns/{run}"),
                         CYCLE_TIMEOUT_S, logs)
            if state != "success":  # the run can be marked failed a moment before its failed task is
                not_done = wait("the failed run's task states", lambda tis=tis: _not_done(api, tis) or None, 15, logs)
                raise AssertionError(f"cycle {cycle}: run {run} {state}; tasks not done: {not_done}; the failed "
                                     f"tasks' logs: {settings.airflow_home / 'logs'}")
            phase(f"cycle {cycle} done")
        tries = api.get(f"{dag}/dagRuns/{runs[KILLED_CYCLE]}/taskInstances/{KILLED_TASK}/tries")["task_instances"]
        hosts = {t["try_number"]: (t["hostname"] or "").split("@")[0] for t in tries}
        assert hosts.get(1) == victim and hosts.get(2) not in (None, victim), \
            f"{KILLED_TASK}'s tries ran on {hosts}; try 1 was to be on the killed {victim}, try 2 on the other worker"
        try:
            code = reference.wait(timeout=REFERENCE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        reference_log = (reference_home.parent / "reference.log").read_text(errors="replace")[-3000:]
        assert code == 0, f"the unkilled run of cycle {KILLED_CYCLE} {f'exited {code}' if code is not None else 'hung'}:\n{reference_log}"
        phase(f"unkilled run of cycle {KILLED_CYCLE} done")
        # Nothing left to ask the stack: no graceful stop (Celery's warm shutdown, uvicorn's and MLflow's
        # took 50 s of a loaded machine), the processes are killed and start_stack's stop finds them gone.
        for process in stack.processes.values():
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                kill_tree(process.pid)
    phase("stack stopped")
    stack_marts = marts(settings.warehouse_path, PUBLISHED_SCHEMA)
    assert stack_marts == marts(Settings(home=reference_home, **WORLD).warehouse_path, SOURCE_SCHEMA), \
        f"cycle {KILLED_CYCLE}'s published marts differ from those of its unkilled run"
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps({"phases_s": phase.at, "killed": victim, "tries": hosts,
                                    "marts": {k: [str(v) for v in row] for k, row in stack_marts.items()}}, indent=2))


def kill_tree(pid: int) -> None:
    """SIGKILL a worker as a lost machine loses it: its process group and every process under it. Airflow's
    supervisor runs each task in a process group of its own: killing the worker's group alone left the task
    running, orphaned, still holding DuckDB's lock when its retry started on the other worker."""
    import psutil

    tree = psutil.Process(pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(tree, timeout=10)


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


def _try_state(api: Api, tis: str, try_number: int, states: tuple[str, ...]) -> str | None:
    """The state of the killed task's try ``try_number`` once it is one of ``states``."""
    ti = api.get(f"{tis}/{KILLED_TASK}")
    if try_number == 1 and ti["try_number"] == 1 and ti["state"] == "success":
        raise AssertionError(f"{KILLED_TASK} finished before its worker was killed: it no longer gives the kill a window")
    if ti["try_number"] == try_number and ti["state"] in states:
        return str(ti["state"])
    if ti["try_number"] > try_number:  # already past it (polled between two of its states)
        return "passed"
    return None


def _not_done(api: Api, tis: str) -> str:
    """The tasks not done, failed ones named first, the rest counted by state ('' when every task is done)."""
    states: dict[str, list[str]] = {}
    for t in api.get(f"{tis}?limit=200")["task_instances"]:
        if t["state"] not in ("success", "skipped"):
            states.setdefault(str(t["state"]), []).append(t["task_id"])
    failed = states.pop("failed", [])
    return "; ".join([f"failed: {', '.join(failed)}"] * bool(failed)
                     + [f"{len(tasks)} {state} (e.g. {tasks[0]})" for state, tasks in states.items()])


def _finished(api: Api, path: str) -> str | None:
    state = api.get(path)["state"]
    return state if state in ("success", "failed") else None
