"""`campaign-loop deploy`: the same DAG on a distributed Airflow (docs/deploy.md).

Airflow's metadata in a database server (``airflow_database_url``: PostgreSQL), the CeleryExecutor with a
Redis broker (``celery_broker_url``) and ``celery_workers`` workers, and the MLflow tracking server on
``mlflow_database_url`` with its artifacts as files under the home. PostgreSQL and Redis are services the
operator runs; this module starts the Airflow components, the workers, MLflow and the static site on
127.0.0.1, as `campaign-loop ui` does for the embedded default (and with its helpers).

The DAG file is unchanged. What the profile adds is Airflow configuration and one cluster policy
(``deploy/airflow_local_settings.py`` -> :func:`task_policy`): every task that may open the warehouse runs in
the ``warehouse`` pool (``warehouse_pool_slots``, 1 for DuckDB, whose file has one writer), so two workers
never meet on DuckDB's lock; the dbt watchers, which only wait for the producer's reports, stay outside it.
That file imports this module into every Airflow process the profile starts: what only starting the stack
needs is imported inside :func:`start_stack` and its helpers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_loop.config import Settings, load_settings
from campaign_loop.dbt import parse_project

if TYPE_CHECKING:
    from campaign_loop.ui import Services

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DIR = REPO_ROOT / "deploy"  # holds airflow_local_settings.py, which Airflow imports from sys.path
WAREHOUSE_POOL = "warehouse"
# Not a Settings key: the launcher gives each worker process its own name, which Airflow records as the
# hostname of the task instances it runs (two workers on one machine would otherwise look the same).
WORKER_NAME_ENV = "CAMPAIGN_LOOP_WORKER_NAME"


class DeployError(RuntimeError):
    """The profile cannot start as configured; the message names the setting to change."""


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` under the profile: the worker's name, else this machine's."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


# What the DAG file imports: a worker imports it once, before forking its pool (Celery's ``worker_init``), so
# each task's process, a fork of a pool process, parses the DAG without importing them (~3 s a task of the 87
# on 2 busy cores; the dbt watchers are most of them).
DAG_IMPORTS = ("airflow.sdk", "pendulum", "cosmos", "campaign_loop.airflow_links", "campaign_loop.config",
               "campaign_loop.dbt", "campaign_loop.pipeline")


def preload_dag_imports(**_: object) -> None:
    """Celery ``worker_init`` handler: import :data:`DAG_IMPORTS` in the worker's main process."""
    import importlib

    for name in DAG_IMPORTS:
        importlib.import_module(name)


@functools.cache
def _policy_settings() -> Settings:
    """The settings, read once per process. The policy runs for each of the DAG's 114 tasks, and reading them
    each time (1.5 ms) was a fifth of a task's DAG parse under Celery (0.98 s against 0.78 s). Airflow 3
    parses a DAG file in a process of its own (each task's, the DAG processor's), so a process never sees
    settings older than its parse."""
    return load_settings()


def task_policy(task: Any) -> None:
    """Airflow cluster policy, run on every task as its DAG is parsed: warehouse pool and retry delay."""
    from airflow.sdk import BaseSensorOperator

    from campaign_loop.runner import DAG_ID

    if task.dag_id != DAG_ID:
        return
    settings = _policy_settings()
    if not isinstance(task, BaseSensorOperator):  # Cosmos's watchers are sensors: they read XCom, not DuckDB
        task.pool = WAREHOUSE_POOL
    if settings.task_retry_delay_seconds is not None:
        task.retry_delay = timedelta(seconds=settings.task_retry_delay_seconds)


def deploy_settings(settings: Settings) -> Settings:
    """The settings the profile runs with: the scheduler runs the DAG (not `airflow dags test`)."""
    if not settings.airflow_database_url or settings.airflow_database_url.startswith("sqlite"):
        raise DeployError("airflow_database_url must name a database server (PostgreSQL): the CeleryExecutor's "
                          "scheduler and workers share it; e.g. CAMPAIGN_LOOP_AIRFLOW_DATABASE_URL="
                          "postgresql+psycopg2://airflow@127.0.0.1:5432/airflow")
    return settings.model_copy(update={"airflow_runner": "scheduler"})


def deploy_env(settings: Settings, airflow_port: int, mlflow_url: str, site: str) -> dict[str, str]:
    """`ui.airflow_ui_env` (settings, ports, logins) plus the CeleryExecutor's configuration."""
    from campaign_loop.ui import airflow_ui_env

    env = airflow_ui_env(deploy_settings(settings), airflow_port, mlflow_url, site)
    env.update(
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=settings.celery_broker_url,
        AIRFLOW__CELERY__WORKER_CONCURRENCY=str(settings.celery_worker_concurrency),
        AIRFLOW__CORE__HOSTNAME_CALLABLE=f"{__name__}.worker_hostname",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=str(settings.task_heartbeat_timeout_seconds),
        # The DAG file changes with a release, not every 30 s (the default), and each parse costs seconds.
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="300",
        # The simulated retailer's calendar is in the past: a demo runs the cycles it is asked for, unpaused;
        # a retailer's DAG follows its weekly schedule once someone unpauses it.
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=str(not settings.demo),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=str(not settings.demo),
        PYTHONPATH=os.pathsep.join(p for p in (str(DEPLOY_DIR), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def mlflow_command(settings: Settings, port: int, host: str) -> list[str]:
    """``ml.tracking.server_command`` with the backend store on ``mlflow_database_url`` when one is set."""
    from ml.tracking import server_command

    command = server_command(settings, port, host=host)
    if settings.mlflow_database_url:
        command[command.index("--backend-store-uri") + 1] = settings.mlflow_database_url
    return command


def airflow_commands(settings: Settings, airflow_port: int, host: str) -> dict[str, list[str]]:
    """Process name -> command: the four Airflow components and ``celery_workers`` workers."""
    exe = str(Path(sys.executable).with_name("airflow"))
    commands = {
        "airflow-api-server": [exe, "api-server", "--host", host, "--port", str(airflow_port), "--workers", "1"],
        # No log servers: they bind every interface; on one machine every log is a local file anyway.
        "airflow-scheduler": [exe, "scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": [exe, "dag-processor"],
        "airflow-triggerer": [exe, "triggerer", "--skip-serve-logs"],
    }
    for n in range(1, settings.celery_workers + 1):
        commands[f"celery-worker-{n}"] = [
            exe, "celery", "worker", "--celery-hostname", f"worker-{n}@%h",
            "--concurrency", str(settings.celery_worker_concurrency), "--skip-serve-logs",
        ]
    return commands


def _airflow_cli(name: str, args: list[str], env: dict[str, str], logs_dir: Path) -> subprocess.Popen[bytes]:
    """``airflow <args>`` in the background, its output in ``<name>.log``: each costs seconds of imports alone."""
    with (logs_dir / f"{name}.log").open("ab") as log:
        return subprocess.Popen([str(Path(sys.executable).with_name("airflow")), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _finish(name: str, process: subprocess.Popen[bytes], logs_dir: Path) -> None:
    """Wait for an :func:`_airflow_cli` command; a failure names its command line and its log."""
    if process.wait() != 0:
        command = " ".join(Path(str(process.args[0])).name if i == 0 else str(a) for i, a in enumerate(process.args))
        raise DeployError(f"{command} failed (exit {process.returncode}); see {logs_dir / f'{name}.log'}")


@contextlib.contextmanager
def start_stack(settings: Settings, airflow_port: int, mlflow_port: int, site_port: int,
                *, timeout_s: float = 240.0) -> Iterator[Services]:
    """Start MLflow, the static site, Airflow's components and the workers on 127.0.0.1; yield once Airflow's
    API and MLflow answer; stop every process group on exit. PostgreSQL and Redis must already run.

    What does not wait on another runs beside it: MLflow (migrating its own store), ``airflow db migrate``
    and ``dbt parse`` (the manifest the DAG renders from) start together; the components but the
    dag-processor start once the database is migrated, the dag-processor once the manifest is written; the
    ``warehouse`` pool the policy assigns is sized meanwhile (no DAG run can be scheduled before this yields).
    """
    from campaign_loop.readiness import wait_for_http
    from campaign_loop.ui import HOST, Services, _spawn, serve_site, stop_process
    from ml.tracking import artifact_root, auth_server_env, server_url, wait_until_ready

    settings = deploy_settings(settings)
    logs_dir = settings.root / "logs" / "deploy"
    logs_dir.mkdir(parents=True, exist_ok=True)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: [stop_process(p) for p in reversed(list(processes.values()))])
        mlflow_url = server_url(mlflow_port, HOST)
        artifact_root(settings).mkdir(parents=True, exist_ok=True)
        processes["mlflow"] = _spawn("mlflow", mlflow_command(settings, mlflow_port, HOST),
                                     os.environ | auth_server_env(settings), logs_dir)
        site = stack.enter_context(serve_site(settings, site_port))
        env = deploy_env(settings, airflow_port, mlflow_url, site)
        processes["airflow-db-migrate"] = _airflow_cli("airflow-db-migrate", ["db", "migrate"], env, logs_dir)
        parsing = stack.enter_context(ThreadPoolExecutor(1)).submit(parse_project, settings)
        _finish("airflow-db-migrate", processes.pop("airflow-db-migrate"), logs_dir)
        processes["airflow-pools"] = _airflow_cli(
            "airflow-pools", ["pools", "set", WAREHOUSE_POOL, str(settings.warehouse_pool_slots),
                              "Tasks that open the warehouse (campaign_loop.deploy.task_policy)"], env, logs_dir)
        commands = airflow_commands(settings, airflow_port, HOST)
        dag_processor = commands.pop("airflow-dag-processor")  # it renders the DAG from the manifest: after it
        for name, command in commands.items():
            worker = {WORKER_NAME_ENV: name.removeprefix("celery-")} if name.startswith("celery-") else {}
            processes[name] = _spawn(name, command, env | worker, logs_dir)
        parsing.result()
        processes["airflow-dag-processor"] = _spawn("airflow-dag-processor", dag_processor, env, logs_dir)
        _finish("airflow-pools", processes.pop("airflow-pools"), logs_dir)
        services = Services(settings, f"http://{HOST}:{airflow_port}", mlflow_url, site, processes, logs_dir)
        wait_for_http(f"{services.airflow_url}/api/v2/monitor/health", timeout_s,
                      processes["airflow-api-server"], "airflow api-server")
        wait_until_ready(mlflow_url, timeout_s=timeout_s, process=processes["mlflow"])
        yield services


def run_deploy(settings: Settings, airflow_port: int, mlflow_port: int, site_port: int) -> int:
    """Start the profile, print where everything is, block until Ctrl-C or SIGTERM or a process exits; exit code."""
    import signal
    import threading

    from campaign_loop.ui import AIRFLOW_USER

    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"Campaign Loop deploy profile: home {settings.root}; starting...", flush=True)
        with start_stack(settings, airflow_port, mlflow_port, site_port) as services:
            print(services.summary())
            print(f"Airflow login: {AIRFLOW_USER} / {services.airflow_password()}")
            print(f"Workers: {', '.join(n for n in services.processes if n.startswith('celery-'))} on "
                  f"{settings.celery_broker_url.rpartition('@')[2]}; Ctrl-C stops everything.", flush=True)
            while not stopping.wait(1.0):
                if dead := [n for n, p in services.processes.items() if p.poll() is not None]:
                    print(f"campaign-loop deploy: {', '.join(dead)} exited; see {services.logs_dir}; stopping",
                          file=sys.stderr)
                    return 1
        return 0
    except (DeployError, RuntimeError, TimeoutError, OSError) as error:
        print(f"campaign-loop deploy: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
