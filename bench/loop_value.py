"""Loop value: what each campaign policy earns over K cycles, valued by the simulator's truth.

    .venv/bin/python bench/loop_value.py --customers 20000 --cycles 4 --out /tmp/loop_value --json /tmp/loop_value.json

One world seed, one budget (``--budget-per-customer`` x customers), the policies of
:mod:`ml.policies` (random, rfm, propensity, platform, oracle) side by side, each in its own world (same
seed, separate home directories under ``--out``) because a plan changes the future. Each designed
cycle's executed plan is valued by ``sim.oracle.evaluate_cycle`` (true incremental profit, and the ratio
to the oracle plan of that world's state). Prints a table and writes the rows as JSON.

The importable entry point is :func:`ml.policies.bench_loop_value` (re-exported here).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.policies import POLICIES, bench_loop_value, table  # noqa: E402

__all__ = ["bench_loop_value", "table", "POLICIES"]


def main() -> None:
    from campaign_loop.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--budget-per-customer", type=float, default=0.05)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--out", type=Path, default=Path("/tmp/loop_value"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--platform-before", action="store_true",
                        help="score without the pooled uplift prior (the platform before issue 5)")
    args = parser.parse_args()
    if args.platform_before:
        import ml.score

        ml.score.USE_UPLIFT_PRIOR = False
    settings = load_settings(customers=args.customers, seed=args.seed, home=args.out / "_settings")
    bench_loop_value(settings, args.cycles, args.json, tuple(p for p in args.policies.split(",") if p),
                     out_dir=args.out, budget_per_customer=args.budget_per_customer)


if __name__ == "__main__":
    main()
