"""Off-policy evaluation: what a candidate policy would have earned in a past cycle, from that cycle's logs.

A cycle's plan randomises twice per customer it plans: which action (the optimiser's choice, Thompson's
draw or epsilon's random action) and which arm (the holdout). The plan records the product of the two,
``assignment_probability`` = P(action | customer) x P(arm), on every row it sends (``fct_action_sends``;
``ml.features.uplift_frame`` returns it). For a candidate policy that gives customer ``c`` action
``pi(c)``, the logged rows whose planned action equals ``pi(c)`` are a randomised experiment on exactly
that choice: the treatment row tells what ``pi(c)`` earns, the control row what leaving ``c`` alone
earns, each weighted by the inverse of its recorded probability. So the incremental profit of ``pi``,

    V(pi) = sum over the customers pi treats of E[Y_c(pi(c)) - Y_c(none)] - contact cost,

(``Y`` the cycle's margin, net of the offer's discount; what ``sim.oracle`` calls incremental profit) is
estimated from the recorded probabilities alone, whatever the candidate is, provided every action it
picks had a positive probability for that customer (epsilon exploration gives every allowed action one).

Estimators, each an :class:`Estimate` with a standard error and a normal interval:

* :func:`ips`: inverse propensity scoring, ``sum_c [1{A_c = pi(c)} s_c Y_c / p_c] - cost`` with ``s`` +1
  for the treatment arm and -1 for the control arm. Unbiased; its variance grows with 1/p.
* :func:`snips`: self-normalised IPS (Hajek): each arm's weighted mean outcome with weights normalised to
  sum to one, times the customers ``pi`` treats. Biased by O(1/n), far steadier when weights are uneven.
* :func:`dr`: doubly robust: an outcome model's predicted effect for every customer ``pi`` treats plus the
  IPS-weighted residuals of the matched rows. Unbiased if either the propensities or the model are right;
  its variance is the residuals', so a good model shrinks the interval.

Intervals are conditional on the customers (the estimand is the expected profit of treating *these*
customers), treat assignments as independent across customers (the design's fixed-count draws make them
slightly negatively dependent, so the intervals err wide) and take the recorded probabilities as exact.
The outcome model must not be fitted on the outcomes it corrects: fit it on earlier cycles. With fewer
than :data:`MIN_MATCHED` matched rows in an arm the interval is NaN: the logs barely cover the candidate.

Matched holdouts or pooled controls. Matched on the planned action, the estimate weights each customer's
treated-minus-held-out outcome by 1 / P(action); the arm's probability is the design's own and exact, so
an error in P(action) scales only the (small) effect, not the outcome's level. Pooling every uncontacted
customer as the control (:func:`pool_controls`) uses far more controls, but then P(action) and
P(no contact) weight the two levels separately and any error in either biases the estimate by a share of
the whole baseline margin: only sound once both are recorded exactly (docs/decisions/0016).

:func:`compare` estimates the difference between two candidates per customer (paired: customers both treat
alike cancel), :func:`choose_policy` picks among candidates by their estimates.

Frames (pandas):

* ``logged``: one row per planned customer of *one* cycle: ``customer_id``, ``action`` (``<offer>__<channel>``),
  ``treatment`` (1/0; or ``arm``, ``treatment``/``control``), ``assignment_probability`` and the outcome
  (default ``margin``). For :func:`dr`: ``predicted_untreated`` (the model's expected outcome without
  contact) and ``predicted_effect`` (its expected outcome with the row's action minus that). A control
  row may instead name no action: a *no-contact* row whose ``assignment_probability`` is P(no contact),
  which then stands for the untreated outcome of whatever the candidate gives that customer
  (:func:`pool_controls` turns the holdouts and the customers never planned into such rows; the loop
  does not record P(no contact) yet, :func:`contact_probability` estimates it by re-designing the plan).
* ``candidate``: ``customer_id`` and ``action`` (missing: no contact), optional ``cost`` (per contact;
  default the action's channel cost) and, for :func:`dr`, ``predicted_effect`` of its action.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from campaign_loop.actions import CHANNEL_COST
from ml.decide import action_economics, design_campaign, uplift_column

Method = Literal["ips", "snips", "dr"]
# Matched rows per arm below which an estimate gets no standard error (NaN interval): with a handful of
# matched rows, mostly without a purchase, the sample variance misses the rare heavily weighted buyer and
# the interval is far too narrow. Set on the development seeds of bench/ope_check.py (11-14), not on the
# seeds it reports.
MIN_MATCHED = 30
METHODS: tuple[Method, ...] = ("ips", "snips", "dr")

__all__ = [
    "METHODS", "MIN_MATCHED", "Choice", "Estimate", "Method", "candidate_from_plan", "choose_policy", "compare",
    "contact_probability", "contributions", "dr", "estimate", "ips", "outcome_predictions", "pool_controls", "snips",
]


@dataclass(frozen=True)
class Estimate:
    """An estimate of a candidate's incremental profit (or, from :func:`compare`, of a difference)."""

    method: str
    value: float
    se: float
    low: float
    high: float
    customers: int  # customers the candidate treats (the union of both, for a difference)
    matched: int  # logged rows whose planned action is the candidate's for that customer
    matched_treatment: int
    matched_control: int
    cost: float  # the candidate's contact cost, already subtracted from ``value``
    level: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Inputs


def _treatment(logged: pd.DataFrame) -> np.ndarray:
    if "treatment" in logged:
        return logged["treatment"].astype(int).to_numpy()
    if "arm" in logged:
        arm = logged["arm"].astype(str)
        if not arm.isin(["treatment", "control"]).all():
            raise ValueError(f"arm must be 'treatment' or 'control', got {sorted(set(arm) - {'treatment', 'control'})}")
        return (arm == "treatment").astype(int).to_numpy()
    raise ValueError("logged needs a treatment (1/0) or arm (treatment/control) column")


def _check_logged(logged: pd.DataFrame, outcome: str, needs: Sequence[str] = ()) -> None:
    needed = ["customer_id", "action", "assignment_probability", outcome, *needs]
    if missing := [c for c in needed if c not in logged.columns]:
        raise ValueError(f"logged is missing columns: {missing}")
    if logged["customer_id"].duplicated().any():
        raise ValueError("logged must hold one row per customer (one cycle's plan gives each customer one action); "
                         "estimate each cycle on its own")
    p = logged["assignment_probability"].to_numpy(float)
    if not (np.isfinite(p) & (p > 0) & (p <= 1)).all():
        raise ValueError("assignment_probability must be in (0, 1] on every logged row")
    if logged[outcome].isna().any():
        raise ValueError(f"outcome {outcome!r} has missing values")
    if (logged["action"].isna() & (_treatment(logged) == 1)).any():
        raise ValueError("a treatment row must name its action (only a no-contact row may leave it empty)")


def _candidate(candidate: pd.DataFrame, needs: Sequence[str] = ()) -> pd.DataFrame:
    """The customers the candidate contacts, with their action and contact cost."""
    if missing := [c for c in ("customer_id", "action", *needs) if c not in candidate.columns]:
        raise ValueError(f"candidate is missing columns: {missing}")
    treated = candidate[candidate["action"].notna() & (candidate["action"].astype(str) != "")].copy()
    if treated["customer_id"].duplicated().any():
        raise ValueError("candidate must give each customer at most one action")
    if "cost" not in treated:
        channel = treated["action"].astype(str).str.split("__").str[-1]
        if unknown := sorted(set(channel) - set(CHANNEL_COST)):
            raise ValueError(f"actions on unknown channels {unknown}: give the candidate a cost column")
        treated["cost"] = channel.map(CHANNEL_COST).astype(float)
    return treated.reset_index(drop=True)


def candidate_from_plan(rows: pd.DataFrame) -> pd.DataFrame:
    """A plan's treatment arm as a candidate (``customer_id``, ``action``, ``cost``): the customers it contacts.

    ``rows``: ``CampaignPlan.rows`` or an exported plan (``offer``, ``channel``, ``arm``, ``cost_per_contact``).
    """
    treated = rows[rows["arm"].astype(str) == "treatment"]
    return pd.DataFrame({
        "customer_id": treated["customer_id"].to_numpy(),
        "action": (treated["offer"].astype(str) + "__" + treated["channel"].astype(str)).to_numpy(),
        "cost": treated["cost_per_contact"].astype(float).to_numpy(),
    })


def outcome_predictions(customers: pd.DataFrame, actions: Sequence[Any]) -> tuple[pd.Series, pd.DataFrame]:
    """An outcome model from the decisioning inputs (``p_buy``, ``expected_spend``, ``margin_rate``,
    ``uplift__<action>``), the way :func:`ml.decide.action_economics` values an action.

    Returns (expected margin without contact, per customer; expected margin effect of each action, one
    column per action name, net of the discount every treated buyer redeems), both indexed like ``customers``.
    ``actions``: :class:`campaign_loop.actions.Action` objects (e.g. ``DesignConfig.actions``).
    """
    p = customers["p_buy"].fillna(0).to_numpy(float)
    spend = customers["expected_spend"].fillna(0).to_numpy(float)
    rate = customers["margin_rate"].fillna(0).to_numpy(float)
    uplift = np.nan_to_num(customers[[uplift_column(a) for a in actions]].to_numpy(float))
    econ = action_economics(uplift, p, spend, rate, tuple(actions))
    untreated = pd.Series(p * spend * rate, index=customers.index, name="predicted_untreated")
    effect = pd.DataFrame(econ.margin, index=customers.index, columns=[a.name for a in actions])
    return untreated, effect


def pool_controls(logged: pd.DataFrame, population: pd.DataFrame, *, outcome: str = "margin") -> pd.DataFrame:
    """The logged treatment rows plus one no-contact row for every other customer of ``population``.

    Not contacting a customer is the same action whichever campaign held them out, and most customers were
    not planned at all: their outcomes estimate what the candidate's customers earn untreated, weighted
    by 1 / P(no contact), far more of them and at smaller weights than each action's own holdout.
    ``population``: one row per customer the cycle could have contacted, ``customer_id``, ``outcome``,
    ``p_contacted`` (probability of the treatment arm of any action, e.g. :func:`contact_probability`)
    and, for :func:`dr`, ``predicted_untreated``. The no-contact rows' ``assignment_probability`` is
    ``1 - p_contacted``; rows with none left (contacted for sure) are dropped.
    """
    if missing := [c for c in ("customer_id", outcome, "p_contacted") if c not in population.columns]:
        raise ValueError(f"population is missing columns: {missing}")
    treated = logged[_treatment(logged) == 1].assign(treatment=1)
    rest = population[~population["customer_id"].isin(treated["customer_id"])]
    keep = [c for c in ("customer_id", outcome, "predicted_untreated") if c in rest.columns]
    none = rest[keep].assign(action=None, treatment=0,
                             assignment_probability=1.0 - rest["p_contacted"].astype(float).to_numpy())
    if "predicted_effect" in treated:
        none = none.assign(predicted_effect=0.0)
    none = none[none["assignment_probability"] > 0]
    columns = [c for c in treated.columns if c != "arm"]
    return pd.concat([treated[columns], none.reindex(columns=columns)], ignore_index=True)


def contact_probability(customers: pd.DataFrame, config: Any, replicates: int = 20) -> pd.Series:
    """P(the design puts each customer in the treatment arm of some action), by re-designing the campaign
    (:func:`ml.decide.design_campaign` on the same inputs) under ``replicates`` other seeds: the design is
    a function of its inputs and seed, so this is exact up to Monte Carlo error, budget coupling included.
    Each replicate counts (1 - its holdout share) for every customer it plans. Indexed by ``customer_id``.
    """
    from dataclasses import replace

    if replicates < 1:
        raise ValueError("replicates must be >= 1")
    total = pd.Series(0.0, index=pd.Index(customers["customer_id"].to_numpy(), name="customer_id"))
    for r in range(replicates):
        plan = design_campaign(customers, replace(config, seed=config.seed + 7919 * (r + 1)))
        share = float(plan.summary["holdout"]["share"])
        planned = plan.rows["customer_id"].to_numpy()
        total.loc[planned] += 1.0 - share
    return (total / replicates).rename("p_contacted")


# --------------------------------------------------------------------------------------------------
# Per-customer contributions


def contributions(
    logged: pd.DataFrame, candidate: pd.DataFrame, method: Method = "dr", *, outcome: str = "margin",
) -> pd.DataFrame:
    """One row per customer the candidate treats (index ``customer_id``): ``fixed`` + ``random`` is what the
    customer adds to the estimate, ``fixed`` (the model's effect minus the contact cost) being known given
    the customer and ``random`` the part the assignment and the outcome's noise move; ``matched`` 1 when
    the logged row's planned action is the candidate's, ``treatment`` its arm (NaN unmatched).

    The estimate is ``fixed.sum() + random.sum()``; its variance ``n * var(random)``. For ``snips``
    ``random`` is the linearised (delta-method) contribution, its mean the difference of the arms' means.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    dr_columns = ("predicted_untreated", "predicted_effect") if method == "dr" else ()
    _check_logged(logged, outcome, dr_columns)
    cand = _candidate(candidate, ("predicted_effect",) if method == "dr" else ())
    log = logged.assign(_t=_treatment(logged))
    keep = ["customer_id", "action", "_t", "assignment_probability", outcome, *dr_columns]
    merged = cand.merge(log[keep].rename(columns={"action": "_logged_action"}), on="customer_id", how="left",
                        suffixes=("", "_logged"))
    t = merged["_t"].to_numpy(float)
    # A treatment row matches the candidate's action only; a control row matches it too, or any action
    # when it names none (its probability is then P(no contact)).
    matched = ((merged["_logged_action"].astype(object) == merged["action"].astype(object)).to_numpy(bool)
               | (merged["_logged_action"].isna().to_numpy() & (t == 0)))
    p = merged["assignment_probability"].to_numpy(float)
    y = merged[outcome].to_numpy(float)
    sign = np.where(t == 1, 1.0, -1.0)
    weight = np.where(matched, 1.0 / np.where(matched, p, 1.0), 0.0)
    cost = merged["cost"].to_numpy(float)
    n = len(merged)
    if method == "ips":
        fixed = -cost
        random = np.where(matched, sign * weight * np.nan_to_num(y), 0.0)
    elif method == "snips":
        w1 = np.where(matched & (t == 1), weight, 0.0)
        w0 = np.where(matched & (t == 0), weight, 0.0)
        if w1.sum() == 0 or w0.sum() == 0:
            random = np.full(n, np.nan)  # an arm without a matched row: the ratio has no denominator
        else:
            y0 = np.nan_to_num(y)
            m1, m0 = (w1 * y0).sum() / w1.sum(), (w0 * y0).sum() / w0.sum()
            random = (m1 - m0) + n * (w1 * (y0 - m1) / w1.sum() - w0 * (y0 - m0) / w0.sum())
        fixed = -cost
    else:
        effect = merged["predicted_effect"].to_numpy(float)
        if not np.isfinite(effect).all():
            raise ValueError("candidate's predicted_effect must be finite for every customer it treats")
        # The model's prediction for the logged row's own arm: untreated, plus its action's effect if treated.
        mu = merged["predicted_untreated"].to_numpy(float) + np.where(
            t == 1, merged["predicted_effect_logged"].to_numpy(float), 0.0)
        fixed = effect - cost
        random = np.where(matched, sign * weight * (np.nan_to_num(y) - np.nan_to_num(mu)), 0.0)
    return pd.DataFrame({"fixed": fixed, "random": random, "matched": matched.astype(int),
                         "treatment": np.where(matched, t, np.nan), "cost": cost},
                        index=pd.Index(merged["customer_id"].to_numpy(), name="customer_id"))


def _summarise(method: str, parts: pd.DataFrame, level: float, min_matched: int = MIN_MATCHED) -> Estimate:
    n = len(parts)
    value = float(parts["fixed"].sum(skipna=False) + parts["random"].sum(skipna=False))
    matched = parts["matched"] != 0
    treatment = parts["treatment"]
    # Too few matched rows in an arm: the sample variance says nothing (none matched: exactly 0).
    enough = min(int((matched & (treatment == 1)).sum()), int((matched & (treatment == 0)).sum())) >= min_matched
    se = float(math.sqrt(n * parts["random"].var(ddof=1))) if n > 1 and enough else math.nan
    z = float(norm.ppf(0.5 + level / 2))
    return Estimate(
        method=method, value=value, se=se, low=value - z * se, high=value + z * se,
        customers=n, matched=int(matched.sum()),
        matched_treatment=int((matched & (treatment == 1)).sum()), matched_control=int((matched & (treatment == 0)).sum()),
        cost=float(parts["cost"].sum()), level=level,
    )


def estimate(
    logged: pd.DataFrame, candidate: pd.DataFrame, method: Method = "dr", *, outcome: str = "margin",
    level: float = 0.95, min_matched: int = MIN_MATCHED,
) -> Estimate:
    """The candidate's incremental profit in the logged cycle by ``method`` (see the module docstring).

    Its standard error and interval are NaN when either arm has fewer than ``min_matched`` matched rows."""
    return _summarise(method, contributions(logged, candidate, method, outcome=outcome), level, min_matched)


def ips(logged: pd.DataFrame, candidate: pd.DataFrame, *, outcome: str = "margin", level: float = 0.95,
        min_matched: int = MIN_MATCHED) -> Estimate:
    """Inverse propensity scoring of the candidate's incremental profit."""
    return estimate(logged, candidate, "ips", outcome=outcome, level=level, min_matched=min_matched)


def snips(logged: pd.DataFrame, candidate: pd.DataFrame, *, outcome: str = "margin", level: float = 0.95,
          min_matched: int = MIN_MATCHED) -> Estimate:
    """Self-normalised IPS: per arm, the weighted mean outcome with weights summing to one."""
    return estimate(logged, candidate, "snips", outcome=outcome, level=level, min_matched=min_matched)


def dr(logged: pd.DataFrame, candidate: pd.DataFrame, *, outcome: str = "margin", level: float = 0.95,
       min_matched: int = MIN_MATCHED) -> Estimate:
    """Doubly robust: the model's effects plus the IPS-weighted residuals of the matched rows."""
    return estimate(logged, candidate, "dr", outcome=outcome, level=level, min_matched=min_matched)


def compare(
    logged: pd.DataFrame, first: pd.DataFrame, second: pd.DataFrame, method: Method = "dr", *,
    outcome: str = "margin", level: float = 0.95, min_matched: int = MIN_MATCHED,
) -> Estimate:
    """``first``'s incremental profit minus ``second``'s, paired per customer (over the customers either
    treats): a customer both give the same action adds nothing, so the difference is far more precise
    than the two intervals suggest when the candidates overlap. ``matched`` counts the union's matched rows."""
    a = contributions(logged, first, method, outcome=outcome)
    b = contributions(logged, second, method, outcome=outcome)
    union = a.index.union(b.index)
    a, b = a.reindex(union), b.reindex(union)
    diff = pd.DataFrame({
        "fixed": a["fixed"].fillna(0) - b["fixed"].fillna(0),
        "random": a["random"].fillna(0) - b["random"].fillna(0),
        "matched": ((a["matched"].fillna(0) + b["matched"].fillna(0)) > 0).astype(int),
        "treatment": a["treatment"].fillna(b["treatment"]),
        "cost": a["cost"].fillna(0) - b["cost"].fillna(0),
    }, index=union)
    return _summarise(f"{method} difference", diff, level, min_matched)


# --------------------------------------------------------------------------------------------------
# Choosing a policy


@dataclass(frozen=True)
class Choice:
    """Which candidate :func:`choose_policy` picked, and why."""

    chosen: str
    reason: str
    estimates: dict[str, Estimate]
    versus_incumbent: dict[str, Estimate]  # each challenger minus the incumbent (paired), when there is one


def choose_policy(
    logged: pd.DataFrame, candidates: Mapping[str, pd.DataFrame], *, method: Method = "dr",
    incumbent: str | None = None, outcome: str = "margin", level: float = 0.95, min_matched: int = MIN_MATCHED,
) -> Choice:
    """Pick the candidate with the highest estimated incremental profit in the logged cycle.

    Without an ``incumbent`` the highest estimate wins (ties: the first named). With one, a challenger
    replaces it only if its paired difference to the incumbent (:func:`compare`) is positive at ``level``
    (lower bound above 0); among several such, the one with the largest difference; otherwise the
    incumbent stays. A candidate whose estimate or interval is undefined (an arm with fewer than
    :data:`MIN_MATCHED` matched rows) is never chosen.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if incumbent is not None and incumbent not in candidates:
        raise ValueError(f"incumbent {incumbent!r} is not among the candidates {list(candidates)}")
    estimates = {name: estimate(logged, frame, method, outcome=outcome, level=level, min_matched=min_matched)
                 for name, frame in candidates.items()}
    # A candidate the logs barely cover (an arm with fewer than MIN_MATCHED matched rows) is not chosen.
    defined = {name: e for name, e in estimates.items() if math.isfinite(e.value) and math.isfinite(e.se)}
    if incumbent is None:
        if not defined:
            raise ValueError("no candidate has a defined estimate")
        best = max(defined, key=lambda name: defined[name].value)  # max keeps the first of equal values
        e = defined[best]
        return Choice(best, f"highest {method} estimate: {e.value:,.2f} [{e.low:,.2f}, {e.high:,.2f}]", estimates, {})
    versus = {name: compare(logged, frame, candidates[incumbent], method, outcome=outcome, level=level,
                            min_matched=min_matched)
              for name, frame in candidates.items() if name != incumbent and name in defined}
    better = {name: d for name, d in versus.items() if d.low > 0}
    if not better:
        return Choice(incumbent, f"no challenger beats {incumbent!r} at {level:.0%} (paired {method})", estimates, versus)
    best = max(better, key=lambda name: better[name].value)
    d = better[best]
    return Choice(best, f"beats {incumbent!r} by {d.value:,.2f} [{d.low:,.2f}, {d.high:,.2f}] (paired {method})",
                  estimates, versus)
