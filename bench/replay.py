"""What the benchmarks that replay a home's cycles share: the evidence before a cycle, a plan's value by
the truth, and the table of plans against the oracle."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from campaign_loop.config import Settings


def replay_parser(doc: str, cycles: str, seeds: int = 3) -> argparse.ArgumentParser:
    """The options every replay of a home's cycles takes (``doc``: the benchmark's module docstring)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=None, help="the campaign budget (default: the settings')")
    parser.add_argument("--cycles", default=cycles)
    parser.add_argument("--seeds", type=int, default=seeds, help="design seeds per Thompson plan")
    parser.add_argument("--write", action="store_true", help="replace the table in bench/RESULTS.md")
    return parser


def replay_home(args: argparse.Namespace, **overrides: Any) -> tuple[Settings, dict[str, Any]]:
    """The home's settings (MLflow pointed at its store) and its current champions."""
    from campaign_loop.config import load_settings
    from ml import tracking
    from ml.score import load_champions

    settings = load_settings(home=args.home, customers=args.customers, budget=args.budget, **overrides)
    tracking.configure(settings)
    return settings, load_champions()


@dataclass(frozen=True)
class Cycle:
    """One cycle of a home, as the scorer saw it at the cycle's start, and its truth."""

    cycle: int
    cycle_id: str
    effects: pd.DataFrame  # the simulator's true effects of the cycle
    evidence: pd.DataFrame  # ml.features.uplift_frame: every assignment measured before the cycle
    frame: pd.DataFrame  # ml.features.scoring_frame as of the cycle's start
    oracle: float  # the oracle plan's incremental profit
    executed: float  # the incremental profit of the campaign the loop executed

    def row(self) -> dict[str, Any]:
        """The start of the cycle's table row: what every plan is compared with."""
        return {"cycle": self.cycle, "cycle_id": self.cycle_id, "oracle": self.oracle, "executed": self.executed}


def cycle_inputs(settings: Settings, cycle: int) -> Cycle:
    from ml import features
    from sim import oracle

    key = settings.cycle_key(cycle)
    value = oracle.evaluate_cycle(settings, cycle)
    return Cycle(
        cycle=cycle, cycle_id=key,
        effects=pd.read_parquet(settings.truth_dir / "effects" / f"{key}.parquet"),
        evidence=features.uplift_frame(settings.warehouse_path, max_as_of=settings.cycle_start(cycle - 1)),
        frame=features.scoring_frame(settings.warehouse_path, as_of=settings.cycle_start(cycle)),
        oracle=value.oracle_incremental_profit, executed=value.incremental_profit,
    )


def true_averages(prior: pd.DataFrame, c: Cycle) -> pd.DataFrame:
    """``prior`` with each action's true average effect over the scored members (its standard errors kept)."""
    from sim import oracle

    members = oracle.by_member(c.effects)
    averages = prior.copy()
    averages["uplift"] = [float(members[column].reindex(c.frame["member_id"]).fillna(0.0).mean())
                          for column in averages.index]
    return averages


def planned_profit(settings: Settings, c: Cycle, scores: pd.DataFrame, seeds: int, **design: Any) -> float:
    """The treatment arm's incremental profit by the truth of the plan designed on ``scores``, averaged
    over ``seeds`` design seeds (Thompson draws and exploration differ by seed)."""
    from ml.decide import DesignConfig, design_campaign
    from sim import oracle

    profits = []
    for seed in range(seeds):
        config = DesignConfig.from_settings(settings, c.cycle_id, seed=seed, **design)
        plan = design_campaign(scores, config).rows
        treated = plan[plan["arm"] == "treatment"]
        profits.append(oracle.plan_value(c.effects, treated["member_id"], treated["offer"] + "__" + treated["channel"]))
    return float(np.mean(profits))


def ratio_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown: one line per cycle, the oracle, the executed campaign and each plan (ratio to the oracle)."""
    plans = [k for k in rows[0] if k not in ("cycle", "cycle_id", "oracle", "executed")]
    return [
        "| cycle | oracle | executed by the loop | " + " | ".join(plans) + " |",
        "|---|---:|---:|" + "---:|" * len(plans),
        *(f"| {r['cycle']} ({r['cycle_id']}) | {r['oracle']:,.1f} | {r['executed']:,.1f} ({r['executed'] / r['oracle']:.2f}) | "
          + " | ".join(f"{r[p]:,.1f} ({r[p] / r['oracle']:.2f})" for p in plans) + " |" for r in rows),
    ]
