"""Whether ``fct_customer_features`` is the same table as at another commit: columns, types and every row.

Each world is loaded and built with the current project; then the mart's SQL of ``--commit`` joins a copy of
the project as a second model over the same upstream models, and the two tables are compared: column names
and types in order, and ``EXCEPT ALL`` both ways. Two worlds: a simulated one, and the hand-made raw layer
of tests/dbt/test_guests_and_returns.py (guests and credit notes, which the simulator never sends).

    .venv/bin/python bench/features_equivalence.py                      # against ce23e94 (before the split)
    .venv/bin/python bench/features_equivalence.py --customers 5000 --cycles 4 --write
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.results import machine, write_section  # noqa: E402

HEADING = "## Customer features equivalence (issue 25)"
MART = "dbt_project/models/marts/core/fct_customer_features.sql"
REFERENCE = "features_at_commit"
BEFORE_SPLIT = "ce23e94"  # the last commit with the one 333-line model


def reference_project(commit: str, into: Path) -> Path:
    """A copy of the current project plus the mart as ``commit`` wrote it, as the model ``features_at_commit``."""
    from campaign_loop.dbt import PROJECT_DIR

    project = into / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    sql = subprocess.run(["git", "show", f"{commit}:{MART}"], cwd=REPO, check=True, capture_output=True, text=True)
    (project / "models" / "marts" / f"{REFERENCE}.sql").write_text(sql.stdout)
    return project


def build_reference(settings: object, project: Path, target: Path) -> None:
    from campaign_loop.dbt import dbt_env, dbt_executable

    command = [str(dbt_executable()), "run", "--select", REFERENCE, "--project-dir", str(project),
               "--profiles-dir", str(project), "--target-path", str(target)]
    result = subprocess.run(command, env=os.environ | dbt_env(settings), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dbt run of {REFERENCE} failed:\n{result.stdout[-4000:]}")


def compare(warehouse: Path) -> dict[str, object]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        def columns(table: str) -> list[tuple[str, str]]:
            return con.execute("select column_name, data_type from information_schema.columns "
                               "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                               [table]).fetchall()

        def count(sql: str) -> int:
            return con.execute(f"select count(*) from ({sql})").fetchone()[0]

        now, before = "marts.fct_customer_features", f"marts.{REFERENCE}"
        return {
            "rows": count(f"select * from {now}"),
            "as_of_dates": count(f"select distinct as_of_date from {now}"),
            "columns": len(columns("fct_customer_features")),
            "types_equal": columns("fct_customer_features") == columns(REFERENCE),
            "only_before": count(f"select * from {before} except all select * from {now}"),
            "only_now": count(f"select * from {now} except all select * from {before}"),
        }


def simulated_world(home: Path, customers: int, cycles: int) -> object:
    from campaign_loop.config import Settings
    from campaign_loop.dbt import run_dbt
    from ingest import ingest
    from sim import simulate_period

    settings = Settings(home=home, customers=customers)
    for cycle in range(cycles):
        simulate_period(settings, cycle)
        ingest(settings)
    result = run_dbt(settings, "run", target_path=home / "dbt" / "target")
    if result.returncode != 0:
        raise RuntimeError(f"dbt run failed:\n{result.stdout[-4000:]}")
    return settings


def returns_world(home: Path) -> object:
    from campaign_loop.config import Settings
    from campaign_loop.dbt import run_dbt
    from tests.dbt.raw_fixture import create_raw
    from tests.dbt.test_guests_and_returns import RAW

    settings = Settings(home=home)
    create_raw(settings.warehouse_path, RAW)
    result = run_dbt(settings, "run", target_path=home / "dbt" / "target")
    if result.returncode != 0:
        raise RuntimeError(f"dbt run failed:\n{result.stdout[-4000:]}")
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", default=BEFORE_SPLIT, help="the commit whose fct_customer_features.sql is the reference")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--cycles", type=int, default=3, help="cycles simulated and ingested (0..K-1)")
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        project = reference_project(args.commit, Path(tmp))
        worlds = {f"simulated, {args.customers:,} customers, cycles 0-{args.cycles - 1}":
                  lambda home: simulated_world(home, args.customers, args.cycles),
                  "guests and credit notes (tests/dbt/test_guests_and_returns.py)": returns_world}
        for i, (name, build) in enumerate(worlds.items()):
            home = Path(tmp) / f"world{i}"
            settings = build(home)
            build_reference(settings, project, home / "dbt" / "target-reference")
            rows.append({"world": name, **compare(settings.warehouse_path)})
            sys.stderr.write(f"{rows[-1]}\n")
    lines = [
        f"Command: `{shlex.join([Path(sys.executable).name, 'bench/features_equivalence.py', *sys.argv[1:]])}`  ",
        f"Commit: {head} against {args.commit}'s fct_customer_features.sql  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| world | rows | as-of dates | columns | names and types equal | rows only before | rows only now |",
        "|---|---:|---:|---:|---|---:|---:|",
        *(f"| {r['world']} | {r['rows']:,} | {r['as_of_dates']} | {r['columns']} | {r['types_equal']} | "
          f"{r['only_before']} | {r['only_now']} |" for r in rows),
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    if args.write:
        write_section(table, HEADING)
    if any(not r["types_equal"] or r["only_before"] or r["only_now"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
