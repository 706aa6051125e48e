"""Loop value: what each campaign policy earns over K cycles, valued by the simulator's truth.

    .venv/bin/python bench/loop_value.py --cycles 6 --json bench/loop_value.json   # = campaign-loop bench loop-value

Same flags as ``campaign-loop bench loop-value`` (every Settings key, plus ``--cycles``, ``--json``,
``--policies``, ``--budget-per-customer``, ``--jobs``, ``--out``); default world 100,000 customers,
seed 42, budget 0.05 per customer, two policies at a time. One world seed, one budget, the policies of
:mod:`ml.policies` (random, rfm, propensity, platform, oracle) side by side, each in its own world
(same seed, separate home directories) because a plan changes the future. Each designed cycle's executed
plan is valued by ``sim.oracle.evaluate_cycle`` (true incremental profit, and the ratio to the oracle
plan of that world's state). Prints a table and writes the rows as JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaign_loop.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "loop-value", *sys.argv[1:]]))
