"""Each customer's frequency cap: how many contacts in 30 days are worth sending them, learned from fatigue.

A contact's effect may fade with the contacts before it (fatigue, simulated by world ``d``). The randomised
campaigns measure how much: each send's treatment and control arms, grouped by the customer's marketing
contacts in the 30 days before it (``contacts_before``), give the uplift at each contact count.
Customers contacted more often were chosen more often, for being more responsive, so counts are compared
only among customers planned equally often in those 30 days (``planned_before``, either arm): among them, who
has had fewer contacts is decided by the holdouts' draws, at random.
:func:`fit_fatigue` fits ``uplift(k) = u_m / (1 + rate * k)`` (``u_m`` per planned count ``m``) to those
uplifts, per segment, with ``rate`` shrunk toward the pooled rate (a normal prior of sd
:data:`SEGMENT_PRIOR_SD`) and the pooled rate toward no fatigue (sd :data:`POOLED_PRIOR_SD`): noisy holdouts
must show fatigue before it closes anyone.

:func:`frequency_caps` turns the fitted rate into each customer's cap. The scorer's uplifts describe a
customer at the average fatigue of the sends it learned from, so the uplift after ``k`` contacts is theirs
times ``(1 / (1 + rate * k)) / mean_factor``. A customer's cap is one more than the largest ``k`` at which
their best action is still worth its cost (``ml.decide.economics``), at most the global ``contact_cap``. The
cost is the budget's too: under a binding budget a contact must earn ``multiplier`` x its cost, the budget's
shadow price in the plan designed without the own caps (:func:`with_frequency_caps`), since the budget a
fatigued customer's contact spends would buy a fresh customer's. A customer whose best action is not worth
that even unfatigued keeps the global cap: the optimiser skips them already, and fatigue is not why. With no
fatigue (rate 0) every cap is the global one.

Settings ``frequency_cap``: ``global`` (the default: the global ``contact_cap`` only) or ``customer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml import features
from ml.decide import DesignConfig, design_campaign
from ml.decide.economics import ScoredCustomers, action_economics
from ml.features import WarehouseLike

SEND_COLUMNS: tuple[str, ...] = ("customer_id", "segment", "planned_before", "contacts_before", "is_treatment",
                                 "is_converted")
POOLED = "all"
TOP_COUNT = 3  # contact counts of 3 and more share one group: few sends have more
RATES = np.linspace(0.0, 4.0, 161)  # the grid the rate is fitted on; 4 = an effect a fifth as large after one contact
# Priors on the rate. Pooled: centred on no fatigue, so that world a (none) keeps the global cap. Per segment:
# centred on the pooled rate, so a segment's few holdout members move it only as far as they can tell.
POOLED_PRIOR_SD = 1.0
SEGMENT_PRIOR_SD = 0.5
MIN_ARM = 20  # sends per arm and contact count below which a count's uplift is not used


@dataclass(frozen=True)
class Fatigue:
    """Fitted fatigue: per segment, the rate of ``uplift(k) = u / (1 + rate * k)`` and the mean factor
    ``1 / (1 + rate * k)`` over the segment's treated sends (the fatigue the scorer's uplifts already carry)."""

    rate: dict[str, float] = field(default_factory=dict)
    mean_factor: dict[str, float] = field(default_factory=dict)
    sends: dict[str, int] = field(default_factory=dict)

    def rates(self, segment: np.ndarray) -> np.ndarray:
        pooled = self.rate.get(POOLED, 0.0)
        return np.array([self.rate.get(str(s), pooled) for s in segment], dtype=float)

    def relative_response(self, segment: np.ndarray, contacts: np.ndarray | float) -> np.ndarray:
        """The uplift after ``contacts`` contacts relative to the scorer's (the training sends' average)."""
        pooled = self.mean_factor.get(POOLED, 1.0)
        mean = np.array([self.mean_factor.get(str(s), pooled) for s in segment], dtype=float)
        return 1.0 / (1.0 + self.rates(segment) * np.asarray(contacts, dtype=float)) / np.maximum(mean, 1e-9)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {"rate": dict(self.rate), "mean_factor": dict(self.mean_factor), "sends": dict(self.sends)}


def count_uplifts(sends: pd.DataFrame) -> pd.DataFrame:
    """Per planned count ``m`` and contact count ``k`` (each 3 and more pooled): the mean ``k`` of the treated,
    the uplift in conversion and its variance."""
    frame = pd.DataFrame({"m": np.minimum(sends["planned_before"].to_numpy(float), TOP_COUNT),
                          "k": np.minimum(sends["contacts_before"].to_numpy(float), TOP_COUNT),
                          "raw_k": sends["contacts_before"].to_numpy(float),
                          "t": sends["is_treatment"].to_numpy(bool), "y": sends["is_converted"].to_numpy(float)})
    rows = []
    for (planned, count), group in frame.groupby(["m", "k"]):
        treated, control = group[group["t"]], group[~group["t"]]
        if len(treated) < MIN_ARM or len(control) < MIN_ARM:
            continue
        p_t, p_c = treated["y"].mean(), control["y"].mean()
        # The pooled rate keeps a count whose arms bought nothing from a zero variance.
        p = max(group["y"].mean(), 0.5 / len(group))
        rows.append({"m": planned, "k": count, "mean_k": treated["raw_k"].mean(), "uplift": p_t - p_c,
                     "variance": p * (1 - p) * (1 / len(treated) + 1 / len(control))})
    return pd.DataFrame(rows, columns=["m", "k", "mean_k", "uplift", "variance"])


def fit_rate(counts: pd.DataFrame, prior_mean: float, prior_sd: float) -> float:
    """The posterior mode of the rate on :data:`RATES`: weighted least squares of the uplifts on
    ``u_m / (1 + rate * k)`` (each ``u_m`` profiled out) plus the normal prior. Where no planned count has two
    contact counts, or no positive effect to fade, the data say nothing and the prior mean stands."""
    loss = 0.5 * ((RATES - prior_mean) / prior_sd) ** 2
    informative = False
    for _, group in counts.groupby("m"):
        if len(group) < 2:
            continue
        y, w = group["uplift"].to_numpy(float), 1.0 / group["variance"].to_numpy(float)
        x = 1.0 / (1.0 + RATES[:, None] * group["mean_k"].to_numpy(float)[None, :])  # (rates, counts)
        u = (x * y * w).sum(axis=1) / (x * x * w).sum(axis=1)
        if (u <= 0).all():
            continue
        # A negative u_m (an effect that grows with contacts) says nothing about fading: u_m = 0 then.
        u = np.maximum(u, 0.0)
        loss = loss + 0.5 * (((y - u[:, None] * x) ** 2) * w).sum(axis=1)
        informative = True
    return float(RATES[int(np.argmin(loss))]) if informative else prior_mean


def fit_fatigue(sends: pd.DataFrame) -> Fatigue:
    """:class:`Fatigue` from randomised sends (one row per send, :data:`SEND_COLUMNS`)."""
    if missing := [c for c in SEND_COLUMNS if c not in sends.columns]:
        raise ValueError(f"sends lack the columns {missing}")
    sends = sends.dropna(subset=["planned_before", "contacts_before", "is_treatment", "is_converted"])
    pooled = fit_rate(count_uplifts(sends), 0.0, POOLED_PRIOR_SD)
    groups = [(POOLED, sends, pooled)]
    groups += [(str(s), g, fit_rate(count_uplifts(g), pooled, SEGMENT_PRIOR_SD))
               for s, g in sends.groupby(sends["segment"].astype(str))]
    rate, mean_factor, counts = {}, {}, {}
    for name, group, r in groups:
        treated = group.loc[group["is_treatment"].astype(bool), "contacts_before"].to_numpy(float)
        rate[name] = r
        mean_factor[name] = float(np.mean(1.0 / (1.0 + r * treated))) if len(treated) else 1.0
        counts[name] = len(group)
    return Fatigue(rate=rate, mean_factor=mean_factor, sends=counts)


def frequency_caps(customers: pd.DataFrame, fatigue: Fatigue, config: DesignConfig,
                   multiplier: float = 0.0) -> np.ndarray:
    """Each customer's cap (contacts in 30 days, the next one included), row for row with ``customers``:
    one more than the largest ``k < contact_cap`` at which their best action, its uplift faded to ``k``
    contacts, is still worth its cost (value > ``multiplier`` x cost); ``contact_cap`` where even the unfatigued
    best action is not."""
    scored = ScoredCustomers.read(customers.reset_index(drop=True), config)
    segment = scored.frame["segment"].astype(str).to_numpy()
    uplift = np.nan_to_num(scored.uplift)
    worth = np.zeros((len(segment), config.contact_cap), dtype=bool)
    for k in range(config.contact_cap):
        faded = uplift * fatigue.relative_response(segment, k)[:, None]
        econ = action_economics(faded, np.nan_to_num(scored.p_buy), np.nan_to_num(scored.spend),
                                np.nan_to_num(scored.margin_rate), scored.actions, scored.retained)
        worth[:, k] = (econ.value - multiplier * econ.cost > 0).any(axis=1) if econ.value.shape[1] else False
    # worth falls with k (the rate is >= 0), so the first k not worth it is the cap.
    first_not = np.where(worth.all(axis=1), config.contact_cap, np.argmin(worth, axis=1))
    return np.where(worth[:, 0], np.maximum(first_not, 1), config.contact_cap).astype(np.int64)


def with_frequency_caps(customers: pd.DataFrame, fatigue: Fatigue, config: DesignConfig) -> pd.DataFrame:
    """``customers`` with ``frequency_cap`` (:func:`frequency_caps`), which ``ml.decide`` enforces, at the budget
    multiplier of the plan designed without it (0 where the budget does not bind)."""
    multiplier = float(design_campaign(customers, config).summary["total_multiplier"])
    return customers.assign(frequency_cap=frequency_caps(customers, fatigue, config, max(multiplier, 0.0)))


def warehouse_sends(warehouse: WarehouseLike, schema: str = "published") -> pd.DataFrame:
    """:data:`SEND_COLUMNS` of ``<schema>.fct_fatigue_rows``: each randomised send with the customer's RFM segment at
    the campaign's as-of date and their randomised assignments (either arm) and contacts of the 30 days before it."""
    frame = features.read(warehouse, "fct_fatigue_rows", list(SEND_COLUMNS), schema)
    return frame.astype({"planned_before": "int64", "contacts_before": "int64", "is_treatment": bool, "is_converted": bool, "segment": str})
