"""What a design depends on (:class:`DesignConfig`), what it produces (:class:`CampaignPlan`), and its random
streams."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from campaign_loop.actions import CHANNEL_COST, OFFERS, Action
from campaign_loop.config import CHANNELS, Settings
from ml.decide.catalogue import action_catalogue


@dataclass(frozen=True)
class DesignConfig:
    """Everything the design depends on; with the same input rows, the same config gives the same plan."""

    cycle_id: str
    budget: float
    channel_budgets: Mapping[str, float] = field(default_factory=dict)
    holdout_share: float = 0.1  # floor; the power calculation may ask for more
    holdout_share_max: float = 0.5  # beyond half, a bigger holdout no longer shrinks the variance
    min_detectable_lift: float = 0.01  # absolute, in purchase probability (0.01 = one point)
    alpha: float = 0.05
    power: float = 0.8
    contact_cap: int = 4  # max marketing contacts in 30 days, this one included
    offers: tuple[str, ...] = tuple(OFFERS)
    channels: tuple[str, ...] = CHANNELS
    # auto: Thompson sampling when the input carries uplift_sd__<offer>__<channel> (the scorer's measured
    # uncertainty), epsilon-greedy otherwise.
    exploration: Literal["epsilon", "thompson", "auto"] = "auto"
    epsilon: float = 0.05
    thompson_uplift_sd: float = 0.01  # used when the input has no uplift_sd__<offer>__<channel> columns
    # Multiplies each action's posterior standard deviation before the draw. Drawn per customer, the full
    # posterior (1) gives each customer an action other than the best as often as the posterior allows, which
    # tens of thousands of customers a cycle do not need to keep every action measured: 0.25 earned 0.04-0.09
    # of the oracle more per cycle at 100k, and more in four of five cycles in the 20k demo world.
    # bench/RESULTS.md, "Exploration in the closed loop".
    thompson_scale: float = 0.25
    # Standard errors of its measured effect subtracted from each uplift before exploitation values an action
    # (ml.decide.exploration.exploit_uplift): 0 acts on the mean. bench/RESULTS.md, "Pessimism in the loop".
    uplift_pessimism: float = 0.0
    thompson_draws: int = 64  # Monte Carlo draws that estimate Thompson assignment probabilities
    seed: int = 0
    timezone: str = "Asia/Seoul"  # the retailer's local time, in which SEND_TIME's hours are read
    # A member without a consent record on a channel (consent_<channel> missing) counts as opted in, not
    # out: for a retailer that exports no consents. A recorded opt-out always holds.
    assume_consent: bool = False
    send_date: date | None = None  # defaults to the cycle's first day, parsed from cycle_id
    # Local hours a marketing message may go out in, [start, end): Korea's Network Act forbids advertising
    # messages from 21:00 to 08:00 without a separate consent. A customer's send_hour (ml.send_time) outside
    # it, or the channel's usual hour, is moved to its nearest edge.
    send_window: tuple[int, int] = (8, 21)
    # Weeks of future value an action is credited with (ml.decide.economics.retained_value): 0 values this
    # cycle's margin only; 52 adds P(churn) x retention_effect x the 52-week CLV, which needs the input's
    # p_churn and clv_52w (bench/RESULTS.md, "LTV-based allocation").
    value_horizon_weeks: int = 0
    retention_effect: float = 0.2  # share of a customer's P(churn) a delivered action removes (an assumption)

    def __post_init__(self) -> None:
        # Read-only copy so the frozen config cannot be changed through the caller's dict.
        object.__setattr__(self, "channel_budgets", MappingProxyType(dict(self.channel_budgets)))
        if self.budget < 0:
            raise ValueError("budget must be >= 0")
        if any(v < 0 for v in self.channel_budgets.values()):
            raise ValueError("channel budgets must be >= 0")
        if unknown := set(self.channels) - set(CHANNEL_COST):
            raise ValueError(f"unknown channels: {sorted(unknown)}")
        if not self.channels:
            raise ValueError("channels is empty: enable at least one channel")
        if unknown := set(self.channel_budgets) - set(self.channels):
            raise ValueError(f"channel budgets for channels not enabled ({', '.join(self.channels)}): {sorted(unknown)}")
        if unknown := set(self.offers) - set(OFFERS):
            raise ValueError(f"unknown offers: {sorted(unknown)}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        # 5% is the floor the measurement needs whatever a caller asks for.
        if not 0.05 <= self.holdout_share <= self.holdout_share_max <= 0.5:
            raise ValueError("need 0.05 <= holdout_share <= holdout_share_max <= 0.5")
        rules = {
            "alpha": 0 < self.alpha < 1, "power": 0 < self.power < 1, "min_detectable_lift": self.min_detectable_lift > 0,
            "epsilon": 0 <= self.epsilon < 1, "contact_cap": self.contact_cap >= 1, "thompson_draws": self.thompson_draws >= 1,
            "thompson_uplift_sd": self.thompson_uplift_sd >= 0, "thompson_scale": self.thompson_scale >= 0,
            "uplift_pessimism": self.uplift_pessimism >= 0,
            "value_horizon_weeks": self.value_horizon_weeks >= 0, "retention_effect": 0 <= self.retention_effect <= 1,
        }
        if broken := [name for name, ok in rules.items() if not ok]:
            raise ValueError("out of range: " + ", ".join(f"{name}={getattr(self, name)!r}" for name in broken)
                             + " (need 0 < alpha, power < 1; min_detectable_lift > 0; 0 <= epsilon < 1; contact_cap, "
                             "thompson_draws >= 1; thompson_uplift_sd, thompson_scale, uplift_pessimism, "
                             "value_horizon_weeks >= 0; "
                             "0 <= retention_effect <= 1)")
        if self.exploration not in ("epsilon", "thompson", "auto"):
            raise ValueError(f"unknown exploration {self.exploration!r}")
        if not 0 <= self.send_window[0] < self.send_window[1] <= 24:
            raise ValueError(f"send_window {self.send_window} is not a non-empty range of local hours in 0..24")
        if self.send_date is None:
            object.__setattr__(self, "send_date", date.fromisoformat(self.cycle_id))

    @classmethod
    def from_settings(cls, settings: Settings, cycle_id: str, **overrides: Any) -> DesignConfig:
        """The design config of a cycle: budgets, offers, channels, consent rule, time zone, holdout floor and
        detectable lift, contact cap, exploration and seed from Settings, the rest overridable."""
        values: dict[str, Any] = {
            "budget": settings.budget, "channel_budgets": dict(settings.channel_budgets),
            "offers": tuple(settings.offers), "channels": tuple(settings.channels),
            "assume_consent": settings.assume_consent, "timezone": settings.timezone,
            "holdout_share": settings.holdout_share,
            "min_detectable_lift": settings.min_detectable_lift, "contact_cap": settings.contact_cap, "seed": settings.seed,
            "exploration": settings.exploration, "epsilon": settings.epsilon, "thompson_scale": settings.thompson_scale,
            "uplift_pessimism": settings.uplift_pessimism,
            "send_window": (settings.send_window_start, settings.send_window_end),
            "value_horizon_weeks": settings.value_horizon_weeks, "retention_effect": settings.retention_effect,
        }
        values.update(overrides)
        return cls(cycle_id=cycle_id, **values)

    @property
    def actions(self) -> tuple[Action, ...]:
        return action_catalogue(self.offers, self.channels)

    @property
    def channel_budget_vector(self) -> np.ndarray:
        """``channel_budgets`` in ``channels`` order, +inf where a channel has no budget of its own."""
        return np.array([self.channel_budgets.get(c, math.inf) for c in self.channels], dtype=float)


@dataclass(frozen=True)
class CampaignPlan:
    """One row per customer given an action (treatment and control arms); ``summary`` is JSON-able."""

    cycle_id: str
    rows: pd.DataFrame
    summary: dict[str, Any]


def random_stream(config: DesignConfig, purpose: str) -> np.random.Generator:
    """The random stream of one decision of the design (exploration, Thompson's draw, its probabilities,
    the holdout). The cycle enters the seed so successive cycles do not reuse a stream; the purpose, so
    that one decision's draws do not depend on how many another consumed: closing a few customers'
    channels once moved Thompson's draw for the whole campaign (bench/RESULTS.md, "Loop value")."""
    return np.random.default_rng(np.random.SeedSequence(
        [config.seed, zlib.crc32(config.cycle_id.encode()), zlib.crc32(purpose.encode())]))
