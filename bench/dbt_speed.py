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

With --engines (issue 26), each size's world is prepared once on DuckDB as above, then built on each engine
named: duckdb as above; postgres, a throwaway PostgreSQL 15 cluster (tests/support/postgres.py) given the
cycle-0 raw layer and built (cycle-0 build), then the cycle-1 raw layer (the incremental build) and a
full refresh; spark, the profile's spark target (local[2], tests/support/spark.py) given the cycle-1 raw
layer and built once (Spark rebuilds incremental models in full: one build is both). Peak memory, sampled
every 0.5 s with psutil: DuckDB and Spark, the summed RSS of dbt's process tree (DuckDB runs in dbt's
process; Spark's JVM is its child); PostgreSQL, the cluster's summed PSS (postmaster and every backend:
shared buffers counted once). Not os.wait4's ru_maxrss: Linux counts in it the memory of the benchmark's
own process the child was forked from (its high-water mark before exec), which at small sizes is the
larger of the two. Each engine's result is appended to --jsonl as it finishes;
--table-from composes the section from such a file (several runs, one table).

    .venv/bin/python bench/dbt_speed.py --sizes 100000 --repeats 1 --engines duckdb,postgres,spark \\
        --jsonl /tmp/scale26.jsonl
    .venv/bin/python bench/dbt_speed.py --table-from /tmp/scale26.jsonl --write
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import RESULTS, head_commit, machine, write_section  # noqa: E402
from campaign_loop.config import Settings  # noqa: E402
from campaign_loop.dbt import PROJECT_DIR, dbt_env, dbt_executable  # noqa: E402

SECTION = "## dbt build speed (issue 3)"
SCALE_SECTION = "## Scale per engine (issue 26)"
ENGINES = ("duckdb", "postgres", "spark")
# As the parity test: the generic tests run on DuckDB only (docs/warehouse.md#spark), ~130 Spark jobs of a second or more.
SPARK_EXCLUDE = ["test_name:not_null_columns", "test_name:unique", "test_name:accepted_values", "test_name:relationships"]
SAMPLE_SECONDS = 0.5


class PeakSampler:
    """Samples the summed memory of a set of processes every SAMPLE_SECONDS in a thread; ``peak_mb`` is the largest sum.

    ``pids`` gives the processes to sum at each sample; ``pss`` sums proportional set sizes (shared pages
    counted once, as PostgreSQL's shared buffers are), else resident set sizes.
    """

    def __init__(self, pids: Callable[[], list[int]], pss: bool = False) -> None:
        self.pids, self.pss, self.peak_mb, self.samples = pids, pss, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for pid in self.pids():
                try:
                    proc = psutil.Process(pid)
                    total += proc.memory_full_info().pss if self.pss else proc.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def process_tree(pid: int) -> Callable[[], list[int]]:
    """The process and its descendants (dbt and, on Spark, the JVM pyspark starts)."""
    import psutil

    def pids() -> list[int]:
        try:
            root = psutil.Process(pid)
            return [pid, *(c.pid for c in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []
    return pids


def postgres_cluster(port: int) -> Callable[[], list[int]]:
    """The postmaster listening on ``port`` (its command line has ``-p <port>``) and its backends."""
    import psutil

    postmaster: list[int] = []

    def pids() -> list[int]:
        if not postmaster:
            for proc in psutil.process_iter(["name", "cmdline"]):
                cmd = proc.info["cmdline"] or []
                if proc.info["name"] == "postgres" and "-p" in cmd and cmd[cmd.index("-p") + 1:][:1] == [str(port)]:
                    postmaster.append(proc.pid)
                    break
        return process_tree(postmaster[0])() if postmaster else []
    return pids


def timed_dbt(settings: Settings, *args: str, engine: str = "duckdb", extra_env: dict[str, str] | None = None,
              server: Callable[[], list[int]] | None = None) -> dict[str, float]:
    """``dbt <args>`` on ``engine``'s target as a subprocess: wall seconds, dbt's peak RSS (os.wait4), the
    peak summed RSS of dbt's process tree, and with ``server`` the peak summed PSS of those processes."""
    suffix = "" if engine == "duckdb" else f"-{engine}"
    env = os.environ | dbt_env(settings) | (extra_env or {}) | {
        "DBT_TARGET_PATH": str(settings.root / "dbt" / f"target{suffix}"),
        "DBT_LOG_PATH": str(settings.root / "dbt" / f"logs{suffix}"),
    }
    env.pop("CAMPAIGN_LOOP_DBT_TARGET", None)
    target = [] if engine == "duckdb" else ["--target", engine]
    cmd = [str(dbt_executable()), *args, *target, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    log = settings.root / f"dbt_speed{suffix}.log"
    t0 = time.perf_counter()
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with PeakSampler(process_tree(proc.pid)) as tree, PeakSampler(server or list, pss=True) as srv:
            _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"dbt {' '.join(args)} on {engine} failed, see {log}")
    out = {"seconds": wall, "rss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": tree.peak_mb}
    if server is not None:
        out["server_pss_mb"] = srv.peak_mb
    return out


def prepare(settings: Settings) -> tuple[Path, dict[str, float]]:
    from ingest import ingest
    from sim import simulate_period

    t0 = time.perf_counter()
    simulate_period(settings, 0)
    ingest(settings)
    sim0 = time.perf_counter() - t0
    # The cycle-0 raw layer, for an engine's own cycle-0 build before its incremental one.
    shutil.copy(settings.warehouse_path, settings.root / "cycle0_loaded.duckdb")
    build0 = timed_dbt(settings, "build")
    t0 = time.perf_counter()
    simulate_period(settings, 1)
    ingest(settings)
    sim1 = time.perf_counter() - t0
    snapshot = settings.root / "cycle1_loaded.duckdb"
    shutil.copy(settings.warehouse_path, snapshot)
    prep = {"sim_ingest_0": sim0, "build_0": build0["seconds"], "build_0_rss_mb": build0["rss_mb"], "sim_ingest_1": sim1}
    (settings.root / "prep.json").write_text(json.dumps(prep))
    return snapshot, prep


def prepared(settings: Settings, reuse: bool) -> tuple[Path, dict[str, float]]:
    """The world's cycle-1 snapshot: prepared afresh, or with ``reuse`` the one a previous run left."""
    snapshot, prep = settings.root / "cycle1_loaded.duckdb", settings.root / "prep.json"
    if reuse and snapshot.exists() and prep.exists() and (settings.root / "cycle0_loaded.duckdb").exists():
        return snapshot, json.loads(prep.read_text())
    shutil.rmtree(settings.root, ignore_errors=True)
    return prepare(settings)


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


def bench_postgres(settings: Settings, incremental: bool) -> dict:
    """The world on a throwaway PostgreSQL 15 cluster (default settings but fsync off, as the tests run it)."""
    from tests.support.postgres import copy_raw, throwaway_postgres

    root = settings.root
    out: dict = {}
    with throwaway_postgres() as server:
        cluster = postgres_cluster(server.port)
        if incremental:
            t0 = time.perf_counter()
            copy_raw(root / "cycle0_loaded.duckdb", server)
            out["copy_0_s"] = time.perf_counter() - t0
            out["build_0"] = timed_dbt(settings, "build", engine="postgres", extra_env=server.env, server=cluster)
        t0 = time.perf_counter()
        copy_raw(root / "cycle1_loaded.duckdb", server)
        out["copy_s"] = time.perf_counter() - t0
        if incremental:
            out["incremental"] = timed_dbt(settings, "build", engine="postgres", extra_env=server.env, server=cluster)
        out["full"] = timed_dbt(settings, "build", "--full-refresh", engine="postgres", extra_env=server.env,
                                server=cluster)
        with server.connect() as pg, pg.cursor() as cur:
            cur.execute("select pg_database_size(current_database())")
            out["db_mb"] = cur.fetchone()[0] / 2**20
    return out


def bench_spark(settings: Settings) -> dict:
    """The world on the profile's spark target: raw copied by tests/support/spark.py (a process of its own, so
    its JVM and Derby's lock end before dbt starts one), then one build (models, unit and data tests)."""
    root = settings.root
    shutil.rmtree(root / "spark", ignore_errors=True)
    t0 = time.perf_counter()
    with (root / "dbt_speed-spark.log").open("a") as log:
        subprocess.run([sys.executable, "-m", "tests.support.spark", str(root / "cycle1_loaded.duckdb"), str(root)],
                       cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
    out: dict = {"copy_s": time.perf_counter() - t0}
    out["full"] = timed_dbt(settings, "build", "--exclude", *SPARK_EXCLUDE, engine="spark")
    out["warehouse_mb"] = sum(f.stat().st_size for f in (root / "spark" / "warehouse").rglob("*") if f.is_file()) / 2**20
    return out


def bench_engines(customers: int, engines: list[str], work: Path, reuse: bool, incremental: bool,
                  jsonl: Path | None) -> list[dict]:
    """One world per size, built on each engine; each engine's record appended to ``jsonl`` when it finishes."""
    settings = Settings(home=work / f"dbt_speed_{customers}", customers=customers)
    snapshot, prep = prepared(settings, reuse)
    rows = raw_rows(settings)
    records = []
    for engine in engines:
        started = datetime.now(UTC)
        if engine == "duckdb":
            result: dict = {}
            if incremental:
                restore(settings, snapshot)
                result["incremental"] = timed_dbt(settings, "build")
            restore(settings, snapshot)
            result["full"] = timed_dbt(settings, "build", "--full-refresh")
            result["db_mb"] = settings.warehouse_path.stat().st_size / 2**20
        elif engine == "postgres":
            result = bench_postgres(settings, incremental)
        else:
            result = bench_spark(settings)
        record = {"engine": engine, "customers": customers, "raw_rows": rows, "prep": prep, **result,
                  "file_rows_max": settings.file_rows_max, "commit": head_commit(), "argv": sys.argv[1:], "started": started.isoformat(timespec="minutes"),
                  "load_avg": os.getloadavg()}
        print(json.dumps(record, default=float), flush=True)
        if jsonl is not None:
            with jsonl.open("a") as f:
                f.write(json.dumps(record, default=float) + "\n")
        records.append(record)
    return records


def peak_mb(engine: str, run: dict) -> float:
    """The engine's peak memory as the section reports it (see the module docstring)."""
    return run.get("server_pss_mb", 0.0) if engine == "postgres" else run["tree_rss_mb"]


MEASURES = {
    "duckdb": "peak RSS of dbt's process (DuckDB runs in it, capped at 6GB; psutil every 0.5 s)",
    "postgres": "the cluster's peak summed PSS (postmaster + backends, psutil every 0.5 s); dbt's own RSS in notes",
    "spark": "peak summed RSS of dbt's process tree (Python + the local[2] JVM, driver memory 2g; psutil every 0.5 s)",
}


def scale_markdown(records: list[dict]) -> str:
    order = {e: i for i, e in enumerate(ENGINES)}
    records = sorted(records, key=lambda r: (order[r["engine"]], r["customers"]))
    commands = list(dict.fromkeys(" ".join(r["argv"]) for r in records))
    commits = sorted({r["commit"] for r in records})
    lines = [
        SCALE_SECTION, "",
        *[f"Command: `python bench/dbt_speed.py {c}`  " for c in commands],
        f"Commit: {', '.join(commits)}  ",
        f"Machine: {machine()}  ",
        f"Date: {min(r['started'] for r in records)[:16].replace('T', ' ')} to "
        f"{max(r['started'] for r in records)[:16].replace('T', ' ')} UTC (engine runs' starts); seed default; cycle 0 "
        "built and cycle 1 loaded on DuckDB, each engine given that raw layer. One run each, on 2 CPUs shared "
        "with another job (a pytest suite) the whole time: load averages in notes.",
        "",
        "Peak memory:", "",
        *[f"- {e}: {MEASURES[e]}" for e in ENGINES if any(r["engine"] == e for r in records)],
        "",
        "| engine | customers | raw rows | full build (s) | peak memory, full (MB) | incremental cycle-1 build (s) "
        "| peak memory, incremental (MB) | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        e, full = r["engine"], r["full"]
        inc = r.get("incremental")
        notes = [f"load avg at start {r['load_avg'][0]:.1f}"]
        if r.get("file_rows_max", 10_000_000) != 10_000_000:
            # Past 10M rows a landing file is quarantined whole: the 1M world's campaign files are larger.
            notes.append(f"ingest's file_rows_max raised to {r['file_rows_max']:,} (CAMPAIGN_LOOP_FILE_ROWS_MAX)")
        if e == "duckdb":
            notes.append(f"warehouse file {r['db_mb']:,.0f} MB")
        if e == "postgres":
            notes.append(f"raw copy {r['copy_s']:.0f} s; dbt's own RSS {full['tree_rss_mb']:,.0f} MB; database {r['db_mb']:,.0f} MB")
            if "build_0" in r:
                notes.append(f"cycle-0 build {r['build_0']['seconds']:.0f} s")
        if e == "spark":
            notes.append(f"raw copy {r['copy_s']:.0f} s; built-in generic tests excluded; incremental models rebuilt in "
                         f"full, so one build; parquet {r['warehouse_mb']:,.0f} MB")
        inc_s, inc_mb = (f"{inc['seconds']:.0f}", f"{peak_mb(e, inc):,.0f}") if inc else ("-", "-")
        lines.append(
            f"| {e} | {r['customers']:,} | {r['raw_rows']:,} | {full['seconds']:.0f} | {peak_mb(e, full):,.0f} "
            f"| {inc_s} | {inc_mb} | {'; '.join(notes)} |"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--write", action="store_true", help=f"replace the table in {RESULTS}")
    parser.add_argument("--engines", type=lambda v: [e for e in v.split(",") if e],
                        help=f"comma-separated, of {','.join(ENGINES)}: build each size on these engines (issue 26's section)")
    parser.add_argument("--reuse", action="store_true", help="with --engines, reuse a world a previous run prepared in --work")
    parser.add_argument("--full-only", action="store_true", help="with --engines, full builds only (no incremental, nor PostgreSQL's cycle-0 build)")
    parser.add_argument("--jsonl", type=Path, help="with --engines, append each engine's record to this file")
    parser.add_argument("--table-from", type=Path, help="compose issue 26's section from a --jsonl file, run nothing")
    args = parser.parse_args()
    if args.table_from or args.engines:
        if args.engines and not set(args.engines) <= set(ENGINES):
            parser.error(f"--engines: one or more of {', '.join(ENGINES)}")
        records = ([json.loads(line) for line in args.table_from.read_text().splitlines() if line.strip()]
                   if args.table_from else
                   [r for n in args.sizes for r in bench_engines(n, args.engines, args.work, args.reuse,
                                                                   not args.full_only, args.jsonl)])
        text = scale_markdown(records)
        print(text)
        if args.write:
            write_section(text)
        return
    results = [bench_size(n, args.repeats, args.cosmos, args.work) for n in args.sizes]
    text = markdown(results, sys.argv[1:])
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
