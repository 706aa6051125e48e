"""Which policy designs the next campaign: the platform's own design, unless off-policy evaluation on the past
cycles' logs says another candidate earns more (issue 24, docs/decisions/0027).

Candidates are plans for the next cycle that the product can build without any truth (:func:`candidate_plans`):

* ``platform``: the design (:func:`ml.decide.design_campaign`), the incumbent;
* ``best_action``: the single action of best measured value per contact to everyone reachable;
* ``propensity_best_offer``: the likeliest buyers first, each the best-measured action they can receive.

Each candidate's treatment arm is a map customer -> action; :mod:`ml.ope` values it on each of the newest
:data:`MAX_CYCLES` cycles the platform planned (their rows carry the design's ``assignment_probability``),
over the customers that cycle planned (the only ones whose probabilities are recorded),
doubly robust where that cycle's own design-time predictions were kept (:func:`write_predictions`: an outcome
model fitted on the cycles before the one it corrects), self-normalised IPS otherwise. A cycle's estimates
are averaged over the cycles (independent randomisations, so the variances add), and a challenger replaces
the design only when its *paired* difference to the design (:func:`ml.ope.compare`) has a lower bound above
zero: one cycle's estimates at 20,000 customers have half-widths larger than the values themselves
(bench/RESULTS.md, "Off-policy evaluation against the truth"), so anything looser would switch on noise.

Two approximations, both on the cautious side for the incumbent: the candidates are today's plans scored on
last weeks' customers (a customer's action is taken as the policy's choice for them then), and the design's
models were trained on the very outcomes they are judged on, the measured-lift candidates too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from ml import ope
from ml.decide.candidates import best_action_plan, measured_lift, propensity_best_offer_plan

if TYPE_CHECKING:
    from campaign_loop.config import Settings
    from ml.decide import CampaignPlan, DesignConfig

INCUMBENT = "platform"
CANDIDATES: tuple[str, ...] = (INCUMBENT, "best_action", "propensity_best_offer")
# Logged cycles pooled: more shrink the interval by their square root, but older customers' states and
# older effects drift further from the plan being judged.
MAX_CYCLES = 3
LEVEL = 0.95


@dataclass(frozen=True)
class PolicyEvaluation:
    """Each candidate's pooled estimate, each challenger's paired difference to the incumbent, and the choice."""

    chosen: str
    reason: str
    cycles: dict[str, str]  # logged cycle_id -> method used on it (dr or snips)
    estimates: dict[str, ope.Estimate]
    versus: dict[str, ope.Estimate]  # challenger minus incumbent
    treated: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (NaN as None), the form the plan's summary carries."""
        def clean(e: ope.Estimate) -> dict[str, Any]:
            return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in e.as_dict().items()}

        return {"chosen": self.chosen, "reason": self.reason, "incumbent": INCUMBENT, "level": LEVEL,
                "cycles": self.cycles, "treated": self.treated,
                "estimates": {k: clean(e) for k, e in self.estimates.items()},
                "versus_incumbent": {k: clean(e) for k, e in self.versus.items()}}


# --------------------------------------------------------------------------------------------------
# Inputs


def logged_cycles(sends: pd.DataFrame, cycle_ids: list[str], max_cycles: int = MAX_CYCLES) -> dict[str, pd.DataFrame]:
    """The logged frames :mod:`ml.ope` reads (``customer_id``, ``action``, ``treatment``,
    ``assignment_probability``, ``margin``), one per cycle of ``cycle_ids`` that has both arms, newest
    ``max_cycles`` first.

    ``sends``: ``ml.features.uplift_frame`` (``as_of_date`` = the cycle's start). ``cycle_ids``: the cycles the
    platform planned; business as usual records only the arm's probability, not the action's, so it is left
    out. A customer with two rows in one cycle (two campaigns) is dropped: one cycle's plan gives one action.
    """
    frame = sends.assign(cycle_id=pd.to_datetime(sends["as_of_date"]).dt.strftime("%Y-%m-%d"))
    p = pd.to_numeric(frame["assignment_probability"], errors="coerce")
    frame = frame[frame["cycle_id"].isin(cycle_ids) & p.gt(0) & p.le(1)]
    out: dict[str, pd.DataFrame] = {}
    for cycle_id in sorted(frame["cycle_id"].unique(), reverse=True):
        rows = frame[frame["cycle_id"] == cycle_id]
        rows = rows[~rows["customer_id"].duplicated(keep=False)]
        if rows["treatment"].nunique() < 2:
            continue
        out[str(cycle_id)] = pd.DataFrame({
            "customer_id": rows["customer_id"].to_numpy(), "action": rows["action"].astype(str).to_numpy(),
            "treatment": rows["treatment"].astype(int).to_numpy(),
            "assignment_probability": rows["assignment_probability"].astype(float).to_numpy(),
            "margin": rows["margin"].fillna(0.0).astype(float).to_numpy()})
        if len(out) == max_cycles:
            break
    return out


def predictions_path(settings: Settings, cycle_id: str) -> Any:
    return settings.exports_dir / "predictions" / f"{cycle_id}.parquet"


def outcome_model(customers: pd.DataFrame, config: DesignConfig) -> pd.DataFrame:
    """The design's own outcome model of the cycle it designs: per customer, expected margin untreated
    (``predicted_untreated``) and each action's expected margin effect (one column per action name)."""
    untreated, effect = ope.outcome_predictions(customers, config.actions)
    out = pd.concat([untreated, effect], axis=1)
    out.insert(0, "customer_id", customers["customer_id"].to_numpy())
    return out.reset_index(drop=True)


def write_predictions(customers: pd.DataFrame, config: DesignConfig, settings: Settings) -> Any:
    """Keep the design's outcome model of ``config.cycle_id``: once that cycle's outcomes are in, it is a
    model fitted on earlier cycles only, which the doubly-robust estimate needs (:mod:`ml.ope`)."""
    path = predictions_path(settings, config.cycle_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    outcome_model(customers, config).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def with_model(logged: pd.DataFrame, model: pd.DataFrame) -> pd.DataFrame:
    """``logged`` with the model's ``predicted_untreated`` and the ``predicted_effect`` of each row's action
    (0 where the model has no row or no such action: it then predicts no effect)."""
    by_id = model.set_index("customer_id")
    rows = by_id.reindex(logged["customer_id"])
    effect = _effect_of(rows, logged["action"].to_numpy())
    return logged.assign(predicted_untreated=rows["predicted_untreated"].fillna(0.0).to_numpy(float),
                         predicted_effect=effect)


def _effect_of(rows: pd.DataFrame, actions: np.ndarray) -> np.ndarray:
    column = rows.columns.get_indexer(actions)
    values = rows.to_numpy(float)
    picked = np.where(column >= 0, values[np.arange(len(rows)), np.maximum(column, 0)], 0.0)
    return np.nan_to_num(picked)


def candidate_frame(plan: CampaignPlan, model: pd.DataFrame | None) -> pd.DataFrame:
    """A plan's treatment arm as an :mod:`ml.ope` candidate, with the model's effect of its action when given."""
    frame = ope.candidate_from_plan(plan.rows)
    if model is None:
        return frame
    rows = model.set_index("customer_id").reindex(frame["customer_id"])
    return frame.assign(predicted_effect=_effect_of(rows, frame["action"].to_numpy()))


def within(candidate: pd.DataFrame, customers: set[Any]) -> pd.DataFrame:
    """The candidate's rows for ``customers`` (a logged cycle's support) only."""
    return candidate[candidate["customer_id"].isin(customers)].reset_index(drop=True)


def candidate_plans(customers: pd.DataFrame, sends: pd.DataFrame, design: CampaignPlan, config: DesignConfig
                    ) -> dict[str, CampaignPlan]:
    """The candidates of the module docstring for the customers the design was made for."""
    effects = measured_lift(sends) if len(sends) else measured_lift(sends.iloc[:0])
    return {INCUMBENT: design, "best_action": best_action_plan(customers, effects, config),
            "propensity_best_offer": propensity_best_offer_plan(customers, effects, config)}


# --------------------------------------------------------------------------------------------------
# Evaluation


def pooled(estimates: list[ope.Estimate], level: float = LEVEL) -> ope.Estimate:
    """The mean of per-cycle estimates of one quantity; its variance the sum of theirs over k^2 (the cycles
    are separate randomisations). Cycles without an interval (too few matched rows) are left out; with none
    left, the value stays and the interval is NaN."""
    if not estimates:
        raise ValueError("no estimates to pool")
    defined = [e for e in estimates if math.isfinite(e.se)]
    use = defined or estimates
    value = float(np.mean([e.value for e in use]))
    se = math.sqrt(sum(e.se ** 2 for e in defined)) / len(defined) if defined else math.nan
    z = float(norm.ppf(0.5 + level / 2))
    return ope.Estimate(
        method="+".join(sorted({e.method for e in use})), value=value, se=se, low=value - z * se, high=value + z * se,
        customers=max(e.customers for e in use), matched=sum(e.matched for e in use),
        matched_treatment=sum(e.matched_treatment for e in use), matched_control=sum(e.matched_control for e in use),
        cost=float(np.mean([e.cost for e in use])), level=level)


def evaluate(logs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame | None]], plans: Mapping[str, CampaignPlan],
             incumbent: str = INCUMBENT, level: float = LEVEL) -> PolicyEvaluation:
    """Value every candidate plan on every logged cycle (``cycle_id -> (logged, outcome model or None)``),
    pool over the cycles and choose: a challenger whose pooled paired difference to ``incumbent`` is above
    zero at ``level`` (the largest such), else the incumbent."""
    treated = {name: int((plan.rows["arm"] == "treatment").sum()) for name, plan in plans.items()}
    if not logs:
        return PolicyEvaluation(incumbent, "no logged cycle planned by the platform yet: nothing to evaluate on",
                                {}, {}, {}, treated)
    per_cycle: dict[str, list[ope.Estimate]] = {name: [] for name in plans}
    diffs: dict[str, list[ope.Estimate]] = {name: [] for name in plans if name != incumbent}
    methods: dict[str, str] = {}
    for cycle_id, (logged, model) in logs.items():
        method: ope.Method = "snips" if model is None else "dr"
        methods[cycle_id] = method
        log = logged if model is None else with_model(logged, model)
        # Only the customers the cycle planned have recorded probabilities: elsewhere a candidate's value would
        # be the outcome model's belief alone (DR) or nothing (SNIPS), uncorrected and absent from the interval.
        support = set(logged["customer_id"])
        frames = {name: within(candidate_frame(plan, model), support) for name, plan in plans.items()}
        for name, frame in frames.items():
            per_cycle[name].append(ope.estimate(log, frame, method, level=level))
            if name != incumbent:
                diffs[name].append(ope.compare(log, frame, frames[incumbent], method, level=level))
    estimates = {name: pooled(es, level) for name, es in per_cycle.items()}
    versus = {name: pooled(ds, level) for name, ds in diffs.items()}
    chosen, reason = _choose(versus, incumbent, level)
    return PolicyEvaluation(chosen, reason, methods, estimates, versus, treated)


def _choose(versus: Mapping[str, ope.Estimate], incumbent: str, level: float) -> tuple[str, str]:
    better = {name: d for name, d in versus.items() if math.isfinite(d.low) and d.low > 0}
    if not better:
        shown = "; ".join(f"{name} {d.value:+,.2f} [{d.low:,.2f}, {d.high:,.2f}]" for name, d in versus.items()
                          if math.isfinite(d.se)) or "no challenger has an interval"
        return incumbent, f"no challenger beats {incumbent} at {level:.0%} (paired difference: {shown})"
    best = max(better, key=lambda name: better[name].value)
    d = better[best]
    return best, f"{best} beats {incumbent} by {d.value:+,.2f} [{d.low:,.2f}, {d.high:,.2f}] (paired, {level:.0%})"


# --------------------------------------------------------------------------------------------------
# The design step's entry point


def choose_plan(customers: pd.DataFrame, sends: pd.DataFrame, design: CampaignPlan, config: DesignConfig,
                logs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame | None]]) -> CampaignPlan:
    """The plan to export: the design, or the candidate the evaluation chose; either way its summary carries
    the evaluation under ``policy_choice`` (and the chosen plan's ``method`` says why it replaced the design)."""
    plans = candidate_plans(customers, sends, design, config)
    evaluation = evaluate(logs, plans)
    chosen = plans[evaluation.chosen]
    summary = {**chosen.summary, "policy_choice": evaluation.as_dict()}
    if evaluation.chosen != INCUMBENT:
        summary["method"] = f"policy choice: {evaluation.chosen} (off-policy evaluation: {evaluation.reason})"
    return type(chosen)(cycle_id=chosen.cycle_id, rows=chosen.rows, summary=summary)


def read_logs(settings: Settings, sends: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None]]:
    """The logged cycles the platform planned (a plan file exists), each with its kept outcome model if any."""
    plans = settings.exports_dir / "plans"
    planned = sorted(p.name.removesuffix(".parquet") for p in plans.glob("*.parquet")) if plans.is_dir() else []
    out: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] = {}
    for cycle_id, logged in logged_cycles(sends, planned).items():
        path = predictions_path(settings, cycle_id)
        out[cycle_id] = (logged, pd.read_parquet(path) if path.is_file() else None)
    return out
