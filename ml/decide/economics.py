"""What each action is expected to earn and cost on each customer, and the customers the design reads it from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from campaign_loop.actions import Action
from ml.decide.catalogue import discount_per_order, uplift_column
from ml.decide.config import DesignConfig


@dataclass(frozen=True)
class Economics:
    value: np.ndarray  # (n, a) expected incremental margin minus contact cost, plus retained value
    cost: np.ndarray  # (n, a) contact cost + expected discount cost
    margin: np.ndarray  # (n, a) expected incremental margin (before contact cost)
    revenue: np.ndarray  # (n, a) expected incremental revenue net of discounts
    retained: np.ndarray  # (n, a) expected future margin a delivered action keeps (0 at a one-cycle horizon)

    def take(self, rows: np.ndarray) -> Economics:
        """The same economics for ``rows`` (indices), in that order."""
        return Economics(value=self.value[rows], cost=self.cost[rows], margin=self.margin[rows],
                         revenue=self.revenue[rows], retained=self.retained[rows])


def retained_value(p_churn: np.ndarray, clv_52w: np.ndarray, margin_rate: np.ndarray, retention_effect: float,
                   value_horizon_weeks: int) -> np.ndarray:
    """Expected future margin a delivered action keeps, per customer: P(churn) x retention_effect x CLV x margin
    rate, the 52-week CLV scaled to the horizon (linear: a rough cut for horizons other than 52 weeks).

    0 at ``value_horizon_weeks`` 0 (this cycle's value only), and where P(churn) or CLV is unknown (NaN): a
    customer the models know nothing of is not worth a retention offer.
    """
    if value_horizon_weeks <= 0 or retention_effect <= 0:
        return np.zeros(len(p_churn))
    future = np.nan_to_num(clv_52w) * (value_horizon_weeks / 52.0) * np.nan_to_num(margin_rate)
    return np.clip(np.nan_to_num(p_churn), 0.0, 1.0) * retention_effect * np.maximum(future, 0.0)


def action_economics(
    uplift: np.ndarray, p_buy: np.ndarray, spend: np.ndarray, margin_rate: np.ndarray, actions: tuple[Action, ...],
    retained: np.ndarray | None = None,
) -> Economics:
    """Per customer x action: value = u*m - k - d*(p + u) + r, cost = k + d*(p + u).

    u uplift, m = spend*margin_rate, k contact cost, d discount per order, r the future margin a contact
    keeps (``retained``, per customer, :func:`retained_value`; none by default). The discount is counted on
    every purchase made with the offer: the baseline buyers' (given away) and the incremental ones.
    Every buyer is assumed to redeem, which is conservative.
    """
    p = p_buy[:, None]
    s = spend[:, None]
    # A probability cannot leave [0, 1] whatever the uplift model says.
    p_treated = np.clip(p + uplift, 0.0, 1.0)
    u = p_treated - p
    discount = np.column_stack([discount_per_order(a.offer, spend) for a in actions]) if actions else np.zeros((len(p), 0))
    contact = np.array([a.cost_per_contact for a in actions])[None, :]
    margin = u * s * margin_rate[:, None] - p_treated * discount
    revenue = u * s - p_treated * discount
    kept = np.zeros(u.shape) if retained is None else np.broadcast_to(retained[:, None], u.shape)
    return Economics(value=margin - contact + kept, cost=contact + p_treated * discount, margin=margin,
                     revenue=revenue, retained=kept)


@dataclass(frozen=True)
class ScoredCustomers:
    """The customers of one design, row for row with what the models say about them and each action."""

    frame: pd.DataFrame  # the input rows, index 0..n-1
    actions: tuple[Action, ...]
    action_channel: np.ndarray  # (a,) each action's channel, as an index into the config's channels
    p_buy: np.ndarray  # (n,) as given: NaN where unknown
    spend: np.ndarray  # (n,) expected spend per order
    margin_rate: np.ndarray  # (n,)
    uplift: np.ndarray  # (n, a) NaN where the uplift model has no estimate
    econ: Economics  # (n, a) with unknowns counted as 0
    retained: np.ndarray  # (n,) future margin a contact keeps, retained_value (0 at a one-cycle horizon)

    @classmethod
    def read(cls, frame: pd.DataFrame, config: DesignConfig) -> ScoredCustomers:
        """``frame``'s rows (reindexed 0..n-1 by the caller) with the economics of every action of ``config``."""
        actions = config.actions
        action_channel = np.array([config.channels.index(a.channel) for a in actions], dtype=np.int64)
        p_buy, spend, margin_rate = (frame[c].to_numpy(float) for c in ("p_buy", "expected_spend", "margin_rate"))
        uplift = frame[[uplift_column(a) for a in actions]].to_numpy(float).reshape(len(frame), len(actions))
        retained = np.zeros(len(frame))
        if config.value_horizon_weeks > 0:
            retained = retained_value(frame["p_churn"].to_numpy(float), frame["clv_52w"].to_numpy(float), margin_rate,
                                      config.retention_effect, config.value_horizon_weeks)
        econ = action_economics(np.nan_to_num(uplift), np.nan_to_num(p_buy), np.nan_to_num(spend),
                                np.nan_to_num(margin_rate), actions, retained)
        return cls(frame=frame, actions=actions, action_channel=action_channel, p_buy=p_buy, spend=spend,
                   margin_rate=margin_rate, uplift=uplift, econ=econ, retained=retained)

    def take(self, rows: np.ndarray) -> ScoredCustomers:
        """The same customers reordered (or selected) by ``rows``, reindexed 0..len(rows)-1."""
        return ScoredCustomers(
            frame=self.frame.iloc[rows].reset_index(drop=True), actions=self.actions, action_channel=self.action_channel,
            p_buy=self.p_buy[rows], spend=self.spend[rows], margin_rate=self.margin_rate[rows], uplift=self.uplift[rows],
            econ=self.econ.take(rows), retained=self.retained[rows])
