"""Speed of the simulated retailer: world creation (cycle 0) and one weekly period (cycle 1).

Each size runs in a fresh subprocess so its peak memory (ru_maxrss) is its own.

    .venv/bin/python bench/sim_speed.py                      # 20k, 100k, 1M; markdown table on stdout
    .venv/bin/python bench/sim_speed.py --sizes 20000 100000 --repeats 3 --write   # also append to bench/RESULTS.md
    .venv/bin/python bench/sim_speed.py --sizes 10000000 --history-weeks 4 --newsletter-history 0   # a shallow 10M world

``--history-weeks`` and ``--newsletter-history`` are the settings of those names (default: the settings'
defaults): the purchase history and the monthly newsletters cycle 0 lands, which decide most of its rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import RESULTS, machine, write_section  # noqa: E402
from campaign_loop.config import Settings  # noqa: E402

HEADING = "## Simulator speed (issue 2)"


def _one_run(customers: int, file_format: str, history_weeks: int, newsletter_history: int) -> None:
    """Child process: create the world and run one period; print timings as JSON."""
    from sim import simulate_period

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), customers=customers, file_format=file_format,
                            history_weeks=history_weeks, newsletter_history=newsletter_history)
        world = simulate_period(settings, 0)
        week = simulate_period(settings, 1)
        out = {
            "world_s": world.seconds, "week_s": week.seconds,
            "world_rows": sum(world.rows.values()), "week_rows": sum(week.rows.values()),
            "week_timings": dict(week.timings),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    sys.stdout.write(json.dumps(out) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="repeats for sizes below 1M (median reported)")
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {RESULTS}")
    defaults = Settings.model_fields
    parser.add_argument("--history-weeks", type=int, default=defaults["history_weeks"].default,
                        help=defaults["history_weeks"].description)
    parser.add_argument("--newsletter-history", type=int, default=defaults["newsletter_history"].default,
                        help=defaults["newsletter_history"].description)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _one_run(args.child, args.format, args.history_weeks, args.newsletter_history)
        return
    rows = []
    for size in args.sizes:
        runs = []
        for _ in range(1 if size >= 1_000_000 else args.repeats):
            done = subprocess.run([sys.executable, __file__, "--child", str(size), "--format", args.format,
                                   "--history-weeks", str(args.history_weeks),
                                   "--newsletter-history", str(args.newsletter_history)],
                                  check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1])
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        rows.append((size, len(runs),
                     statistics.median(r["world_s"] for r in runs), statistics.median(r["week_s"] for r in runs),
                     runs[0]["world_rows"], runs[0]["week_rows"], max(r["maxrss_mb"] for r in runs)))
    lines = [
        f"Command: `{shlex.join([Path(sys.executable).name, 'bench/sim_speed.py', *sys.argv[1:]])}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, file format {args.format}; cycle 0 lands "
        f"{args.history_weeks} weeks of purchase history and {args.newsletter_history} monthly newsletters",
        "",
        "| customers | runs | world + history (s) | one week (s) | rows landed, cycle 0 | rows landed, one week | peak RSS (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {s:,} | {n} | {w:.1f} | {k:.1f} | {wr:,} | {kr:,} | {m:,.0f} |" for s, n, w, k, wr, kr, m in rows),
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    if args.write:
        write_section(table, HEADING)


if __name__ == "__main__":
    main()
