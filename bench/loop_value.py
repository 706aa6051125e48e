"""Loop value: what each campaign policy earns over K cycles, valued by the simulator's truth.

    .venv/bin/python bench/loop_value.py --cycles 6 --json bench/loop_value.json   # = campaign-loop bench loop-value
    .venv/bin/python bench/loop_value.py --worlds a,b,c,d --seeds 5 --customers 100000 --cycles 6 --json out.json

Same flags as ``campaign-loop bench loop-value`` (every Settings key, plus ``--cycles``, ``--json``,
``--policies``, ``--budget-per-customer``, ``--jobs``, ``--out``); default world 100,000 customers,
seed 42, budget 0.05 per customer, two policies at a time. The policies of :mod:`ml.policies` side by
side, each in its own world (same seed, separate home directories) because a plan changes the future.
Each designed cycle's executed plan is valued by ``sim.oracle.evaluate_cycle`` (true incremental
profit, and the ratio to the oracle plan of that world's state). Prints a table and writes the rows as JSON.

``--worlds`` (the simulator's causal structures, :mod:`sim.worlds`) and ``--seeds`` (a count N, seeds
1001..1000+N, or a comma-separated list) repeat that run per world and seed (issue 24): the rows then
carry ``world`` and ``seed`` too, all written to ``--json``, and a summary per world and policy is printed.
The default seeds start at 1001 so that none of them is a seed any knob was tuned on (42 and 7 were).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaign_loop.cli import main  # noqa: E402

FIRST_SEED = 1001


def seeds_from(text: str) -> list[int]:
    """``N`` -> the N seeds from :data:`FIRST_SEED`; ``a,b,...`` -> those seeds."""
    if "," in text or not text.strip().isdigit() or int(text) > 1000:
        return [int(part) for part in text.split(",") if part.strip()]
    return list(range(FIRST_SEED, FIRST_SEED + int(text)))


def _option(rest: list[str], name: str) -> str | None:
    for i, arg in enumerate(rest):
        if arg == name and i + 1 < len(rest):
            return rest[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _without(rest: list[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in rest:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def summary(rows: list[dict[str, Any]]) -> str:
    """Markdown: per world and policy, the mean ratio to the oracle and the summed profit over cycles and seeds."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return "(no rows)"
    policies = list(dict.fromkeys(frame["policy"]))
    lines = ["| world | seeds | " + " | ".join(policies) + " |", "|---|---:|" + "---:|" * len(policies)]
    for world, part in frame.groupby("world", sort=True):
        cells = []
        for policy in policies:
            rows_p = part[part["policy"] == policy]
            ratio = pd.to_numeric(rows_p["ratio_to_oracle"], errors="coerce").mean()
            cells.append(f"{rows_p['incremental_profit'].sum():,.0f} ({ratio:.2f})" if len(rows_p) else "")
        lines.append(f"| {world} | {part['seed'].nunique()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_family(worlds: list[str], seeds: list[int], rest: list[str]) -> list[dict[str, Any]]:
    """One ``bench loop-value`` run per world and seed, each under ``<out>/<world>-<seed>``."""
    json_path = _option(rest, "--json")
    out = Path(_option(rest, "--out") or Path(tempfile.gettempdir()) / "loop_value_family")
    base = _without(_without(_without(_without(rest, "--json"), "--out"), "--seed"), "--world")
    rows: list[dict[str, Any]] = []
    for world in worlds:
        for seed in seeds:
            part = out / f"{world}-{seed}"
            part_json = part.with_suffix(".json")
            code = main(["bench", "loop-value", *base, "--world", world, "--seed", str(seed),
                         "--out", str(part), "--json", str(part_json)])
            if code != 0:
                raise SystemExit(code)
            rows += [{"world": world, "seed": seed, **row} for row in json.loads(part_json.read_text())]
            if json_path:  # after every run, so a long family keeps what it finished
                Path(json_path).parent.mkdir(parents=True, exist_ok=True)
                Path(json_path).write_text(json.dumps(rows, indent=2, default=str))
    print(summary(rows))
    return rows


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--worlds", default=None, help="Comma-separated worlds of sim.worlds (a, b, c, d).")
    parser.add_argument("--seeds", default=None, help=f"N (seeds {FIRST_SEED}..) or a comma-separated list.")
    known, rest = parser.parse_known_args(argv)
    if known.worlds is None and known.seeds is None:
        return main(["bench", "loop-value", *rest])
    worlds = [w.strip() for w in (known.worlds or "a").split(",") if w.strip()]
    seeds = seeds_from(known.seeds) if known.seeds else [int(_option(rest, "--seed") or FIRST_SEED)]
    run_family(worlds, seeds, rest)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
