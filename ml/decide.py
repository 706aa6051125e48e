"""Design the next campaign from the models' predictions.

Given one row per eligible customer (consent, contact history, segment) and the models' outputs
(uplift per action, baseline purchase probability, expected spend, margin rate), choose at most one
action (offer x channel) per customer that maximises expected incremental margin under the budget,
then randomise a holdout sized by a power calculation and an exploration share so that the next cycle
can measure the campaign and keep learning every action. ``docs/decisioning.md`` explains the maths.

Entry point: :func:`design_campaign` (``customers`` DataFrame + :class:`DesignConfig` -> :class:`CampaignPlan`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from scipy.stats import norm

from campaign_loop.actions import CHANNEL_COST, OFFERS, Action, Offer
from campaign_loop.config import CHANNELS, Settings

# --------------------------------------------------------------------------------------------------
# The action catalogue lives in campaign_loop.actions (shared with the simulator); here only what
# decisioning adds: where each action's uplift is found, what its offer gives away, when it is sent.

# Local send hours, in the retailer's time zone (Settings ``timezone``): inside 08:00-21:00, the window in
# which Korean law (Network Act art. 50) allows advertising messages without a separate night-time consent
# (the US TCPA's telemarketing hours are the same, 8 a.m. to 9 p.m. at the recipient's), at each channel's
# usual engagement peak.
SEND_TIME: Mapping[str, time] = MappingProxyType({
    "email": time(9, 0), "push": time(19, 0), "sms": time(11, 0), "kakao": time(12, 0),
})


def uplift_column(action: Action) -> str:
    """The input column holding the uplift model's prediction for ``action``."""
    return f"uplift__{action.name}"


def discount_per_order(offer: Offer, spend: np.ndarray) -> np.ndarray:
    """Discount ``offer`` grants on an order of ``spend``, in currency.

    free_shipping has no value in the catalogue yet, so it is counted as free (0) until it has one.
    """
    if offer.offer_type == "percent_off":
        return spend * (offer.offer_value / 100.0)
    if offer.offer_type == "amount_off":
        return np.minimum(offer.offer_value, spend)
    return np.zeros_like(spend, dtype=float)


def action_catalogue(offers: tuple[str, ...] = tuple(OFFERS), channels: tuple[str, ...] = CHANNELS) -> tuple[Action, ...]:
    """Every allowed offer x channel, offer-major; 'no contact' is implicit (index -1)."""
    return tuple(Action(OFFERS[o], c) for o in offers for c in channels)


NO_CONTACT = -1
BASE_COLUMNS: tuple[str, ...] = (
    "customer_id", "member_id", "unsubscribed_recently", "contacts_last_30d", "segment",
    "p_buy", "expected_spend", "margin_rate",
)


# --------------------------------------------------------------------------------------------------
# Configuration and output


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
    thompson_draws: int = 64  # Monte Carlo draws that estimate Thompson assignment probabilities
    seed: int = 0
    timezone: str = "Asia/Seoul"  # the retailer's local time, in which SEND_TIME's hours are read
    # A member without a consent record on a channel (consent_<channel> missing) counts as opted in, not
    # out: for a retailer that exports no consents. A recorded opt-out always holds.
    assume_consent: bool = False
    send_date: date | None = None  # defaults to the cycle's first day, parsed from cycle_id

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
        }
        if broken := [name for name, ok in rules.items() if not ok]:
            raise ValueError("out of range: " + ", ".join(f"{name}={getattr(self, name)!r}" for name in broken)
                             + " (need 0 < alpha, power < 1; min_detectable_lift > 0; 0 <= epsilon < 1; contact_cap, "
                             "thompson_draws >= 1; thompson_uplift_sd, thompson_scale >= 0)")
        if self.exploration not in ("epsilon", "thompson", "auto"):
            raise ValueError(f"unknown exploration {self.exploration!r}")
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




# --------------------------------------------------------------------------------------------------
# Economics


@dataclass(frozen=True)
class _Economics:
    value: np.ndarray  # (n, a) expected incremental margin minus contact cost
    cost: np.ndarray  # (n, a) contact cost + expected discount cost
    margin: np.ndarray  # (n, a) expected incremental margin (before contact cost)
    revenue: np.ndarray  # (n, a) expected incremental revenue net of discounts


def action_economics(
    uplift: np.ndarray, p_buy: np.ndarray, spend: np.ndarray, margin_rate: np.ndarray, actions: tuple[Action, ...]
) -> _Economics:
    """Per customer x action: value = u*m - k - d*(p + u), cost = k + d*(p + u).

    u uplift, m = spend*margin_rate, k contact cost, d discount per order. The discount is counted on
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
    return _Economics(value=margin - contact, cost=contact + p_treated * discount, margin=margin, revenue=revenue)


# --------------------------------------------------------------------------------------------------
# Optimisation: Lagrangian relaxation of the budgets, bisection on the multipliers, greedy repair + fill.


def _choose(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Each customer's best action by reduced value value - penalty*cost, or NO_CONTACT if none is positive."""
    reduced = np.where(allowed, value - cost * penalty[None, :], -np.inf)
    best = reduced.argmax(axis=1)
    positive = np.take_along_axis(reduced, best[:, None], axis=1)[:, 0] > 0
    return np.where(positive, best, NO_CONTACT)


def _spend(choice: np.ndarray, cost: np.ndarray, action_channel: np.ndarray, n_channels: int) -> tuple[float, np.ndarray]:
    rows = np.flatnonzero(choice >= 0)
    spent = cost[rows, choice[rows]]
    return float(spent.sum()), np.bincount(action_channel[choice[rows]], weights=spent, minlength=n_channels)


def _bisect(feasible_at: Any, upper: float, iterations: int = 48) -> float:
    """Smallest multiplier in [0, upper] at which ``feasible_at`` holds (it holds at ``upper``)."""
    if feasible_at(0.0):
        return 0.0
    lo, hi = 0.0, upper
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if feasible_at(mid):
            hi = mid
        else:
            lo = mid
        # The greedy fill spends what a coarser multiplier leaves over, so 1e-7 of the range is plenty.
        if hi - lo <= 1e-7 * upper:
            break
    return hi  # the feasible side, so the relaxed solution already respects the budget


def _optimise(
    value: np.ndarray,
    cost: np.ndarray,
    allowed: np.ndarray,
    action_channel: np.ndarray,
    budget: float,
    channel_budgets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose <= 1 positive-value action per row within the budgets; returns (choice, penalty per action).

    ``channel_budgets`` has one entry per channel, +inf where the channel has no budget of its own.
    """
    n_channels = len(channel_budgets)
    allowed = allowed & (value > 0)  # only actions worth more than not contacting
    candidates = np.flatnonzero(allowed.any(axis=1))
    choice = np.full(len(value), NO_CONTACT)
    penalty = np.zeros(value.shape[1])
    if len(candidates) == 0:
        return choice, penalty
    v, c, ok = value[candidates], cost[candidates], allowed[candidates]
    # Above the best value-per-cost ratio nothing is worth buying: an upper bound for every multiplier.
    upper = float(np.max(np.where(ok, v / np.maximum(c, 1e-12), 0.0))) * (1 + 1e-9) + 1e-12
    lam = 0.0
    mu = np.zeros(n_channels)
    budgeted = np.flatnonzero(np.isfinite(channel_budgets))

    def pen(lam_: float, mu_: np.ndarray) -> np.ndarray:
        return lam_ + mu_[action_channel]

    # Coordinate bisection: a channel multiplier per budgeted channel, then the total multiplier;
    # two rounds settle the interactions well enough, the repair below guarantees feasibility anyway.
    for _ in range(2 if len(budgeted) else 1):
        for ch in budgeted:
            def channel_ok(m: float, ch: int = ch, lam: float = lam) -> bool:
                trial = mu.copy()
                trial[ch] = m
                return _spend(_choose(v, c, ok, pen(lam, trial)), c, action_channel, n_channels)[1][ch] <= channel_budgets[ch]
            mu[ch] = _bisect(channel_ok, upper)
        lam = _bisect(lambda m: _spend(_choose(v, c, ok, pen(m, mu)), c, action_channel, n_channels)[0] <= budget, upper)
    penalty = pen(lam, mu)
    sub = _choose(v, c, ok, penalty)
    sub = _repair(sub, v, c, action_channel, budget, channel_budgets)
    sub = _fill(sub, v, c, ok, action_channel, budget, channel_budgets)
    # Value-per-cost greedy can lose to one big item on a tight budget; taking the better of the two
    # is the classic guarantee of at least half the optimum.
    fits = ok & (c <= budget) & (c <= channel_budgets[action_channel][None, :])
    if fits.any():
        best_single = np.unravel_index(np.argmax(np.where(fits, v, -np.inf)), v.shape)
        chosen = np.flatnonzero(sub >= 0)
        if v[best_single] > v[chosen, sub[chosen]].sum():
            sub[:] = NO_CONTACT
            sub[best_single[0]] = best_single[1]
    choice[candidates] = sub
    return choice, penalty


def _drop_to_fit(choice: np.ndarray, rows: np.ndarray, value: np.ndarray, cost: np.ndarray, limit: float) -> None:
    """Keep the best value-per-cost rows of ``rows`` whose cumulative cost fits ``limit``; drop the rest."""
    spent = cost[rows, choice[rows]]
    if spent.sum() <= limit:
        return
    ratio = value[rows, choice[rows]] / np.maximum(spent, 1e-12)
    order = np.argsort(-ratio, kind="stable")
    keep = np.cumsum(spent[order]) <= limit
    choice[rows[order[~keep]]] = NO_CONTACT


def _repair(
    choice: np.ndarray, value: np.ndarray, cost: np.ndarray, action_channel: np.ndarray,
    budget: float, channel_budgets: np.ndarray,
) -> np.ndarray:
    """Drop the worst value-per-cost choices until every channel budget, then the total, holds."""
    choice = choice.copy()
    for ch in np.flatnonzero(np.isfinite(channel_budgets)):
        rows = np.flatnonzero((choice >= 0) & (action_channel[np.maximum(choice, 0)] == ch))
        _drop_to_fit(choice, rows, value, cost, float(channel_budgets[ch]))
    _drop_to_fit(choice, np.flatnonzero(choice >= 0), value, cost, budget)
    return choice


def _fill(
    choice: np.ndarray, value: np.ndarray, cost: np.ndarray, allowed: np.ndarray, action_channel: np.ndarray,
    budget: float, channel_budgets: np.ndarray,
) -> np.ndarray:
    """Spend what the bisection left over on unassigned customers, best value-per-cost first."""
    choice = choice.copy()
    total, per_channel = _spend(choice, cost, action_channel, len(channel_budgets))
    left = budget - total
    left_channel = channel_budgets - per_channel
    rows = np.flatnonzero((choice == NO_CONTACT) & allowed.any(axis=1))
    if len(rows) == 0 or left <= 0:
        return choice
    ratio = np.where(allowed[rows], value[rows] / np.maximum(cost[rows], 1e-12), -np.inf)
    best = ratio.argmax(axis=1)
    best_cost = cost[rows, best]
    affordable = best_cost <= left
    rows, best, best_cost = rows[affordable], best[affordable], best_cost[affordable]
    order = np.argsort(-value[rows, best] / np.maximum(best_cost, 1e-12), kind="stable")
    cheapest = float(best_cost.min()) if len(best_cost) else math.inf
    for r, a, k in zip(rows[order].tolist(), best[order].tolist(), best_cost[order].tolist(), strict=True):
        if left < cheapest:
            break
        ch = action_channel[a]
        if k <= left and k <= left_channel[ch]:
            choice[r] = a
            left -= k
            left_channel[ch] -= k
    return choice


# --------------------------------------------------------------------------------------------------
# Holdout sizing


def power_two_proportions(p0: float, lift: float, n_control: float, n_treatment: float, alpha: float) -> float:
    """Power of a two-sided two-proportion z-test to detect ``p0 -> p0 + lift``."""
    if n_control <= 0 or n_treatment <= 0:
        return 0.0
    p1 = min(p0 + lift, 1.0)
    se = math.sqrt(p0 * (1 - p0) / n_control + p1 * (1 - p1) / n_treatment)
    if se == 0:
        return 1.0
    return float(norm.cdf(abs(p1 - p0) / se - norm.ppf(1 - alpha / 2)))


def holdout_share_for_power(
    p0: float, lift: float, n: int, alpha: float, power: float, floor: float, cap: float
) -> tuple[float, float, bool]:
    """Smallest holdout share in [floor, cap] reaching ``power``; (share, power at share, underpowered).

    If even ``cap`` is not enough, fall back to ``floor``: a test that cannot reach its power this
    cycle is better pooled across cycles than paid for with half the campaign.
    """
    def power_at(h: float) -> float:
        return power_two_proportions(p0, lift, h * n, (1 - h) * n, alpha)

    if power_at(floor) >= power:
        return floor, power_at(floor), False
    if power_at(cap) < power:
        return floor, power_at(floor), True
    lo, hi = floor, cap  # power rises with the holdout share up to about one half
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if power_at(mid) >= power else (mid, hi)
    return hi, power_at(hi), False


def _systematic_holdout(strata: np.ndarray, n_holdout: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n_holdout`` of ``len(strata)`` rows, each with probability n_holdout/n, balanced on strata.

    Rows are shuffled within strata and laid out stratum by stratum; every (n/n_holdout)-th row from a
    random start goes to control, so each stratum gets the floor or ceiling of its share.
    """
    n = len(strata)
    order = np.lexsort((rng.random(n), strata))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    start = int(rng.integers(n))
    # Integer arithmetic so the count is exactly n_holdout and no float rounding moves a row.
    return ((position + 1) * n_holdout + start) // n - (position * n_holdout + start) // n == 1


# --------------------------------------------------------------------------------------------------
# The design


def _rng(config: DesignConfig, purpose: str) -> np.random.Generator:
    """The random stream of one decision of the design (exploration, Thompson's draw, its probabilities,
    the holdout). The cycle enters the seed so successive cycles do not reuse a stream; the purpose, so
    that one decision's draws do not depend on how many another consumed: closing a few customers'
    channels once moved Thompson's draw for the whole campaign (bench/RESULTS.md, "Loop value")."""
    return np.random.default_rng(np.random.SeedSequence(
        [config.seed, zlib.crc32(config.cycle_id.encode()), zlib.crc32(purpose.encode())]))


def _validate(customers: pd.DataFrame, config: DesignConfig) -> None:
    needed = list(BASE_COLUMNS) + [f"consent_{c}" for c in config.channels] + [uplift_column(a) for a in config.actions]
    if missing := [c for c in needed if c not in customers.columns]:
        raise ValueError(f"customers is missing columns: {missing}")
    if (duplicated := customers["customer_id"].duplicated(keep=False)).any():
        ids = sorted(customers.loc[duplicated, "customer_id"].astype(str).unique())
        raise ValueError(f"customer_id must be unique (the plan gives at most one action per customer): {ids[:5]} "
                         f"({len(ids)} repeated)")


def design_campaign(customers: pd.DataFrame, config: DesignConfig) -> CampaignPlan:
    """Design the campaign of ``config.cycle_id`` for ``customers``; see the module docstring."""
    _validate(customers, config)
    if config.exploration == "auto":
        has_sd = all(f"uplift_sd__{a.name}" in customers.columns for a in config.actions)
        config = replace(config, exploration="thompson" if has_sd else "epsilon")
    actions = config.actions
    # Sorted so the plan does not depend on the order the rows arrived in.
    df = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    n, n_actions = len(df), len(actions)
    rng = _rng(config, "exploration")
    channels = config.channels
    action_channel = np.array([channels.index(a.channel) for a in actions], dtype=np.int64)

    p_buy = df["p_buy"].to_numpy(float)
    spend = df["expected_spend"].to_numpy(float)
    margin_rate = df["margin_rate"].to_numpy(float)
    uplift = df[[uplift_column(a) for a in actions]].to_numpy(float).reshape(n, n_actions)
    econ = action_economics(np.nan_to_num(uplift), np.nan_to_num(p_buy), np.nan_to_num(spend),
                            np.nan_to_num(margin_rate), actions)

    channel_budgets = config.channel_budget_vector
    eligibility = _eligibility(df, config, p_buy, spend, margin_rate)
    allowed = eligibility.allowed(action_channel) & np.isfinite(uplift)
    n_allowed = allowed.sum(axis=1)
    reachable = np.flatnonzero(n_allowed > 0)

    # Exploration (epsilon): a random share of reachable customers gets a uniformly random allowed action.
    explore = np.zeros(n, dtype=bool)
    choice = np.full(n, NO_CONTACT)
    epsilon_eff = 0.0
    left, left_channel = config.budget, channel_budgets.copy()
    if config.epsilon > 0 and len(reachable):
        # Randomised rounding so the expected explored share is exactly epsilon even for tiny audiences;
        # given the count, every reachable customer is equally likely to be drawn.
        n_explore = int(math.floor(config.epsilon * len(reachable) + rng.random()))
        drawn = rng.permutation(reachable)[:n_explore]
        picks = _uniform_allowed(allowed[drawn], rng)
        drawn_cost = econ.cost[drawn, picks]
        # Exploration may spend at most epsilon of each budget, so that random (often unprofitable)
        # actions cannot crowd out the optimiser on a small budget. If the draw does not fit, keep the
        # longest prefix of the random order that does: still a uniformly random set of customers.
        fits = np.cumsum(drawn_cost) <= config.epsilon * config.budget
        for ch in np.flatnonzero(np.isfinite(channel_budgets)):
            fits &= np.cumsum(np.where(action_channel[picks] == ch, drawn_cost, 0.0)) <= config.epsilon * channel_budgets[ch]
        kept = int(np.argmin(fits)) if not fits.all() else len(fits)
        drawn, picks = drawn[:kept], picks[:kept]
        explore[drawn] = True
        choice[drawn] = picks
        epsilon_eff = kept / len(reachable)
        total, per_channel = _spend(choice, econ.cost, action_channel, len(channels))
        left, left_channel = config.budget - total, channel_budgets - per_channel

    # Exploitation: the optimiser on everyone else, with what exploration left of the budgets.
    value_for_choice, cost_for_choice = econ.value, econ.cost
    if config.exploration == "thompson":
        sd = _uplift_sd(df, actions, config)
        sampled = _sample_economics(uplift, sd, p_buy, spend, margin_rate, actions, _rng(config, "thompson"))
        value_for_choice, cost_for_choice = sampled.value, sampled.cost
    exploit_allowed = allowed & ~explore[:, None]
    exploit_choice, penalty = _optimise(value_for_choice, cost_for_choice, exploit_allowed, action_channel,
                                        max(left, 0.0), np.maximum(left_channel, 0.0))
    # Thompson's sampled costs must still fit the real budgets: repair against the expected costs.
    if config.exploration == "thompson":
        exploit_choice = _repair(exploit_choice, econ.value, econ.cost, action_channel,
                                 max(left, 0.0), np.maximum(left_channel, 0.0))
    choice = np.where(explore, choice, exploit_choice)

    # Probability that the exploitation policy gives each customer the action it got.
    planned = np.flatnonzero(choice >= 0)
    policy_prob = _exploit_probability(planned, choice, explore, econ, allowed, penalty,
                                       uplift, df, actions, config, _rng(config, "thompson probabilities"))
    action_prob = (1 - epsilon_eff) * policy_prob + epsilon_eff / np.maximum(n_allowed[planned], 1)

    # Holdout: sized for the planned customers' baseline conversion, stratified by action x segment.
    p0 = float(p_buy[planned].mean()) if len(planned) else 0.0
    share, achieved_power, underpowered = holdout_share_for_power(
        p0, config.min_detectable_lift, len(planned), config.alpha, config.power,
        config.holdout_share, config.holdout_share_max,
    )
    n_holdout = math.ceil(share * len(planned) - 1e-9)
    share_eff = n_holdout / len(planned) if len(planned) else share
    if len(planned):
        achieved_power = power_two_proportions(p0, config.min_detectable_lift, n_holdout, len(planned) - n_holdout,
                                               config.alpha)
    strata = pd.factorize(pd.Series(choice[planned]).astype(str) + "|" + df["segment"].astype(str).to_numpy()[planned])[0]
    control = _systematic_holdout(strata, n_holdout, _rng(config, "holdout")) if len(planned) else np.zeros(0, dtype=bool)

    rows = _plan_rows(df, planned, choice, explore, control, action_prob * np.where(control, share_eff, 1 - share_eff),
                      econ, uplift, actions, config)
    summary = _summary(rows, config, reach=eligibility.funnel() | {"reachable": len(reachable)}, epsilon_eff=epsilon_eff,
                       bounced=_bounced_consents(eligibility, config), preference_weight=_preference_weight(df),
                       holdout={"share": share_eff, "size": int(n_holdout), "power": achieved_power,
                                "underpowered": underpowered, "baseline_conversion": p0,
                                "min_detectable_lift": config.min_detectable_lift, "alpha": config.alpha,
                                "target_power": config.power},
                       penalty=penalty)
    return CampaignPlan(cycle_id=config.cycle_id, rows=rows, summary=summary)


def plan_from_choice(customers: pd.DataFrame, actions: pd.Series, config: DesignConfig,
                     holdout_share: float | None = None) -> CampaignPlan:
    """A plan for actions chosen by someone else (a baseline policy), with the same guarantees and columns.

    ``actions`` (aligned with ``customers``' index) names each customer's action ``<offer>__<channel>``
    or is empty/NaN for no contact. Rows whose action is not allowed (no consent, closed channel, not
    eligible, unknown action) are dropped, then rows are kept in the given order while the expected
    cost (the uplift columns of ``customers`` as in :func:`design_campaign`) fits every budget,
    control arm included. The holdout is a fixed share (default ``config.holdout_share``), stratified
    like the designed plans; ``assignment_probability`` is the arm's probability (the policy is treated
    as deterministic).
    """
    _validate(customers, config)
    catalogue = config.actions
    index = {a.name: i for i, a in enumerate(catalogue)}
    order = pd.Series(np.arange(len(customers)), index=customers.index)
    df = customers.reset_index(drop=True)
    wanted = actions.reindex(customers.index).to_numpy(dtype=object)
    choice = np.array([index.get(a, NO_CONTACT) if isinstance(a, str) else NO_CONTACT for a in wanted])
    channels = config.channels
    action_channel = np.array([channels.index(a.channel) for a in catalogue], dtype=np.int64)
    p_buy, spend, margin_rate = (df[c].to_numpy(float) for c in ("p_buy", "expected_spend", "margin_rate"))
    uplift = df[[uplift_column(a) for a in catalogue]].to_numpy(float).reshape(len(df), len(catalogue))
    econ = action_economics(np.nan_to_num(uplift), np.nan_to_num(p_buy), np.nan_to_num(spend),
                            np.nan_to_num(margin_rate), catalogue)
    # A baseline policy's actions need no uplift estimate: only the rules decide what is allowed.
    eligibility = _eligibility(df, config, p_buy, spend, margin_rate)
    allowed = eligibility.allowed(action_channel)
    channel_budgets = config.channel_budget_vector
    ok = choice >= 0
    ok[ok] = allowed[np.flatnonzero(ok), choice[ok]]
    choice = np.where(ok, choice, NO_CONTACT)
    # Keep rows in the caller's priority order while every budget holds.
    rows_in_order = order.to_numpy()[choice[order.to_numpy()] >= 0]
    cost = econ.cost[rows_in_order, choice[rows_in_order]]
    fits = np.cumsum(cost) <= config.budget + 1e-9
    for ch in np.flatnonzero(np.isfinite(channel_budgets)):
        fits &= np.cumsum(np.where(action_channel[choice[rows_in_order]] == ch, cost, 0.0)) <= channel_budgets[ch] + 1e-9
    kept = int(np.argmin(fits)) if not fits.all() else len(fits)
    final = np.full(len(df), NO_CONTACT)
    final[rows_in_order[:kept]] = choice[rows_in_order[:kept]]
    # Rows in customer_id order, as design_campaign produces them.
    by_id = np.argsort(df["customer_id"].to_numpy().astype(str), kind="stable")
    df, final, uplift, econ = df.iloc[by_id].reset_index(drop=True), final[by_id], uplift[by_id], _Economics(
        value=econ.value[by_id], cost=econ.cost[by_id], margin=econ.margin[by_id], revenue=econ.revenue[by_id])
    planned = np.flatnonzero(final >= 0)
    share = config.holdout_share if holdout_share is None else holdout_share
    n_holdout = math.ceil(share * len(planned) - 1e-9)
    share_eff = n_holdout / len(planned) if len(planned) else share
    strata = pd.factorize(pd.Series(final[planned]).astype(str) + "|" + df["segment"].astype(str).to_numpy()[planned])[0]
    control = _systematic_holdout(strata, n_holdout, _rng(config, "holdout")) if len(planned) else np.zeros(0, dtype=bool)
    explore = np.zeros(len(df), dtype=bool)
    rows = _plan_rows(df, planned, final, explore, control, np.where(control, share_eff, 1 - share_eff),
                      econ, uplift, catalogue, config)
    p0 = float(p_buy[by_id][planned].mean()) if len(planned) else 0.0
    summary = _summary(rows, config, reach=eligibility.funnel() | {"reachable": int(allowed.any(axis=1).sum())},
                       epsilon_eff=0.0,
                       bounced=_bounced_consents(eligibility, config), preference_weight=_preference_weight(df),
                       holdout={"share": share_eff, "size": int(n_holdout),
                                "power": power_two_proportions(p0, config.min_detectable_lift, n_holdout,
                                                               len(planned) - n_holdout, config.alpha),
                                "underpowered": None, "baseline_conversion": p0,
                                "min_detectable_lift": config.min_detectable_lift, "alpha": config.alpha,
                                "target_power": config.power},
                       penalty=np.zeros(len(catalogue)))
    summary["method"] = "baseline policy: given actions in priority order, truncated to the budget"
    return CampaignPlan(cycle_id=config.cycle_id, rows=rows, summary=summary)


@dataclass(frozen=True)
class _Eligibility:
    """Who may be contacted, rule by rule: per customer x enabled channel, and per customer."""

    recorded: np.ndarray  # (n, channels) a consent record exists (consent_<channel> is not missing)
    consented: np.ndarray  # (n, channels) opted in, or no record and assume_consent
    deliverable: np.ndarray  # (n, channels) consented and the newest send on the channel did not bounce
    channel_open: np.ndarray  # (channels,) the channel's budget is not 0
    subscribed: np.ndarray  # (n,) no unsubscribe in the last 30 days
    under_cap: np.ndarray  # (n,) fewer contacts in the last 30 days than the cap
    scored: np.ndarray  # (n,) purchase probability, spend and margin rate are known

    def allowed(self, action_channel: np.ndarray) -> np.ndarray:
        """(n, actions): the action's channel is deliverable and open, and the customer is eligible."""
        eligible = self.subscribed & self.under_cap & self.scored
        return (self.deliverable[:, action_channel] & self.channel_open[action_channel][None, :]
                & eligible[:, None])

    def funnel(self) -> dict[str, int]:
        """Customers left after each rule in turn, over the enabled channels (what ``reach`` reports)."""
        consented = self.consented.any(axis=1)
        deliverable = self.deliverable.any(axis=1)
        open_ = (self.deliverable & self.channel_open[None, :]).any(axis=1)
        subscribed = open_ & self.subscribed
        under_cap = subscribed & self.under_cap
        return {
            "customers": len(self.subscribed),
            "consent_recorded": int(self.recorded.any(axis=1).sum()),
            "consent_assumed": int((self.consented & ~self.recorded).any(axis=1).sum()),
            "consented": int(consented.sum()),
            "deliverable": int(deliverable.sum()),
            "channel_open": int(open_.sum()),
            "not_unsubscribed": int(subscribed.sum()),
            "under_contact_cap": int(under_cap.sum()),
            "scored": int((under_cap & self.scored).sum()),
        }


def _eligibility(df: pd.DataFrame, config: DesignConfig, p_buy: np.ndarray, spend: np.ndarray,
                 margin_rate: np.ndarray) -> _Eligibility:
    """The contact rules of :func:`_allowed`, kept apart so the summary can say which one stopped whom."""
    recorded = np.column_stack([_recorded(df, f"consent_{c}") for c in config.channels])
    opted_in = np.column_stack([_flag(df, f"consent_{c}") for c in config.channels])
    # Consent is assumed only for members: the senders address a member ID, and a customer known by a cookie
    # alone has neither a record nor a way to be reached.
    member = df["member_id"].notna().to_numpy(bool)
    consented = opted_in | (~recorded & member[:, None] if config.assume_consent else False)
    bounced = np.column_stack([_flag(df, f"bounced_{c}") for c in config.channels])
    return _Eligibility(
        recorded=recorded, consented=consented, deliverable=consented & ~bounced,
        channel_open=config.channel_budget_vector > 0,
        subscribed=~df["unsubscribed_recently"].fillna(True).to_numpy(bool),
        under_cap=df["contacts_last_30d"].fillna(config.contact_cap).to_numpy(float) < config.contact_cap,
        scored=np.isfinite(p_buy) & np.isfinite(spend) & np.isfinite(margin_rate),
    )


def _allowed(df: pd.DataFrame, config: DesignConfig, action_channel: np.ndarray, p_buy: np.ndarray,
             spend: np.ndarray, margin_rate: np.ndarray) -> np.ndarray:
    """Who may be contacted with which action (rows x actions) under consent, bounces, unsubscribes, the
    contact cap and closed channels. Consent is hard: a recorded opt-out never gets a contact, and a missing
    consent (no record for the member and channel) counts as no consent unless ``assume_consent``. A channel
    whose newest send bounced is closed: it would deliver nothing (a missing ``bounced_<channel>`` is no bounce)."""
    return _eligibility(df, config, p_buy, spend, margin_rate).allowed(action_channel)


def _recorded(df: pd.DataFrame, column: str) -> np.ndarray:
    """Where a consent column holds a value: True or False was recorded, missing means no record."""
    return df[column].notna().to_numpy(bool) if column in df else np.zeros(len(df), dtype=bool)


def _flag(df: pd.DataFrame, column: str) -> np.ndarray:
    """A boolean input column; missing (the column or a value) is False."""
    return df[column].fillna(False).to_numpy(bool) if column in df else np.zeros(len(df), dtype=bool)


def _bounced_consents(eligibility: _Eligibility, config: DesignConfig) -> dict[str, int]:
    """Per channel, the customers who consent to it but whose newest send on it bounced."""
    closed = eligibility.consented & ~eligibility.deliverable
    return {c: int(closed[:, i].sum()) for i, c in enumerate(config.channels)}


def _uniform_allowed(allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed column per row (every row has at least one)."""
    keys = np.where(allowed, rng.random(allowed.shape), -1.0)
    return keys.argmax(axis=1)


def _uplift_sd(df: pd.DataFrame, actions: tuple[Action, ...], config: DesignConfig) -> np.ndarray:
    cols = [f"uplift_sd__{a.name}" for a in actions]
    if all(c in df.columns for c in cols):
        sd = np.nan_to_num(df[cols].to_numpy(float), nan=config.thompson_uplift_sd)
    else:
        sd = np.full((len(df), len(actions)), config.thompson_uplift_sd)
    return config.thompson_scale * sd


def _sample_economics(
    uplift: np.ndarray, sd: np.ndarray, p_buy: np.ndarray, spend: np.ndarray, margin_rate: np.ndarray,
    actions: tuple[Action, ...], rng: np.random.Generator,
) -> _Economics:
    # A draw per customer (batched Thompson sampling): each customer's action follows the posterior
    # probability that it is best, exactly as under one draw per action shared by everyone, so the
    # expected value is the same; but the campaign no longer moves as a whole on one draw's luck (shared,
    # the 20k demo's first designed cycle contacted 5,271 to 11,597 customers as the draw fell), and every
    # action gets its posterior share of each cycle's evidence. bench/RESULTS.md, "Thompson's draw: shared or per customer".
    draw = np.nan_to_num(uplift) + sd * rng.standard_normal(uplift.shape)
    return action_economics(draw, np.nan_to_num(p_buy), np.nan_to_num(spend), np.nan_to_num(margin_rate), actions)


def _exploit_probability(
    planned: np.ndarray, choice: np.ndarray, explore: np.ndarray, econ: _Economics, allowed: np.ndarray,
    penalty: np.ndarray, uplift: np.ndarray, df: pd.DataFrame, actions: tuple[Action, ...],
    config: DesignConfig, rng: np.random.Generator,
) -> np.ndarray:
    """P(exploitation gives the planned action) for each planned row.

    Epsilon mode: the exploitation plan is deterministic, so 1 for exploit rows; for explored rows,
    whether the Lagrangian rule at the final multipliers would have chosen the same action.
    Thompson mode: the share of fresh posterior draws whose rule picks the planned action, with the
    realised draw counted in, so no probability is 0.
    """
    planned_action = choice[planned]
    ok = allowed[planned]
    if config.exploration == "epsilon":
        rule = _choose(econ.value[planned], econ.cost[planned], ok & (econ.value[planned] > 0), penalty)
        return np.where(explore[planned], (rule == planned_action).astype(float), 1.0)
    sd = _uplift_sd(df, actions, config)[planned]
    p_buy, spend, margin = (df[c].to_numpy(float)[planned] for c in ("p_buy", "expected_spend", "margin_rate"))
    hits = np.where(explore[planned], 0.0, 1.0)  # the realised draw chose the exploit rows' action
    for _ in range(config.thompson_draws):
        sampled = _sample_economics(uplift[planned], sd, p_buy, spend, margin, actions, rng)
        hits += _choose(sampled.value, sampled.cost, ok, penalty) == planned_action
    return np.clip(hits / (config.thompson_draws + 1), 1.0 / (config.thompson_draws + 1), 1.0)


def _send_at(channel: str, config: DesignConfig) -> pd.Timestamp:
    assert config.send_date is not None  # set in __post_init__
    return pd.Timestamp(datetime.combine(config.send_date, SEND_TIME[channel], tzinfo=ZoneInfo(config.timezone)))


def campaign_id(cycle_id: str, action: Action) -> str:
    """One campaign per action and cycle; this is what lands as utm_campaign and in campaign_sends."""
    return f"{cycle_id}-{action.offer.name}-{action.channel}"


def _plan_rows(
    df: pd.DataFrame, planned: np.ndarray, choice: np.ndarray, explore: np.ndarray, control: np.ndarray,
    probability: np.ndarray, econ: _Economics, uplift: np.ndarray, actions: tuple[Action, ...], config: DesignConfig,
) -> pd.DataFrame:
    act = choice[planned]
    pick = (lambda values: np.asarray(values, dtype=object)[act]) if len(actions) else (lambda values: np.array([], dtype=object))
    action_send_at = pd.DatetimeIndex([_send_at(a.channel, config) for a in actions], tz=config.timezone)
    rows = pd.DataFrame({
        "customer_id": df["customer_id"].to_numpy()[planned],
        "member_id": df["member_id"].to_numpy()[planned],
        "campaign_id": pick([campaign_id(config.cycle_id, a) for a in actions]).astype(str),
        "offer": pick([a.offer.name for a in actions]).astype(str),
        "offer_type": pick([a.offer.offer_type for a in actions]).astype(str),
        "offer_value": pick([a.offer.offer_value for a in actions]).astype(float),
        "channel": pick([a.channel for a in actions]).astype(str),
        "cost_per_contact": pick([a.cost_per_contact for a in actions]).astype(float),
        "arm": np.where(control, "control", "treatment"),
        "assignment_probability": probability.astype(float),
        "exploration": explore[planned],
        "expected_incremental_value": econ.value[planned, act],
        "expected_cost": econ.cost[planned, act],
        "expected_incremental_margin": econ.margin[planned, act],
        "expected_incremental_revenue": econ.revenue[planned, act],
        "expected_uplift": np.nan_to_num(uplift[planned, act]),
        "segment": df["segment"].astype(str).to_numpy()[planned],
        "send_at": action_send_at.take(act) if len(actions) else pd.DatetimeIndex([], tz=config.timezone),
    })
    return rows


def _counts(rows: pd.DataFrame, by: str) -> dict[str, dict[str, int]]:
    table = rows.groupby([by, "arm"]).size().unstack(fill_value=0)
    return {str(k): {arm: int(table.loc[k].get(arm, 0)) for arm in ("treatment", "control")} for k in table.index}


def _preference_weight(df: pd.DataFrame) -> float | None:
    """The weight the scorer gave the customers' channel preference (ml/engagement.py); None if it did not say."""
    if "preference_weight" not in df or df.empty or pd.isna(df["preference_weight"].iloc[0]):
        return None  # not scored, or scored without randomised evidence to weigh (ml.score)
    return float(df["preference_weight"].iloc[0])


def zero_reach_reason(reach: Mapping[str, int], config: DesignConfig, targeted: int) -> str | None:
    """Why a plan contacts nobody, from the ``reach`` funnel: the first rule that left no one, with its counts;
    None when the plan targets someone."""
    if targeted:
        return None
    channels = ", ".join(config.channels)
    n, recorded, consented = reach["customers"], reach["consent_recorded"], reach["consented"]
    if n == 0:
        return "no customers were scored (the features mart has no customer as of this cycle)"
    if consented == 0 and recorded == 0:
        return (f"no consents landed: none of the {n:,} customers has a consent record on the enabled channels "
                f"({channels}); land a consents export, or set assume_consent to treat members without a record "
                "as opted in")
    if consented == 0:
        unrecorded = n - recorded
        return (f"everyone opted out: all {recorded:,} customers with a consent record opted out on every enabled "
                f"channel ({channels})" + (f"; {unrecorded:,} more have no record (set assume_consent to contact "
                                          "them)" if unrecorded and not config.assume_consent else ""))
    if reach["deliverable"] == 0:
        return f"every consented channel of the {consented:,} consented customers bounced on its newest send"
    if reach["channel_open"] == 0:
        closed = ", ".join(c for c in config.channels if config.channel_budgets.get(c, math.inf) <= 0)
        return (f"channel budgets of 0 close every channel the {reach['deliverable']:,} consented customers can "
                f"be reached on ({closed})")
    if reach["not_unsubscribed"] == 0:
        return f"all {reach['channel_open']:,} consented customers unsubscribed in the last 30 days"
    if reach["under_contact_cap"] == 0:
        return (f"every one of the {reach['not_unsubscribed']:,} consented customers is at the contact cap "
                f"({config.contact_cap} contacts in 30 days)")
    if reach["scored"] == 0:
        return (f"none of the {reach['under_contact_cap']:,} eligible customers has a purchase probability, "
                "expected spend and margin rate")
    if reach["reachable"] == 0:
        return f"no action of the {reach['scored']:,} eligible customers has an uplift estimate"
    if config.budget <= 0:
        return f"the budget is 0 ({reach['reachable']:,} customers reachable)"
    return (f"no action is worth its cost for any of the {reach['reachable']:,} reachable customers, and "
            f"exploration (epsilon {config.epsilon:g}) drew none within its share of the budget "
            f"({config.budget:,.2f})")


def _summary(
    rows: pd.DataFrame, config: DesignConfig, *, reach: dict[str, int], epsilon_eff: float,
    bounced: dict[str, int], preference_weight: float | None, holdout: dict[str, Any], penalty: np.ndarray,
) -> dict[str, Any]:
    treated = rows[rows["arm"] == "treatment"]
    cost = float(treated["expected_cost"].sum())
    contact_cost = float(treated["cost_per_contact"].sum())
    value = float(treated["expected_incremental_value"].sum())
    by_channel_used = treated.groupby("channel")["expected_cost"].sum()
    return {
        "cycle_id": config.cycle_id,
        "seed": config.seed,
        "method": "lagrangian relaxation (bisection on budget multipliers) + greedy repair and fill",
        "exploration": config.exploration,
        "customers_in": int(reach["customers"]),
        "customers_reachable": int(reach["reachable"]),
        "channels": list(config.channels),
        "timezone": config.timezone,
        "assume_consent": config.assume_consent,
        # Customers left after each contact rule in turn; zero_reach_reason names the rule that left no one.
        "reach": {k: int(v) for k, v in reach.items()},
        "zero_reach_reason": zero_reach_reason(reach, config, len(rows)),
        "consents_closed_by_bounce": bounced,
        "channel_preference_weight": preference_weight,
        "customers_targeted": int(len(rows)),
        "treatment": int(len(treated)),
        "control": int(len(rows) - len(treated)),
        "explored": int(rows["exploration"].sum()),
        "epsilon": config.epsilon,
        "epsilon_effective": float(epsilon_eff),
        "holdout": {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in holdout.items()},
        "by_action": _counts(rows, "campaign_id"),
        "by_channel": _counts(rows, "channel"),
        "by_segment": _counts(rows, "segment"),
        # Totals over the treatment arm: the control arm is not contacted, so it earns and costs nothing.
        "expected": {
            "incremental_revenue": float(treated["expected_incremental_revenue"].sum()),
            "incremental_margin": float(treated["expected_incremental_margin"].sum()),
            "incremental_value": value,
            "cost": cost,
            "contact_cost": contact_cost,
            "discount_cost": cost - contact_cost,
            "roi": value / cost if cost > 0 else None,
        },
        "budget": {
            "total": config.budget,
            "used": cost,
            # What the plan would cost if the control arm were contacted too: the optimiser keeps this
            # under the budget, so no outcome of the randomisation can overspend.
            "planned": float(rows["expected_cost"].sum()),
            "by_channel": {
                c: {"budget": config.channel_budgets.get(c), "used": float(by_channel_used.get(c, 0.0))}
                for c in config.channels
            },
        },
        "total_multiplier": float(penalty.min()) if len(penalty) else 0.0,
    }
