"""Cycles through Airflow from the command line: the demo's and a retailer's `run` and `backfill`.

Each cycle is one `airflow dags test` run of the real DAG at the cycle's logical date, in this process, so
Airflow's imports and the DAG's first parse are paid once rather than once per cycle; the tasks are the
ones the scheduler would run. After each run the metadata database is asked what really ran: a run whose
tasks did not all succeed is a failure here, whatever the Airflow command returned.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from campaign_loop.config import NO_TELEMETRY, Settings, logical_date_of_cycle
from campaign_loop.dbt import cosmos_cache_dir, parse_project, seed_partial_parse
from ingest.lock import WarehouseBusy, holding_for_children
from ml.tracking import client_auth_env, server_env, server_url, start_server, wait_until_ready

DAG_ID = "campaign_feedback_loop"
TRIGGER_DAG_ID = "trigger_journeys"  # run after each cycle when the triggers setting enables any
REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"
# Tasks every real cycle must have completed; `simulate` is skipped outside demo mode by design.
REQUIRED_TASKS: tuple[str, ...] = (
    "ingest", "validate_raw", "validate_marts", "publish", "train", "measure", "design", "report", "retain_raw_pii",
)


class CycleFailed(RuntimeError):
    """A cycle's Airflow run failed or did not run its tasks; the message says which and where to look."""


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment Airflow and its tasks run in: settings passed down as CAMPAIGN_LOOP_* variables."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is None and Settings.model_fields[name].default is None:
            env.pop(f"CAMPAIGN_LOOP_{name.upper()}", None)
        elif value is None:  # absent, the tasks would take the default (a retention of 90 days, not none)
            env[f"CAMPAIGN_LOOP_{name.upper()}"] = "none"
        elif isinstance(value, list):
            env[f"CAMPAIGN_LOOP_{name.upper()}"] = ",".join(value)
        elif isinstance(value, dict):
            env[f"CAMPAIGN_LOOP_{name.upper()}"] = ",".join(f"{k}:{v}" for k, v in value.items())
        else:
            env[f"CAMPAIGN_LOOP_{name.upper()}"] = str(value)
    env["CAMPAIGN_LOOP_HOME"] = str(settings.root)
    env.update(
        AIRFLOW_HOME=str(settings.airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__LOGGING__LOGGING_LEVEL=env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        AIRFLOW__COSMOS__CACHE_DIR=str(cosmos_cache_dir(settings)),
        **NO_TELEMETRY,
    )
    if settings.airflow_database_url:  # else Airflow's default: SQLite in AIRFLOW_HOME
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = settings.airflow_database_url
    return env


def airflow(args: list[str], log: Path) -> int:
    """One Airflow CLI command, run in this process with its output (and its tasks' dbt) in ``log``."""
    from airflow.cli.cli_parser import get_parser

    with _output_to(log):
        print(f"\n$ airflow {' '.join(args)}", flush=True)
        try:
            parsed = get_parser().parse_args(args)
            parsed.func(parsed)
        except SystemExit as stop:  # the CLI's way to fail, e.g. "DagRun failed"
            print(stop, flush=True)
            return stop.code if isinstance(stop.code, int) and stop.code else 1
        except Exception:
            traceback.print_exc()
            return 1
    return 0


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``log``: Airflow's loggers and dbt's subprocesses write to them."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with log.open("a") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def use_environment(env: dict[str, str]) -> None:
    """Make ``env`` this process's environment; Airflow reads its home and configuration once, at import."""
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        raise RuntimeError("Airflow is already configured for another home in this process; "
                           "run each home in its own process")
    os.environ.clear()
    os.environ.update(env)


def log_tail(log: Path, lines: int = 40, since: int = 0) -> str:
    return "\n".join(_log_text(log, since).splitlines()[-lines:])


def _log_text(log: Path, since: int = 0) -> str:
    if not log.exists():
        return ""
    with log.open("rb") as raw:
        raw.seek(since)
        return raw.read().decode(errors="replace")


def log_size(log: Path) -> int:
    """Where the next command's output will start in ``log``, which every command of a home appends to."""
    return log.stat().st_size if log.exists() else 0


def failure_reason(log: Path, since: int = 0) -> str:
    """The last task failure Airflow logged from byte ``since`` on (a gate's verdict, an exception), else the
    tail of that part. The log holds every earlier command of the home: read whole, a run whose train task
    raised was reported with an earlier run's raw-gate verdict."""
    text = _log_text(log, since).splitlines()
    reasons = [line.split("AirflowFailException: ", 1)[1] for line in text if "AirflowFailException: " in line]
    if reasons:
        return reasons[-1]
    errors = [line for line in text if line.split(":", 1)[0].endswith(("Error", "Exception")) and " " not in line.split(":", 1)[0]]
    return errors[-1] if errors else f"the last lines of the log:\n{log_tail(log, since=since)}"


@contextlib.contextmanager
def mlflow_server(settings: Settings, meanwhile: Callable[[], None] = lambda: None) -> Iterator[str]:
    """One MLflow tracking server for the whole command, with the home's login (as `campaign-loop ui`'s): the
    Airflow tasks talk to it by URI with :func:`tracking_env`, and nobody else can move a model's alias.

    ``meanwhile`` runs while the server starts: 8-45 s of imports and migrations in its own process.
    """
    port = free_port()
    process = start_server(settings, port)
    try:
        meanwhile()
        wait_until_ready(server_url(port), process=process)
        yield server_url(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def tracking_env(settings: Settings, uri: str) -> dict[str, str]:
    """What the Airflow tasks (and this process) need to train and register through the server at ``uri``:
    its URI for tracking and registry, and the home's login."""
    return server_env(uri) | client_auth_env(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class CycleRun:
    cycle: int
    cycle_id: str
    logical_date: date
    seconds: float


@contextlib.contextmanager
def airflow_session(settings: Settings, log: Path) -> Iterator[str]:
    """Airflow configured for the home (metadata migrated, the dbt manifest parsed) and MLflow serving at
    the URI it yields, its login in the environment the tasks inherit."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    use_environment(airflow_env(settings.model_copy(update={"airflow_runner": "dags_test"})))

    def prepare_airflow() -> None:
        parse_project(settings)
        seed_partial_parse(settings, DAG_ID)
        if airflow(["db", "migrate"], log) != 0:
            raise CycleFailed(f"airflow db migrate failed; the last lines of {log}:\n{log_tail(log)}")

    with mlflow_server(settings, meanwhile=prepare_airflow) as tracking:
        os.environ.update(tracking_env(settings, tracking))
        yield tracking


def run_cycle(settings: Settings, cycle: int, log: Path) -> CycleRun:
    """Run one cycle's DAG run through Airflow and check in its metadata that every task really ran.

    The cycle holds the warehouse's writer lock throughout, so a second run of it (or an ingest by hand)
    is told the cycle is running instead of meeting DuckDB's lock traceback mid-way; the cycle's own
    tasks run under the lock (ingest.lock).
    """
    import time as clock

    logical = logical_date_of_cycle(settings, cycle)
    started, since = clock.monotonic(), log_size(log)
    try:
        with holding_for_children(settings.warehouse_path, f"cycle {settings.cycle_key(cycle)}"):
            status = airflow(["dags", "test", DAG_ID, f"{logical.isoformat()}T06:00:00+00:00"], log)
    except WarehouseBusy as busy:
        raise CycleFailed(f"cycle {settings.cycle_key(cycle)} did not start: {busy}") from None
    states = task_states(logical)
    required = REQUIRED_TASKS + (("simulate",) if settings.demo else ())
    not_done = {task: states.get(task, "never ran") for task in required if states.get(task) != "success"}
    if status != 0 or not_done:
        detail = ", ".join(f"{task}: {state}" for task, state in not_done.items()) or f"airflow exited {status}"
        raise CycleFailed(
            f"cycle {settings.cycle_key(cycle)} (airflow dags test {DAG_ID} {logical}) did not complete: {detail}.\n"
            f"Reason: {failure_reason(log, since)}\nAirflow's output: {log}"
        )
    if settings.triggers:
        _run_trigger_journeys(settings, logical, log)
    return CycleRun(cycle, settings.cycle_key(cycle), logical, clock.monotonic() - started)


def _run_trigger_journeys(settings: Settings, logical: date, log: Path) -> None:
    """The trigger journeys' run at the weekly run's moment, as the new plan's asset event would start it: the
    next simulated cycle then executes their sends beside the plan."""
    since = log_size(log)
    with holding_for_children(settings.warehouse_path, f"trigger journeys at {logical}"):
        status = airflow(["dags", "test", TRIGGER_DAG_ID, f"{logical.isoformat()}T06:00:00+00:00"], log)
    states = task_states(logical, TRIGGER_DAG_ID)
    if status != 0 or any(states.get(t) != "success" for t in ("plan", "measure")):
        raise CycleFailed(f"trigger journeys at {logical} did not complete: {states or f'airflow exited {status}'}.\n"
                          f"Reason: {failure_reason(log, since)}\nAirflow's output: {log}")


def task_states(logical: date, dag_id: str = DAG_ID) -> dict[str, str]:
    """Task id -> state of the newest DAG run at ``logical`` (06:00 UTC), from Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    when = datetime.combine(logical, time(6), tzinfo=UTC)
    with create_session() as session:
        run = (session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == when)
               .order_by(DagRun.id.desc()).first())
        if run is None:
            return {}
        rows = session.query(TaskInstance.task_id, TaskInstance.state).filter(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id).all()
    return {str(task): str(state) if state is not None else "none" for task, state in rows}


def run_cycles(settings: Settings, cycles: Sequence[int], log: Path,
               after: Callable[[CycleRun], None] | None = None) -> list[CycleRun]:
    """Every cycle of ``cycles`` in order, each one DAG run; stops at the first that did not complete."""
    runs: list[CycleRun] = []
    with airflow_session(settings, log):
        for cycle in cycles:
            runs.append(run_cycle(settings, cycle, log))
            if after is not None:
                after(runs[-1])
    return runs
