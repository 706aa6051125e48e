"""How long one weekly cycle's `dbt build` takes, incremental and full, and what Cosmos adds (issue 3).

For each world size: simulate + ingest cycle 0, `dbt build` it, simulate + ingest cycle 1, and keep a
copy of that warehouse (cycle 0 built, cycle 1 loaded, not built). Each repeat restores the copy and
times, as a subprocess with its peak RSS (os.wait4):

- incremental: `dbt build` (the second cycle, as the weekly loop runs it)
- full: `dbt build --full-refresh` (every model rebuilt from all raw rows)

With --cosmos, the same cycle once more through Airflow: `airflow dags test` of the DAG with every
non-dbt task marked success, timing the run and reading the dbt task group's producer and watcher
task instances from Airflow's metadata DB; the overhead is that against the plain incremental build.

    .venv/bin/python bench/dbt_speed.py --sizes 100000 --repeats 3 --cosmos --write
    .venv/bin/python bench/dbt_speed.py --sizes 1000000 --repeats 1 --write
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import RESULTS, append_section, machine  # noqa: E402
from campaign_loop.config import Settings  # noqa: E402
from campaign_loop.dbt import PROJECT_DIR, dbt_env, dbt_executable  # noqa: E402

SECTION = "## dbt build speed (issue 3)"


def timed_dbt(settings: Settings, *args: str) -> dict[str, float]:
    env = os.environ | dbt_env(settings) | {
        "DBT_TARGET_PATH": str(settings.root / "dbt" / "target"),
        "DBT_LOG_PATH": str(settings.root / "dbt" / "logs"),
    }
    env.pop("CAMPAIGN_LOOP_DBT_TARGET", None)
    cmd = [str(dbt_executable()), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    log = settings.root / "dbt_speed.log"
    t0 = time.perf_counter()
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed, see {log}")
    return {"seconds": wall, "rss_mb": usage.ru_maxrss / 1024}


def prepare(settings: Settings) -> tuple[Path, dict[str, float]]:
    from ingest import ingest
    from sim import simulate_period

    t0 = time.perf_counter()
    simulate_period(settings, 0)
    ingest(settings)
    sim0 = time.perf_counter() - t0
    build0 = timed_dbt(settings, "build")
    t0 = time.perf_counter()
    simulate_period(settings, 1)
    ingest(settings)
    sim1 = time.perf_counter() - t0
    snapshot = settings.root / "cycle1_loaded.duckdb"
    shutil.copy(settings.warehouse_path, snapshot)
    return snapshot, {"sim_ingest_0": sim0, "build_0": build0["seconds"], "sim_ingest_1": sim1}


def restore(settings: Settings, snapshot: Path) -> None:
    shutil.copy(snapshot, settings.warehouse_path)
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    wal.unlink(missing_ok=True)


def cosmos_run(settings: Settings, snapshot: Path) -> dict[str, float]:
    """The cycle-1 run of the DAG with everything but the dbt task group marked success."""
    import json

    from campaign_loop.pipeline import logical_date_of_cycle
    from campaign_loop.runner import DAG_ID, airflow_env

    restore(settings, snapshot)
    env = airflow_env(settings.model_copy(update={"airflow_runner": "dags_test"}))
    airflow = str(Path(sys.executable).with_name("airflow"))
    log = settings.root / "dbt_speed_airflow.log"
    with log.open("a") as out:
        subprocess.run([airflow, "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
        logical = f"{logical_date_of_cycle(settings, 1).isoformat()}T06:00:00+00:00"
        t0 = time.perf_counter()
        run = subprocess.run(
            [airflow, "dags", "test", DAG_ID, logical, "--mark-success-pattern", r"^(?!dbt\.)"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        wall = time.perf_counter() - t0
    rows = json.loads(subprocess.run(
        [airflow, "tasks", "states-for-dag-run", DAG_ID, logical, "--output", "json"],
        env=env, capture_output=True, text=True,
    ).stdout or "[]")
    dbt_rows = [r for r in rows if str(r.get("task_id", "")).startswith("dbt.")]

    def ts(value: str | None) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    starts = [ts(r.get("start_date")) for r in dbt_rows if r.get("start_date")]
    ends = [ts(r.get("end_date")) for r in dbt_rows if r.get("end_date")]
    producer = [r for r in dbt_rows if "producer" in str(r.get("task_id"))]
    return {
        "returncode": run.returncode,
        "dags_test_seconds": wall,
        "dbt_group_seconds": (max(ends) - min(starts)) if starts and ends else float("nan"),
        "producer_seconds": (ts(producer[0]["end_date"]) - ts(producer[0]["start_date"]))
        if producer and producer[0].get("end_date") else float("nan"),
        "dbt_tasks": len(dbt_rows),
    }


def bench_size(customers: int, repeats: int, cosmos: bool, work: Path) -> dict:
    home = work / f"dbt_speed_{customers}"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, customers=customers)
    snapshot, prep = prepare(settings)
    runs: dict[str, list[dict[str, float]]] = {"incremental": [], "full": []}
    for _ in range(repeats):
        restore(settings, snapshot)
        runs["incremental"].append(timed_dbt(settings, "build"))
        restore(settings, snapshot)
        runs["full"].append(timed_dbt(settings, "build", "--full-refresh"))
        print(customers, {k: v[-1] for k, v in runs.items()}, flush=True)
    result = {
        "customers": customers, "repeats": repeats, "prep": prep,
        "raw_rows": raw_rows(settings),
        **{f"{kind}_s": statistics.median(r["seconds"] for r in rs) for kind, rs in runs.items()},
        **{f"{kind}_rss_mb": max(r["rss_mb"] for r in rs) for kind, rs in runs.items()},
        "all": runs,
    }
    if cosmos:
        result["cosmos"] = cosmos_run(settings, snapshot)
    print(result, flush=True)
    return result


def raw_rows(settings: Settings) -> int:
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = con.sql("select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()
        return sum(con.sql(f"select count(*) from raw.{t}").fetchall()[0][0] for (t,) in tables)


def markdown(results: list[dict], argv: list[str]) -> str:
    lines = [
        SECTION, "",
        f"Command: `python bench/dbt_speed.py {' '.join(argv)}`  ",
        f"Machine: {machine()}, DuckDB target (4 dbt threads)  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; seed default, cycle 0 built, cycle 1 loaded; each run restores that warehouse",
        "",
        "| customers | raw rows | runs | cycle-1 `dbt build`, incremental (s, median) | peak RSS (MB) | `dbt build --full-refresh` (s, median) | peak RSS (MB) | cycle-0 build (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['customers']:,} | {r['raw_rows']:,} | {r['repeats']} | {r['incremental_s']:.1f} | {r['incremental_rss_mb']:,.0f} "
            f"| {r['full_s']:.1f} | {r['full_rss_mb']:,.0f} | {r['prep']['build_0']:.1f} |"
        )
    cos = [r for r in results if "cosmos" in r]
    if cos:
        lines += ["", "Cosmos (watcher mode, `airflow dags test` of the cycle-1 run, non-dbt tasks marked success):", "",
                  "| customers | plain `dbt build` (s) | `dags test` wall (s) | dbt task group first start to last end (s) | producer task (s) | dbt tasks | overhead vs plain (s) |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in cos:
            c = r["cosmos"]
            lines.append(f"| {r['customers']:,} | {r['incremental_s']:.1f} | {c['dags_test_seconds']:.1f} | {c['dbt_group_seconds']:.1f} "
                         f"| {c['producer_seconds']:.1f} | {c['dbt_tasks']} | {c['dbt_group_seconds'] - r['incremental_s']:+.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cosmos", action="store_true", help="also time the cycle through Airflow + Cosmos")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--write", action="store_true", help=f"append the table to {RESULTS}")
    args = parser.parse_args()
    results = [bench_size(n, args.repeats, args.cosmos, args.work) for n in args.sizes]
    text = markdown(results, sys.argv[1:])
    print(text)
    if args.write:
        append_section(text)


if __name__ == "__main__":
    main()
