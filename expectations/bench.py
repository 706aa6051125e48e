"""Time the raw gate on a big simulated batch: ``python -m expectations.bench --customers 100000 --home /tmp/big``.

Simulates and ingests cycles 0 and 1 when the home has no warehouse yet, then runs the raw gate on
each and prints the seconds it took with the batch's row count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

from campaign_loop.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m expectations.bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = Settings(home=args.home, customers=args.customers)
    if not settings.warehouse_path.exists():
        from ingest import ingest
        from sim import simulate_period

        for cycle in (0, 1):
            started = time.perf_counter()
            simulate_period(settings, cycle)
            ingest(settings)
            print(f"cycle {cycle}: simulated and ingested in {time.perf_counter() - started:.1f} s")  # noqa: T201
    from expectations.gate import run_gate

    started = time.perf_counter()
    import great_expectations  # noqa: F401 - timed on its own: a process pays it once

    print(f"import great_expectations: {time.perf_counter() - started:.1f} s")  # noqa: T201
    for cycle in (0, 1):
        cycle_id = settings.cycle_start(cycle).isoformat()
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            rows = con.execute("SELECT sum(rows_loaded) FROM raw._load_log WHERE batch = ?", [cycle_id]).fetchone()[0]
        started = time.perf_counter()
        result = run_gate(settings, cycle_id, "raw")
        print(f"raw gate {cycle_id}: {rows:,} rows, {len(result.checks)} checks, "  # noqa: T201
              f"{time.perf_counter() - started:.1f} s, passed={result.passed}, "
              f"{len(result.warnings)} warnings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
