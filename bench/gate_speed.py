"""The whole validation gate of one cycle (raw batch + marts) on a built world, timed (issue 6).

    .venv/bin/python bench/train_speed.py --home /tmp/mlw100k --customers 100000 --cycles 4 --build
    .venv/bin/python bench/gate_speed.py --home /tmp/mlw100k --customers 100000 --cycle 3 --repeats 3 --write

Each repeat runs ``expectations.run_gate`` for the raw stage and then the marts stage, as the DAG's
``validate_raw`` and ``validate_marts`` tasks do: GX validation, the statistical checks, the results
written to ``audit.validation_results`` and Data Docs rebuilt. The first repeat pays the imports
(great_expectations, scipy) and the GX context's creation, which a task process pays once; the table
shows that first run beside the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import machine, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a home built by bench/train_speed.py --build")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cycle", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    args = parser.parse_args()

    import duckdb

    from campaign_loop.config import Settings

    settings = Settings(home=args.home, customers=args.customers)
    key = settings.cycle_key(args.cycle)
    started = time.perf_counter()
    from expectations.gate import run_gate

    import_seconds = time.perf_counter() - started
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        raw_rows = con.execute("select sum(rows_loaded) from raw._load_log where batch = ?", [key]).fetchone()[0]
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    runs: list[dict[str, float]] = []  # seconds per stage, with its check count and verdict
    for _ in range(args.repeats):
        seconds: dict[str, float] = {}
        for stage in ("raw", "marts"):
            t0 = time.perf_counter()
            result = run_gate(settings, key, stage)  # type: ignore[arg-type]
            seconds[stage] = time.perf_counter() - t0
            seconds[f"{stage}_checks"] = len(result.checks)
            seconds[f"{stage}_passed"] = result.passed
        runs.append(seconds)
        sys.stdout.write(f"{seconds}\n")
    raw = statistics.median(r["raw"] for r in runs)
    marts = statistics.median(r["marts"] for r in runs)
    total = statistics.median(r["raw"] + r["marts"] for r in runs)
    table = "\n".join([
        "## Validation gate speed (issue 6)",
        "",
        f"Command: `.venv/bin/python bench/gate_speed.py --home H --customers {args.customers} --cycle {args.cycle} "
        f"--repeats {args.repeats} --write` (world built by `bench/train_speed.py --build`)  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; cycle {key}",
        "",
        "| customers | raw batch rows | raw checks | marts checks | raw gate (s) | marts gate (s) | whole gate (s) | first run, whole (s) | import (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {customers:,} | {int(raw_rows):,} | {runs[0]['raw_checks']} | {runs[0]['marts_checks']} | {raw:.1f} | "
        f"{marts:.1f} | {total:.1f} | {runs[0]['raw'] + runs[0]['marts']:.1f} | {import_seconds:.1f} |",
        "",
        f"Medians of {args.repeats} runs, each writing its results to `audit.validation_results` and rebuilding "
        f"Data Docs; passed: raw {runs[0]['raw_passed']}, marts {runs[0]['marts_passed']}.",
    ])
    sys.stdout.write(table + "\n")
    if args.write:
        write_section(table)


if __name__ == "__main__":
    main()
