"""Data-driven attribution: a first-order Markov chain over the customers' journeys, and each channel's removal
effect, set beside what the randomised holdouts measured each channel to cause.

A journey (``fct_marketing_journeys``) is the channels of a customer's marketing touches in one cycle, in
time order, ending in a conversion or in nothing. The chain's states are ``start``, the channels and the two
absorbing ends; its transition probabilities are the journeys' transition counts, normalised. The
probability of reaching the conversion from ``start`` is the absorbing probability of the chain; removing a
channel sends every journey that reaches it to nothing, and the share of the conversion probability that
is then lost is the channel's *removal effect*. The conversions credited to a channel are the observed
conversions split in proportion to the removal effects (Anderl et al. 2016, "Mapping the customer journey").

Attribution of any kind answers who was on the path, not what the contact caused: a customer who clicks
an e-mail and buys may have bought anyway. :func:`holdout_incrementality` sums, per channel, what the
campaigns' randomised holdouts measured (``kpi_campaign_lift``'s converted lift times the treated members,
with its interval), so the two can be compared channel by channel (``kpi_attribution_vs_incrementality``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
PATH_SEPARATOR = ">"  # between channels in fct_marketing_journeys.path
Z95 = 1.959963984540054
RULES = ("first_touch", "last_touch", "linear", "position")  # the rule-based credits, as the order attribution mart computes them


def parse_path(path: str) -> list[str]:
    """The channels of a journey's ``path`` (``email>sms``), in order; an empty path has none."""
    return [c.strip() for c in str(path).split(PATH_SEPARATOR) if c.strip()]


def transition_counts(journeys: Iterable[tuple[Sequence[str], bool, float]]) -> pd.DataFrame:
    """Counts of every transition ``from -> to`` over ``(channels, converted, weight)`` journeys, ``start``
    first and the conversion or null last; a journey without a channel is skipped."""
    counts: dict[tuple[str, str], float] = {}
    for channels, converted, weight in journeys:
        if not channels:
            continue
        states = [START, *channels, CONVERSION if converted else NULL]
        for a, b in zip(states[:-1], states[1:], strict=True):
            counts[(a, b)] = counts.get((a, b), 0.0) + float(weight)
    return pd.DataFrame([(a, b, n) for (a, b), n in counts.items()], columns=["from_state", "to_state", "count"])


def conversion_probability(counts: pd.DataFrame, removed: str | None = None) -> float:
    """P(reaching the conversion from ``start``) in the chain of ``counts``, with ``removed`` (a channel)
    sending everything that reaches it to null. Solved exactly: ``(I - Q) b = r``."""
    channels = sorted(set(counts["from_state"]) - {START})
    transient = [START, *channels]
    index = {s: i for i, s in enumerate(transient)}
    q = np.zeros((len(transient), len(transient)))
    r = np.zeros(len(transient))
    out = counts.groupby("from_state")["count"].sum()
    for a, b, n in counts.itertuples(index=False):
        p = n / out[a]
        if b == CONVERSION:
            r[index[a]] += p
        elif b != NULL:
            q[index[a], index[b]] += p
    if removed is not None and removed in index:
        q[:, index[removed]] = 0.0  # a step into the removed channel ends the journey in null
        q[index[removed], :] = 0.0
        r[index[removed]] = 0.0
    return float(np.linalg.solve(np.eye(len(transient)) - q, r)[index[START]])


def markov_attribution(journeys: pd.DataFrame) -> pd.DataFrame:
    """One row per channel on any journey: its removal effect, its share of the removal effects, and the
    conversions and revenue credited to it (the observed ones split by that share).

    ``journeys``: ``path`` (channels joined by ``>``), ``converted`` (bool), ``revenue`` (of the conversion;
    0 without one) and optionally ``journeys`` (a count, 1 when absent) per row.
    """
    if missing := [c for c in ("path", "converted", "revenue") if c not in journeys.columns]:
        raise ValueError(f"journeys lack the columns {missing}")
    weight = journeys["journeys"] if "journeys" in journeys else pd.Series(1.0, index=journeys.index)
    rows = [(parse_path(p), bool(c), float(w)) for p, c, w in zip(
        journeys["path"], journeys["converted"], weight, strict=True)]
    counts = transition_counts(rows)
    empty = pd.DataFrame(columns=["channel", "removal_effect", "markov_share", "markov_conversions", "markov_revenue"])
    if counts.empty or not (counts["to_state"] == CONVERSION).any():
        return empty
    base = conversion_probability(counts)
    channels = sorted(set(counts["from_state"]) - {START})
    effect = np.array([1.0 - conversion_probability(counts, c) / base for c in channels])
    share = effect / effect.sum() if effect.sum() > 0 else np.zeros(len(channels))
    converted = journeys["converted"].astype(bool).to_numpy()
    conversions = float((weight.to_numpy(float) * converted).sum())
    revenue = float(journeys["revenue"].fillna(0).to_numpy(float)[converted].sum())
    return pd.DataFrame({"channel": channels, "removal_effect": effect, "markov_share": share,
                         "markov_conversions": share * conversions, "markov_revenue": share * revenue})


def rule_attribution(journeys: pd.DataFrame) -> pd.DataFrame:
    """One row per channel: the converting journeys' conversions credited to it under the four rules of
    the order attribution mart (first touch, last touch, linear, position-based 40/20/40), over the same
    journeys as :func:`markov_attribution`, so every attribution splits the same conversions."""
    credit: dict[str, dict[str, float]] = {}
    weight = journeys["journeys"] if "journeys" in journeys else pd.Series(1.0, index=journeys.index)
    for path, converted, w in zip(journeys["path"], journeys["converted"], weight, strict=True):
        channels = parse_path(path)
        if not converted or not channels:
            continue
        k = len(channels)
        middle = 0.2 / (k - 2) if k > 2 else 0.0
        for i, channel in enumerate(channels):
            row = credit.setdefault(channel, dict.fromkeys(RULES, 0.0))
            row["first_touch"] += w * (i == 0)
            row["last_touch"] += w * (i == k - 1)
            row["linear"] += w / k
            row["position"] += w * (1.0 if k == 1 else 0.5 if k == 2 else 0.4 if i in (0, k - 1) else middle)
    return pd.DataFrame([{"channel": c, **{f"{r}_conversions": v for r, v in row.items()}}
                         for c, row in sorted(credit.items())],
                        columns=["channel", *(f"{r}_conversions" for r in RULES)])


def holdout_incrementality(lift: pd.DataFrame, channels: pd.Series) -> pd.DataFrame:
    """Per channel, the conversions its campaigns caused as their randomised holdouts measured them: the sum
    over campaigns and arms of ``lift x n_arm`` of the ``converted`` metric, with a 95 % interval from the
    arms' own (independent campaigns: variances add), and the campaigns it sums.

    ``lift``: kpi_campaign_lift rows; ``channels``: each campaign's channel, indexed by campaign_id.
    """
    rows = lift[lift["metric"] == "converted"].copy()
    rows["channel"] = rows["campaign_id"].map(channels)
    if unknown := sorted(rows.loc[rows["channel"].isna(), "campaign_id"].unique()):
        raise ValueError(f"kpi_campaign_lift campaigns without a channel in the campaigns: {unknown[:5]}")
    n = rows["n_arm"].astype(float)
    rows["incremental"] = rows["lift"].astype(float) * n
    rows["variance"] = ((rows["lift_ci_high"].astype(float) - rows["lift_ci_low"].astype(float)) / (2 * Z95) * n) ** 2
    out = rows.groupby("channel").agg(
        incremental_conversions=("incremental", "sum"), variance=("variance", "sum"),
        experiments=("campaign_id", "nunique"), treated=("n_arm", "sum"),
    ).reset_index()
    half = Z95 * np.sqrt(out.pop("variance").to_numpy(float))
    out["incremental_ci_low"] = out["incremental_conversions"] - half
    out["incremental_ci_high"] = out["incremental_conversions"] + half
    return out


def attribution_vs_incrementality(markov: pd.DataFrame, rules: pd.DataFrame, incrementality: pd.DataFrame) -> pd.DataFrame:
    """One row per channel: the conversions each attribution credits it (``rules``: channel and
    ``<rule>_conversions`` columns; ``markov``: :func:`markov_attribution`), what the holdouts measured it
    to cause (:func:`holdout_incrementality`), and each attribution's ratio to that measurement, null where
    no experiment measured the channel or it measured at most zero."""
    out = (rules.merge(markov, on="channel", how="outer").merge(incrementality, on="channel", how="outer")
           .sort_values("channel").reset_index(drop=True))
    measured = out["incremental_conversions"].astype(float)
    for rule in (*RULES, "markov"):
        credited = out[f"{rule}_conversions"].astype(float)
        out[f"{rule}_to_incremental"] = np.where(measured > 0, credited / measured.where(measured > 0), math.nan)
    out["markov_within_incremental_ci"] = (
        (out["incremental_ci_low"] <= out["markov_conversions"]) & (out["markov_conversions"] <= out["incremental_ci_high"])
    ).where(out["incremental_conversions"].notna() & out["markov_conversions"].notna())
    return out
