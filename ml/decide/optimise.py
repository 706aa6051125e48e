"""The budget-constrained choice: at most one action per customer, the most expected value within the budgets.

Lagrangian relaxation of the total and per-channel budgets, bisection on their multipliers, then a greedy
repair (drop the worst value per cost until every budget holds) and fill (spend what is left, best first).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ml.decide.catalogue import NO_CONTACT


def choose(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Each customer's best action by reduced value value - penalty*cost, or NO_CONTACT if none is positive."""
    reduced = np.where(allowed, value - cost * penalty[None, :], -np.inf)
    best = reduced.argmax(axis=1)
    positive = np.take_along_axis(reduced, best[:, None], axis=1)[:, 0] > 0
    return np.where(positive, best, NO_CONTACT)


def spending(choice: np.ndarray, cost: np.ndarray, action_channel: np.ndarray, n_channels: int) -> tuple[float, np.ndarray]:
    """What ``choice`` costs in all and per channel."""
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


def optimise(
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
                return spending(choose(v, c, ok, pen(lam, trial)), c, action_channel, n_channels)[1][ch] <= channel_budgets[ch]
            mu[ch] = _bisect(channel_ok, upper)
        lam = _bisect(lambda m: spending(choose(v, c, ok, pen(m, mu)), c, action_channel, n_channels)[0] <= budget, upper)
    penalty = pen(lam, mu)
    sub = choose(v, c, ok, penalty)
    sub = repair(sub, v, c, action_channel, budget, channel_budgets)
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


def repair(
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
    total, per_channel = spending(choice, cost, action_channel, len(channel_budgets))
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
