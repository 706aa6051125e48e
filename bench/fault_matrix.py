"""Every fault the simulator can inject, through the gate on a small world: blocked, warned or passed.

Builds the fault tests' baseline world (cycle 0 through every step, tests/faults/conftest.py's WORLD),
then per fault copies it, switches the fault on and runs cycle 1 in the DAG's order to publication or
until a gate raises. Prints a Markdown table (bench/RESULTS.md, "Fault matrix").

    .venv/bin/python bench/fault_matrix.py [--work /tmp/fault-matrix] [--only resend_orders:day,...]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaign_loop.config import Settings  # noqa: E402
from sim.faults import KINDS, parse_faults  # noqa: E402
from tests.faults.conftest import WORLD  # noqa: E402
from tests.faults.cycle import run_cycle, validation_rows  # noqa: E402

# One or more example specs per kind (a row each); every kind in sim.faults.KINDS must appear.
FAULTS: tuple[str, ...] = (
    "corrupt_type:orders.total_amount",
    "drop_source:orders",
    "drop_source:orders,drop_source:pos_receipts",
    "duplicate_batch:orders",
    "shift_timestamps:orders:48",
    "shift_timestamps:orders:-240",
    "break_randomisation",
    "spike_kpi",
    "spike_kpi:3",
    "scale_amounts:orders.total_amount=100",
    "scale_amounts:order_lines.unit_price=100",
    "resend_orders:day",
    "resend_orders:all",
    "expose_holdout",
)


def outcome(settings: Settings, faults: str) -> dict[str, str]:
    started = time.perf_counter()
    run = run_cycle(settings, 1, through="publish")
    seconds = time.perf_counter() - started
    rows = validation_rows(settings, settings.cycle_key(1))
    failed = [r for r in rows if not r["success"]]
    critical = sorted({f"{r['stage']} `{r['check']}` ({r['table']})" for r in failed if r["severity"] == "critical"})
    warned = sorted({f"{r['stage']} `{r['check']}`" for r in failed if r["severity"] == "warning"})
    if run.failed_at:
        verdict = "blocked"
    elif warned:
        verdict = "warned"
    else:
        verdict = "passed"
    return {"fault": faults, "verdict": verdict, "stopped_at": run.failed_at or "published",
            "critical": ", ".join(critical) or "-", "warnings": ", ".join(warned) or "-", "seconds": f"{seconds:.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fault-matrix"))
    parser.add_argument("--only", default="", help="';'-separated fault rows to run instead of all")
    args = parser.parse_args()
    rows = tuple(r for r in args.only.split(";") if r) or FAULTS
    covered = {f.kind for row in FAULTS for f in parse_faults(row.split(","))}
    assert covered == set(KINDS), f"fault kinds without a row: {set(KINDS) - covered}"

    base = args.work / "baseline"
    if not (base / "warehouse").exists():
        shutil.rmtree(base, ignore_errors=True)
        run = run_cycle(Settings(home=base, **WORLD), 0)
        assert run.failed_at is None, run.error
    results = []
    for row in ("", *rows):  # "" is the control: the same cycle without a fault
        home = args.work / "runs" / (row.replace(":", "_").replace(",", "+") or "none")
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base, home)
        result = outcome(Settings(home=home, faults=tuple(row.split(",")) if row else (), **WORLD), row or "(none)")
        print(result, flush=True)
        results.append(result)
        shutil.rmtree(home, ignore_errors=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    tried = len(results) - 1
    counts = {v: sum(r["verdict"] == v for r in results[1:]) for v in ("blocked", "warned", "passed")}
    print(f"\n`.venv/bin/python bench/fault_matrix.py` at {commit}, {platform.machine()} "
          f"{platform.processor() or platform.system()}, {date.today()}; world {WORLD}, cycle 1 after a published "
          f"cycle 0. Faults tried {tried} / blocked {counts['blocked']} / warned {counts['warned']} / "
          f"passed {counts['passed']}.\n")
    print("| fault | outcome | stopped at | critical checks failed | warnings | s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| `{r['fault']}` | {r['verdict']} | {r['stopped_at']} | {r['critical']} | {r['warnings']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
