"""`make demo`: campaign cycles through Airflow on the embedded default (SQLite metadata, DuckDB warehouse).

Each cycle is one `airflow dags test` run of the real DAG at the cycle's logical date, so the demo
exercises exactly what the scheduler would run; between cycles it prints what the cycle loaded. The
Airflow commands run in this process, so Airflow's imports and the DAG's first parse are paid once
rather than once per cycle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from campaign_loop.config import Settings
from campaign_loop.dbt import parse_project
from campaign_loop.pipeline import batch_counts, logical_date_of_cycle, measure
from campaign_loop.report import format_table

DAG_ID = "campaign_feedback_loop"
REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment Airflow and its tasks run in: settings passed down as CAMPAIGN_LOOP_* variables."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            env.pop(f"CAMPAIGN_LOOP_{name.upper()}", None)
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
        # No phoning home from a demo or a test: this machine has no network beyond package registries.
        SCARF_ANALYTICS="false",
        DO_NOT_TRACK="1",
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return env


def _airflow(args: list[str], log: Path) -> int:
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


def _use_environment(env: dict[str, str]) -> None:
    """Make ``env`` this process's environment; Airflow reads its home and configuration once, at import."""
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        raise RuntimeError("Airflow is already configured for another home in this process; "
                           "run each demo home in its own process")
    os.environ.clear()
    os.environ.update(env)


def _fail(step: str, log: Path) -> int:
    tail = log.read_text().splitlines()[-40:]
    print(f"campaign-loop demo: {step} failed; the last lines of {log}:", file=sys.stderr)
    print("\n".join(tail), file=sys.stderr)
    return 1


def learning_row(settings: Settings, cycle: int) -> dict[str, object]:
    """One line of the learning curve; the truth is read here only because this is the demo harness."""
    from sim.oracle import evaluate_cycle, uplift_ranking

    value = evaluate_cycle(settings, cycle)
    ranking = uplift_ranking(settings, cycle)
    lift = measure(settings, cycle)
    interval = (f"{lift['lift']:+.2%} [{lift['lift_ci_low']:+.2%}, {lift['lift_ci_high']:+.2%}]"
                if "lift" in lift else "n/a")
    return {
        "cycle": cycle,
        "campaign": "business as usual" if cycle == 0 else "designed by the loop",
        "treated": value.treated,
        "incremental_profit": round(value.incremental_profit, 2),
        "oracle_profit": round(value.oracle_incremental_profit, 2),
        "ratio_to_oracle": None if value.ratio_to_oracle is None else round(value.ratio_to_oracle, 3),
        "measured_lift [95% CI]": interval,
        "uplift_qini (oracle)": "n/a" if ranking is None else f"{ranking.qini_model:.4f} ({ranking.qini_oracle:.4f})",
    }


def run_demo(settings: Settings, fresh: bool = False) -> int:
    if fresh and settings.root.exists():
        shutil.rmtree(settings.root)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    log = settings.root / "logs" / "demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    _use_environment(airflow_env(settings.model_copy(update={"airflow_runner": "dags_test"})))

    print(f"Campaign Loop demo: {settings.cycles} cycles of {settings.cycle_days} days, "
          f"{settings.customers:,} simulated customers, home {settings.root}")
    from campaign_loop.dbt_duckdb_plugin import DEV_KEY_NOTICE, uses_dev_key

    if uses_dev_key(settings.demo):
        print(f"\n{'!' * 100}\n{DEV_KEY_NOTICE}\n{'!' * 100}\n", flush=True)
    started = time.monotonic()
    parse_project(settings)
    if _airflow(["db", "migrate"], log) != 0:
        return _fail("airflow db migrate", log)
    from ml.tracking import server_env

    with mlflow_server(settings) as tracking:
        os.environ.update(server_env(tracking))
        print(f"MLflow tracking server: {tracking}")
        status = _run_cycles(settings, log)
    if status == 0:
        print(f"\nDone in {time.monotonic() - started:.0f} s. Warehouse: {settings.warehouse_path}; "
              f"Airflow log: {log}")
    return status


@contextlib.contextmanager
def mlflow_server(settings: Settings) -> Iterator[str]:
    """One MLflow tracking server for the whole demo; the Airflow tasks talk to it by URI."""
    from ml.tracking import server_url, start_server, wait_until_ready

    port = free_port()
    process = start_server(settings, port)
    try:
        wait_until_ready(server_url(port), process=process)
        yield server_url(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_cycles(settings: Settings, log: Path) -> int:
    curve: list[dict[str, object]] = []
    for cycle in range(settings.cycles):
        logical = logical_date_of_cycle(settings, cycle)
        t0 = time.monotonic()
        if _airflow(["dags", "test", DAG_ID, f"{logical.isoformat()}T06:00:00+00:00"], log) != 0:
            return _fail(f"cycle {cycle} (airflow dags test {DAG_ID} {logical})", log)
        print(f"\nCycle {cycle}: {settings.cycle_key(cycle)} .. {logical} "
              f"(Airflow run {time.monotonic() - t0:.0f} s)")
        print(format_table(batch_counts(settings, cycle)))
        curve.append(learning_row(settings, cycle))

    print("\nLearning curve: the campaign each cycle executed, valued by the simulator's truth, against the")
    print("oracle plan (same budget and rules, true effects), and its lift measured against the holdout:")
    print(format_table(curve))
    return 0
