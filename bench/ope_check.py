"""Off-policy evaluation against the truth (issue 24): do IPS, SNIPS and DR estimates from one logged cycle
hold each candidate policy's true incremental profit?

Per world and seed: the simulated retailer lives through cycle 0 (business as usual); cycle 1's campaign is
designed by the platform's optimiser (:func:`ml.decide.design_campaign`, every default: Thompson sampling at
scale 0.25 on the uplifts' standard errors, epsilon 0.05, the powered holdout) from a *belief* about the
effects, and the simulator executes it. The belief stands in for the loop's models without training them:
per action, the members' mean true uplift, plus half of each member's deviation from it, plus noise of the
deviations' own spread, with that spread as the standard error. The plan's recorded
``assignment_probability`` and the members' realised margin in the cycle (the simulator's outcomes, what
``fct_campaign_sends`` measures) are the logged data.

Candidates, each a plan under the same budget and rules on the same members, valued by the truth
(``sim.oracle.plan_value``: expected incremental margin net of discount and contact cost):

* ``greedy``: the optimiser on the belief without exploration (what the logging policy exploits);
* ``oracle``: the optimiser on the true effects (``sim.oracle.oracle_plan``);
* ``best_action``: the one action of highest believed mean value, to everyone reachable, in random order;
* ``random``: a uniformly random allowed action for random members;
* ``propensity_pct10``: the likeliest buyers first, pct10 on their cheapest channel (the old baseline).

Estimates: ``ips``, ``snips``, ``dr_belief`` (DR with the belief as outcome model, ``ml.ope.outcome_predictions``)
and ``dr_truth`` (DR with the true purchase probabilities, spend and uplifts: a good outcome model).
``--replicates R`` also re-designs the logged plan under R other seeds and compares the recorded
probabilities with how often each member really got their action and arm (exploited and explored rows apart).

    .venv/bin/python bench/ope_check.py --worlds a,b,c,d --seeds 1001,1002 --customers 20000 --replicates 20 --write
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import RESULTS, machine, write_section  # noqa: E402
from campaign_loop import pipeline  # noqa: E402
from campaign_loop.config import Settings  # noqa: E402
from ml import ope, policy_choice  # noqa: E402
from ml.decide import CampaignPlan, DesignConfig, action_economics, design_campaign, uplift_column  # noqa: E402
from ml.export import write_plan  # noqa: E402
from ml.policies import best_action_plan, propensity_plan, random_plan  # noqa: E402
from sim.oracle import _effects, effects_at_start, oracle_customers, oracle_plan, plan_value  # noqa: E402

HEADING = "## Off-policy evaluation against the truth (issue 24)"
CHOICE_HEADING = "### The loop's policy choice by these estimates (ml/policy_choice.py, decision 0027)"
CANDIDATES = ("greedy", "oracle", "best_action", "random", "propensity_pct10")
ESTIMATES = ("ips", "snips", "dr_belief", "dr_truth", "ips_pooled", "dr_belief_pooled")
LABELS = {"ips": "IPS", "snips": "SNIPS", "dr_belief": "DR, belief model", "dr_truth": "DR, true model",
          "ips_pooled": "IPS, pooled controls", "dr_belief_pooled": "DR, belief, pooled controls"}
SHRINK = 0.5  # of each member's true deviation from the action's mean that the belief keeps


def belief(customers: pd.DataFrame, config: DesignConfig, rng: np.random.Generator) -> pd.DataFrame:
    """The logging policy's view of the effects: shrunk, noisy true uplifts with a standard error."""
    out = customers.copy()
    for action in config.actions:
        column = uplift_column(action)
        true = customers[column].to_numpy(float)
        spread = float(true.std()) or 1e-4
        out[column] = true.mean() + SHRINK * (true - true.mean()) + rng.normal(0.0, spread, len(true))
        out[f"uplift_sd__{action.name}"] = spread
    return out


def believed_effects(customers: pd.DataFrame, config: DesignConfig) -> pd.DataFrame:
    """Per action, the believed mean lift and value per contact: what ``best_action_plan`` reads."""
    actions = config.actions
    econ = action_economics(customers[[uplift_column(a) for a in actions]].to_numpy(float),
                            customers["p_buy"].to_numpy(float), customers["expected_spend"].to_numpy(float),
                            customers["margin_rate"].to_numpy(float), actions)
    return pd.DataFrame({"lift": customers[[uplift_column(a) for a in actions]].mean().to_numpy(),
                         "value_per_contact": econ.value.mean(axis=0)}, index=[a.name for a in actions])


def candidate_plans(true: pd.DataFrame, believed: pd.DataFrame, settings: Settings, config: DesignConfig
                    ) -> dict[str, CampaignPlan]:
    deterministic = replace(config, exploration="epsilon", epsilon=0.0)
    zero_uplift = believed.assign(**{uplift_column(a): 0.0 for a in config.actions})
    return {
        "greedy": design_campaign(believed.drop(columns=[c for c in believed if c.startswith("uplift_sd__")]),
                                  deterministic),
        "oracle": oracle_plan(settings, 1, true),
        "best_action": best_action_plan(believed, believed_effects(believed, config), config),
        "random": random_plan(zero_uplift, config),
        "propensity_pct10": propensity_plan(believed, config),
    }


def _with_predictions(frame: pd.DataFrame, customers: pd.DataFrame, config: DesignConfig, own_action: bool
                      ) -> pd.DataFrame:
    """``predicted_untreated`` and ``predicted_effect`` (of each row's ``action``) from a customers frame."""
    untreated, effect = ope.outcome_predictions(customers.set_index("customer_id"), config.actions)
    rows = effect.reindex(frame["customer_id"])
    column = rows.columns.get_indexer(frame["action"])
    out = frame.assign(predicted_effect=rows.to_numpy(float)[np.arange(len(frame)), column])
    return out.assign(predicted_untreated=untreated.reindex(frame["customer_id"]).to_numpy(float)) if own_action else out


def redesign(believed: pd.DataFrame, config: DesignConfig, logged: pd.DataFrame, replicates: int
             ) -> tuple[dict[str, Any], pd.Series]:
    """Re-design the logged plan under ``replicates`` other seeds (as ``ml.ope.contact_probability`` does).

    Returns the propensity check (how often the re-designs gave each logged member their logged action and
    arm, against the recorded probability: sums over the logged rows, exploited and explored rows apart,
    and for explored rows recorded below 0.02) and each member's probability of being contacted."""
    key = logged["customer_id"].astype(str) + "|" + logged["action"] + "|" + logged["arm"]
    hits = np.zeros(len(logged))
    contacted = pd.Series(0.0, index=pd.Index(believed["customer_id"].to_numpy()))
    for r in range(replicates):
        plan = design_campaign(believed, replace(config, seed=config.seed + 7919 * (r + 1)))
        rows = plan.rows
        got = set(rows["customer_id"].astype(str) + "|" + rows["offer"] + "__" + rows["channel"] + "|" + rows["arm"])
        hits += key.isin(got).to_numpy()
        contacted.loc[rows["customer_id"].to_numpy()] += 1.0 - float(plan.summary["holdout"]["share"])
    out: dict[str, Any] = {"replicates": replicates}
    explored = logged["exploration"].to_numpy(bool)
    low = logged["assignment_probability"].to_numpy(float) < 0.02
    for name, rows in (("exploited", ~explored), ("explored", explored), ("explored_low", explored & low)):
        recorded = float(logged.loc[rows, "assignment_probability"].sum())
        empirical = float(hits[rows].sum() / replicates)
        out[name] = {"rows": int(rows.sum()), "recorded": recorded, "empirical": empirical,
                     "ratio": recorded / empirical if empirical else None}
    return out, contacted / replicates


def rule_check(logged: pd.DataFrame, believed: pd.DataFrame, plans: dict[str, CampaignPlan], config: DesignConfig,
               truth: dict[str, float]) -> dict[str, Any]:
    """The loop's rule (``ml.policy_choice.evaluate``) on this one logged cycle, the logging design's exploit-only
    plan (``greedy``) as the incumbent and the belief as the kept outcome model: what it picks, each challenger's
    paired difference, and whether the pick is truly no worse than the incumbent (whole plans, by the truth)."""
    log = logged.assign(treatment=(logged["arm"] == "treatment").astype(int))[
        ["customer_id", "action", "treatment", "assignment_probability", "margin"]]
    model = policy_choice.outcome_model(believed, config)
    evaluation = policy_choice.evaluate({"logged": (log, model)}, plans, incumbent="greedy")
    return {"chosen": evaluation.chosen, "reason": evaluation.reason,
            "versus": {k: [d.value, d.low, d.high] for k, d in evaluation.versus.items()},
            "true_gain": truth[evaluation.chosen] - truth["greedy"],
            "best": max(truth, key=lambda k: truth[k])}


def run_one(world: str, seed: int, customers: int, budget_per_customer: float, replicates: int, out: Path
            ) -> dict[str, Any]:
    started = time.perf_counter()
    home = out / f"{world}-{seed}"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, customers=customers, seed=seed, world=world,
                        budget=budget_per_customer * customers)
    pipeline.simulate(settings, 0)
    config = DesignConfig.from_settings(settings, settings.cycle_key(1))
    effects, spend = effects_at_start(settings, 1)
    true = oracle_customers(settings, 1, effects, spend)
    believed = belief(true, config, np.random.default_rng([seed, 24]))
    logging_plan = design_campaign(believed, config)
    write_plan(logging_plan, settings)
    plans = candidate_plans(true, believed, settings, config)
    pipeline.simulate(settings, 1)

    outcomes = pd.read_parquet(settings.truth_dir / "outcomes" / f"{settings.cycle_key(1)}.parquet",
                               columns=["member_id", "margin"]).dropna(subset=["member_id"])
    rows = logging_plan.rows
    logged = pd.DataFrame({
        "customer_id": rows["customer_id"].to_numpy(), "action": (rows["offer"] + "__" + rows["channel"]).to_numpy(),
        "arm": rows["arm"].to_numpy(), "assignment_probability": rows["assignment_probability"].to_numpy(),
        "exploration": rows["exploration"].to_numpy(bool),
        "margin": rows["member_id"].map(outcomes.drop_duplicates("member_id").set_index("member_id")["margin"])
        .fillna(0.0).to_numpy(float),
    })
    logged_belief = _with_predictions(logged, believed, config, own_action=True)
    logged_truth = _with_predictions(logged, true, config, own_action=True)
    truth_effects = _effects(settings, 1)

    check, pooled = None, {}
    if replicates:
        check, p_contacted = redesign(believed, config, logged, replicates)
        margin = outcomes.drop_duplicates("member_id").set_index("member_id")["margin"]
        population = pd.DataFrame({"customer_id": true["customer_id"].to_numpy(),
                                   "margin": true["member_id"].map(margin).fillna(0.0).to_numpy(float),
                                   "p_contacted": p_contacted.reindex(true["customer_id"]).to_numpy(float)})
        untreated, _ = ope.outcome_predictions(believed.set_index("customer_id"), config.actions)
        pooled = {"ips_pooled": ope.pool_controls(logged, population),
                  "dr_belief_pooled": ope.pool_controls(logged_belief, population.assign(
                      predicted_untreated=untreated.reindex(population["customer_id"]).to_numpy(float)))}
    # Per estimate: its logged frame, and the customers frame of its outcome model (None: no model).
    sources: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] = {
        "ips": (logged, None), "snips": (logged, None), "dr_belief": (logged_belief, believed),
        "dr_truth": (logged_truth, true), "ips_pooled": (pooled.get("ips_pooled", logged), None),
        "dr_belief_pooled": (pooled.get("dr_belief_pooled", logged_belief), believed)}
    names = [m for m in ESTIMATES if replicates or not m.endswith("_pooled")]

    def method(name: str) -> ope.Method:
        return "dr" if name.startswith("dr") else "snips" if name == "snips" else "ips"

    def frames(model: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
        out = {n: ope.candidate_from_plan(p.rows) for n, p in plans.items()}
        return out if model is None else {n: _with_predictions(f, model, config, own_action=False) for n, f in out.items()}

    results: list[dict[str, Any]] = []
    candidates = {name: frames(sources[name][1]) for name in names}
    for name, plan in plans.items():
        treated = plan.rows[plan.rows["arm"] == "treatment"]
        value = plan_value(truth_effects, treated["member_id"], treated["offer"] + "__" + treated["channel"])
        estimates = {m: ope.estimate(sources[m][0], candidates[m][name], method(m)) for m in names}
        results.append({"world": world, "seed": seed, "candidate": name, "treated": len(treated),
                        "true_value": value, **{k: e.as_dict() for k, e in estimates.items()}})
    # Which candidate each estimate would pick (ml.ope.choose_policy, no incumbent).
    choices = {m: ope.choose_policy(sources[m][0], candidates[m], method=method(m)).chosen for m in names}
    summary = logging_plan.summary
    rule = rule_check(logged, believed, plans, config, {r["candidate"]: r["true_value"] for r in results})
    return {"world": world, "seed": seed, "customers": customers, "rows": results, "choices": choices, "rule": rule,
            "logged": {"rows": len(logged), "treatment": int((logged["arm"] == "treatment").sum()),
                       "explored": int(logged["exploration"].sum()), "epsilon_effective": summary["epsilon_effective"],
                       "holdout_share": summary["holdout"]["share"], "exploration": summary["exploration"],
                       "true_value": plan_value(truth_effects, rows.loc[rows["arm"] == "treatment", "member_id"],
                                                (rows["offer"] + "__" + rows["channel"])[rows["arm"] == "treatment"])},
            "propensity_check": check, "seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------------------------------
# Report


def _cell(e: dict[str, Any], truth: float) -> str:
    if not math.isfinite(e["value"]):
        return "n/a"
    if not math.isfinite(e["se"]):
        return f"{e['value']:,.0f} (no interval: {e['matched_treatment']}+{e['matched_control']} matched)"
    mark = "" if e["low"] <= truth <= e["high"] else " **out**"
    return f"{e['value']:,.0f} ± {1.96 * e['se']:,.0f}{mark}"


def tables(runs: list[dict[str, Any]]) -> list[str]:
    rows = [r for run in runs for r in run["rows"]]
    names = [m for m in ESTIMATES if m in rows[0]]
    lines = ["| world | seed | candidate | treated | true value | " + " | ".join(LABELS[m] for m in names) + " |",
             "|---|---:|---|---:|---:|" + "---:|" * len(names)]
    for r in rows:
        lines.append(f"| {r['world']} | {r['seed']} | {r['candidate']} | {r['treated']:,} | {r['true_value']:,.0f} | "
                     + " | ".join(_cell(r[m], r["true_value"]) for m in names) + " |")
    lines += ["", "| estimate | intervals holding the truth (of those defined) | within 15 % of the truth "
              "| median abs. error / abs. truth | median 95 % half-width | picks the truly best candidate |", "|---|---:|---:|---:|---:|---:|"]
    best = {(run["world"], run["seed"]): max(run["rows"], key=lambda r: r["true_value"])["candidate"] for run in runs}
    for m in names:
        defined = [r for r in rows if math.isfinite(r[m]["se"])]
        covered = sum(r[m]["low"] <= r["true_value"] <= r[m]["high"] for r in defined)
        within = sum(abs(r[m]["value"] - r["true_value"]) <= 0.15 * abs(r["true_value"]) for r in rows)
        rel = [abs(r[m]["value"] - r["true_value"]) / abs(r["true_value"]) for r in rows if r["true_value"]]
        width = np.nanmedian([1.96 * r[m]["se"] for r in defined]) if defined else math.nan
        picks = sum(run["choices"][m] == best[(run["world"], run["seed"])] for run in runs)
        lines.append(f"| {LABELS[m]} | {covered}/{len(defined)} | {within}/{len(rows)} | {np.nanmedian(rel):.2f} | "
                     f"{width:,.0f} | {picks}/{len(runs)} |")
    checks = [run for run in runs if run["propensity_check"]]
    if checks:
        lines += ["", "| world | seed | logged rows | holdout share | explored | recorded / realised, exploited rows | "
                  "recorded / realised, explored rows | same, explored rows recorded below 0.02 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for run in checks:
            c = run["propensity_check"]

            def ratio(part: dict[str, Any]) -> str:
                return "n/a" if part["ratio"] is None else f"{part['ratio']:.2f}"

            lines.append(f"| {run['world']} | {run['seed']} | {run['logged']['rows']:,} | "
                         f"{run['logged']['holdout_share']:.2f} | {c['explored']['rows']:,} | "
                         f"{ratio(c['exploited'])} | {ratio(c['explored'])} | {ratio(c['explored_low'])} "
                         f"({c['explored_low']['rows']} rows) |")
    return lines


# --------------------------------------------------------------------------------------------------
# The loop's policy choice (ml.policy_choice), from bench/loop_value.py's platform and platform_ope rows


def _interval(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, list) or value[0] is None:
        return "-"
    low, high = value[1], value[2]
    return f"{value[0]:,.0f}" + ("" if low is None else f" [{low:,.0f}, {high:,.0f}]")


def choice_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per world, seed and cycle: the loop's profit with policy_choice off and on, what it chose on which logs,
    and each candidate's pooled estimate beside its true value (``info_true_<candidate>``)."""
    off = {(r.get("world"), r.get("seed"), r["cycle"]): r for r in rows if r["policy"] == "platform"}
    names = ("platform", "best_action", "propensity_best_offer")
    lines = ["| world | seed | cycle | logged cycles (method) | profit, off | profit, on | chosen | "
             + " | ".join(f"{n}: estimate [95 %] / truth" for n in names) + " |",
             "|---|---:|---:|---|---:|---:|---|" + "---|" * len(names)]
    held = defined = switched = 0
    for r in (r for r in rows if r["policy"] == "platform_ope"):
        base = off.get((r.get("world"), r.get("seed"), r["cycle"]))
        cycles = ", ".join(f"{c} ({m})" for c, m in (r.get("info_ope_cycles") or {}).items()) or "none"
        cells = []
        for n in names:
            truth = r.get(f"info_true_{n}")
            estimate = r.get(f"info_estimate_{n}")
            if isinstance(estimate, list) and estimate[1] is not None and truth is not None:
                defined += 1
                held += estimate[1] <= truth <= estimate[2]
            cells.append(f"{_interval(r, f'info_estimate_{n}')} / {'-' if truth is None else f'{truth:,.0f}'}")
        switched += r.get("info_chosen") not in (None, "platform")
        profit_off = "-" if base is None else f"{base['incremental_profit']:,.0f}"
        lines.append(f"| {r.get('world')} | {r.get('seed')} | {r['cycle']} | {cycles} | "
                     f"{profit_off} | {r['incremental_profit']:,.0f} | "
                     f"{r.get('info_chosen')} | " + " | ".join(cells) + " |")
    on = [r for r in rows if r["policy"] == "platform_ope"]
    lines += ["", f"Switched from the design in {switched} of {len(on)} designed cycles; candidate intervals "
              f"holding the truth: {held} of {defined} defined."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="a,b,c,d")
    parser.add_argument("--seeds", default="1001,1002", help="comma-separated")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--budget-per-customer", type=float, default=0.05)
    parser.add_argument("--replicates", type=int, default=0, help="re-designs per world for the propensity check")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "ope_check")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of bench/RESULTS.md")
    parser.add_argument("--policy-choice-json", type=Path, default=None,
                        help="instead of running: the table of bench/loop_value.py's platform and platform_ope rows "
                             "(its --json), written with --write as this section's policy-choice subsection")
    parser.add_argument("--policy-choice-command", default="", help="the loop_value command that wrote that JSON")
    parser.add_argument("--rule-runs", type=Path, default=None, help="the rule's runs saved by an earlier --json")
    parser.add_argument("--rule-seeds", default="", help="with --policy-choice-json: also run the loop's rule on "
                                                          "one logged cycle of these seeds (per --worlds)")
    args = parser.parse_args(argv)
    if args.policy_choice_json:
        return write_choice(args)
    started = time.perf_counter()
    runs = []
    for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            runs.append(run_one(world, seed, args.customers, args.budget_per_customer, args.replicates, args.out))
            print(f"world {world} seed {seed}: {runs[-1]['seconds']:.0f} s", file=sys.stderr)
            if args.json:
                args.json.write_text(json.dumps(runs, indent=2, default=str))
    seconds = time.perf_counter() - started
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=RESULTS.parent).stdout.strip()
    command = " ".join(["bench/ope_check.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [HEADING, "", f"Command: `.venv/bin/python {command}`  ", f"Commit: {commit}  ", f"Machine: {machine()}  ",
             f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {seconds / 60:.1f} min", "", *tables(runs)]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(text)
    return 0


def rule_table(runs: list[dict[str, Any]]) -> list[str]:
    """Per world and seed: what the rule chose over the design at 95 %, each challenger's paired difference, and
    the choice's true gain over the design."""
    names = [k for k in runs[0]["rule"]["versus"]]
    lines = ["| world | seed | chosen | true gain over greedy | truly best | "
             + " | ".join(f"{n} minus greedy [95 %]" for n in names) + " |", "|---|---:|---|---:|---|" + "---:|" * len(names)]
    for run in runs:
        rule = run["rule"]

        def cell(v: list[float]) -> str:
            return "n/a" if not math.isfinite(v[0]) else f"{v[0]:,.0f}" + (
                "" if not math.isfinite(v[1]) else f" [{v[1]:,.0f}, {v[2]:,.0f}]")

        lines.append(f"| {run['world']} | {run['seed']} | {rule['chosen']} | {rule['true_gain']:,.0f} | {rule['best']} | "
                     + " | ".join(cell(rule["versus"][n]) for n in names) + " |")
    wrong = sum(r["rule"]["true_gain"] < 0 for r in runs)
    switched = sum(r["rule"]["chosen"] != "greedy" for r in runs)
    lines += ["", f"Switched in {switched} of {len(runs)}; switched to a truly worse plan in {wrong}."]
    return lines


def write_choice(args: argparse.Namespace) -> int:
    rows = json.loads(args.policy_choice_json.read_text()) if args.policy_choice_json.is_file() else []
    runs = json.loads(args.rule_runs.read_text()) if args.rule_runs else []
    if args.rule_seeds and not runs:
        for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
            for seed in [int(x) for x in args.rule_seeds.split(",") if x.strip()]:
                runs.append(run_one(world, seed, args.customers, args.budget_per_customer, 0, args.out))
                print(f"rule: world {world} seed {seed}: {runs[-1]['seconds']:.0f} s", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(runs, indent=2, default=str))
    rule = [] if not runs else [
        f"The rule on one logged cycle: `.venv/bin/python bench/ope_check.py --worlds {args.worlds} --rule-seeds "
        f"{args.rule_seeds} --customers {args.customers}` (the setup of the table above; incumbent the design "
        "without exploration, `greedy`; challengers the other plans, the oracle's included):", "", *rule_table(runs), ""]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=RESULTS.parent).stdout.strip()
    text = "\n".join([CHOICE_HEADING, "", f"Command: `{args.policy_choice_command}`  ", f"Commit: {commit}  ",
                       f"Machine: {machine()}  ", f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
                       *rule, *([] if not rows else ["The loop with `policy_choice` off and on (bench/loop_value.py, `platform` and "
                       "`platform_ope`); each candidate's pooled estimate and its true value on the same logged "
                       "customers:", "", *choice_table(rows)])])
    print(text)
    if args.write:
        write_section(text, within=HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
