"""Quality of identity resolution: pairwise precision and recall of "same person" against the simulator's truth.

Each size builds a fresh world (seed 42, default dirt) for K cycles, ingests every cycle, builds
``+int_identity_resolved`` with dbt and scores it with ``tests/dbt/identity_metrics.py`` (the same code as
the test). What is measured is documented in docs/warehouse.md#identity-quality.

    .venv/bin/python bench/identity_quality.py                         # 20k and 100k people, cycles 0-1
    .venv/bin/python bench/identity_quality.py --sizes 2000 --cycles 2  # the test world
    .venv/bin/python bench/identity_quality.py --write                  # also append to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.results import RESULTS, machine, write_section  # noqa: E402

HEADING = "## Identity resolution quality (issue 3)"
FLOOR = 0.98


def measure(customers: int, cycles: int, dirt: float, seed: int) -> dict[str, float | int]:
    from campaign_loop.config import Settings
    from campaign_loop.dbt import run_dbt
    from ingest import ingest
    from sim import simulate_period
    from tests.dbt.identity_metrics import pair_scores

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), customers=customers, dirt=dirt, seed=seed)
        started = time.perf_counter()
        for cycle in range(cycles):
            simulate_period(settings, cycle)
            ingest(settings)
        built = time.perf_counter()
        # cautious: leave out tests on upstream models that also reference models outside the selection.
        result = run_dbt(settings, "build", "--select", "+int_identity_resolved", "--indirect-selection", "cautious",
                         target_path=Path(home) / "dbt" / "target")
        if result.returncode != 0:
            raise RuntimeError(f"dbt build failed:\n{result.stdout[-4000:]}")
        done = time.perf_counter()
        s = pair_scores(settings.warehouse_path, settings.truth_dir / "identities.parquet")
    return {
        "customers": customers, "precision": s.precision, "recall": s.recall,
        "true_pairs": s.true_pairs, "predicted_pairs": s.predicted_pairs, "identifiers": s.identifiers,
        "unobserved": s.unobserved_identifiers, "shared": s.shared_identifiers,
        "world_s": built - started, "dbt_s": done - built,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--cycles", type=int, default=2, help="cycles simulated and ingested (0..K-1)")
    parser.add_argument("--dirt", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--write", action="store_true", help=f"replace the table in {RESULTS}")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        row = measure(size, args.cycles, args.dirt, args.seed)
        sys.stderr.write(f"{row}\n")
        rows.append(row)
    lines = [
        f"Command: `{shlex.join([Path(sys.executable).name, 'bench/identity_quality.py', *sys.argv[1:]])}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; seed {args.seed}, dirt {args.dirt:g}, "
        f"cycles 0-{args.cycles - 1}, dbt `build --select +int_identity_resolved --indirect-selection cautious` on DuckDB",
        "",
        "Pairs of observed identifiers (member ID, e-mail, phone, cookie, device that appear in the warehouse) of "
        "the same true person; household-shared devices are excluded from the truth pairs.",
        "",
        "| people | observed identifiers | true pairs | predicted pairs | precision | recall | "
        "never observed | shared devices | sim + ingest (s) | dbt (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {r['customers']:,} | {r['identifiers']:,} | {r['true_pairs']:,} | {r['predicted_pairs']:,} | "
          f"{r['precision']:.4f} | {r['recall']:.4f} | {r['unobserved']:,} | {r['shared']:,} | "
          f"{r['world_s']:.0f} | {r['dbt_s']:.0f} |" for r in rows),
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    if args.write:
        write_section(table, HEADING)
    failed = [r for r in rows if r["precision"] < FLOOR or r["recall"] < FLOOR]
    if failed:
        sys.stderr.write(f"below the {FLOOR} floor: {[r['customers'] for r in failed]}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
