"""Plans a marketer would make from the campaigns' measured results, under the design's rules.

What an A/B report alone supports: each action's newest measured lift (:func:`measured_lift`), the single best
action to everyone reachable (:func:`best_action_plan`), and the likeliest buyers each given the best-measured
action they can receive (:func:`propensity_best_offer_plan`). The loop weighs them against its own design by
off-policy evaluation (``ml.policy_choice``); the benchmarks run them as baselines (``ml.policies``). They read
no simulator truth, so they belong here, below both.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from campaign_loop.actions import CHANNEL_COST
from ml.decide.config import CampaignPlan, DesignConfig
from ml.decide.design import plan_from_choice


def measured_lift(sends: pd.DataFrame, by: Sequence[str] = ("action",), newest_only: bool = True) -> pd.DataFrame:
    """Each group's measured lift from randomised sends (``treatment`` 0/1, ``is_converted``, ``margin``).

    Rows: one per group with both arms (``sends`` carry ``action``, ``<offer>__<channel>``, and ``by``'s
    columns). ``lift`` is the conversion difference, ``margin_lift`` the mean
    margin difference (the offer's discount is already off the margin) and ``value_per_contact`` the
    margin lift net of the action's contact cost: what one more send of it earned. ``newest_only``: per
    group, only its newest cycle (``as_of_date``) with both arms, "the last campaign".
    """
    columns = [*by, "n_treatment", "n_control", "lift", "margin_lift", "value_per_contact"]
    if sends.empty:
        return pd.DataFrame(columns=columns).set_index(list(by))
    frame = sends
    if newest_only:
        both = frame.groupby([*by, "as_of_date"])["treatment"].agg(lambda t: t.nunique() == 2)
        newest = both[both].reset_index().groupby(list(by))["as_of_date"].max()
        key = pd.MultiIndex.from_frame(frame[list(by)]) if len(by) > 1 else pd.Index(frame[by[0]])
        frame = frame[frame["as_of_date"].to_numpy() == newest.reindex(key).to_numpy()]
    arms = frame.groupby([*by, "treatment"]).agg(n=("is_converted", "size"), conversion=("is_converted", "mean"),
                                                 margin=("margin", "mean")).unstack("treatment")
    arms = arms.dropna(subset=[("n", 0), ("n", 1)])
    out = pd.DataFrame({
        "n_treatment": arms[("n", 1)].astype(int), "n_control": arms[("n", 0)].astype(int),
        "lift": arms[("conversion", 1)] - arms[("conversion", 0)],
        "margin_lift": arms[("margin", 1)] - arms[("margin", 0)],
    }, index=arms.index)
    treated = frame[frame["treatment"] == 1]
    cost = treated["action"].astype(str).str.split("__").str[-1].map(CHANNEL_COST)
    out["value_per_contact"] = out["margin_lift"] - cost.groupby([treated[b] for b in by]).mean().reindex(out.index)
    return out


def _with_measured_uplift(customers: pd.DataFrame, effects: pd.DataFrame, config: DesignConfig) -> pd.DataFrame:
    """``uplift__<action>`` = the action's measured conversion lift (0 unmeasured), for the plan's cost estimate."""
    lift = effects["lift"] if "lift" in effects else pd.Series(dtype=float)
    return customers.assign(**{f"uplift__{a.name}": float(max(lift.get(a.name, 0.0), 0.0)) for a in config.actions})


def best_action_plan(customers: pd.DataFrame, effects: pd.DataFrame, config: DesignConfig) -> CampaignPlan:
    """The single action of highest measured ``value_per_contact`` to everyone reachable on its channel (in a
    random order, until the budget ends); no campaign when no action's measured value is positive."""
    rng = np.random.default_rng([config.seed, zlib.crc32(f"best_action:{config.cycle_id}".encode())])
    known = effects[effects.index.isin([a.name for a in config.actions])]
    chosen = pd.Series(None, index=customers.index, dtype=object)
    if len(known) and known["value_per_contact"].max() > 0:
        best = str(known["value_per_contact"].idxmax())
        chosen[:] = best  # plan_from_choice drops whoever did not consent to its channel
    order = rng.permutation(len(customers))
    priced = _with_measured_uplift(customers, known, config)
    return plan_from_choice(priced.iloc[order], chosen.iloc[order], config)


def _best_allowed(customers: pd.DataFrame, ranked: list[str], config: DesignConfig) -> pd.Series:
    """Each customer's first action of ``ranked`` on a channel they consented to (None if none)."""
    chosen = pd.Series(None, index=customers.index, dtype=object)
    for name in reversed(ranked):  # the best one written last wins
        channel = name.split("__")[-1]
        consent = customers[f"consent_{channel}"].fillna(False).to_numpy(bool) if channel in config.channels else False
        chosen[consent] = name
    return chosen


def propensity_best_offer_plan(customers: pd.DataFrame, effects: pd.DataFrame, config: DesignConfig) -> CampaignPlan:
    """The likeliest buyers first, each given the best-measured action (positive value) they can receive."""
    known = effects[effects.index.isin([a.name for a in config.actions]) & (effects["value_per_contact"] > 0)]
    ranked = list(known.sort_values("value_per_contact", ascending=False).index.astype(str))
    key = pd.DataFrame({"p": -customers["p_buy"].fillna(0).to_numpy(float),
                        "id": customers["customer_id"].astype(str).to_numpy()})
    order = np.lexsort((key["id"], key["p"]))
    chosen = _best_allowed(customers, ranked, config)
    return plan_from_choice(_with_measured_uplift(customers, known, config).iloc[order], chosen.iloc[order], config)
