"""How a plan keeps every action measured: epsilon's random actions, Thompson's draws from the posterior, and
the probability with which each planned customer got their action (what off-policy evaluation weighs by)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ml.decide.catalogue import NO_CONTACT
from ml.decide.config import DesignConfig, random_stream
from ml.decide.economics import Economics, ScoredCustomers, action_economics
from ml.decide.optimise import choose, spending


@dataclass(frozen=True)
class Assignment:
    """Each customer's action (an index into the actions, NO_CONTACT for none) and whether exploration chose it."""

    choice: np.ndarray  # (n,)
    explore: np.ndarray  # (n,) bool

    @property
    def planned(self) -> np.ndarray:
        """The rows given an action."""
        return np.flatnonzero(self.choice >= 0)


@dataclass(frozen=True)
class Explored:
    """Epsilon exploration's draw and the budgets it left to the optimiser."""

    assignment: Assignment  # NO_CONTACT outside the draw
    share: float  # the explored share of the reachable customers (epsilon once the budget caps applied)
    budget_left: float
    channel_budgets_left: np.ndarray  # (channels,) +inf where a channel has no budget of its own


def explore_epsilon(customers: ScoredCustomers, allowed: np.ndarray, reachable: np.ndarray,
                    config: DesignConfig) -> Explored:
    """A random share ``epsilon`` of the ``reachable`` customers, each given a uniformly random allowed action."""
    rng = random_stream(config, "exploration")
    n = len(allowed)
    channel_budgets = config.channel_budget_vector
    explore = np.zeros(n, dtype=bool)
    choice = np.full(n, NO_CONTACT)
    if not (config.epsilon > 0 and len(reachable)):
        return Explored(Assignment(choice, explore), 0.0, config.budget, channel_budgets.copy())
    # Randomised rounding so the expected explored share is exactly epsilon even for tiny audiences;
    # given the count, every reachable customer is equally likely to be drawn.
    n_explore = int(math.floor(config.epsilon * len(reachable) + rng.random()))
    drawn = rng.permutation(reachable)[:n_explore]
    picks = _uniform_allowed(allowed[drawn], rng)
    drawn_cost = customers.econ.cost[drawn, picks]
    # Exploration may spend at most epsilon of each budget, so that random (often unprofitable)
    # actions cannot crowd out the optimiser on a small budget. If the draw does not fit, keep the
    # longest prefix of the random order that does: still a uniformly random set of customers.
    fits = np.cumsum(drawn_cost) <= config.epsilon * config.budget
    for ch in np.flatnonzero(np.isfinite(channel_budgets)):
        in_channel = customers.action_channel[picks] == ch
        fits &= np.cumsum(np.where(in_channel, drawn_cost, 0.0)) <= config.epsilon * channel_budgets[ch]
    kept = int(np.argmin(fits)) if not fits.all() else len(fits)
    drawn, picks = drawn[:kept], picks[:kept]
    explore[drawn] = True
    choice[drawn] = picks
    total, per_channel = spending(choice, customers.econ.cost, customers.action_channel, len(config.channels))
    return Explored(Assignment(choice, explore), kept / len(reachable), config.budget - total,
                    channel_budgets - per_channel)


def _uniform_allowed(allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed column per row (every row has at least one)."""
    keys = np.where(allowed, rng.random(allowed.shape), -1.0)
    return keys.argmax(axis=1)


def measured_sd(customers: ScoredCustomers) -> np.ndarray | None:
    """(n, a) the scorer's standard error of each uplift (``uplift_sd__<action>``); None when the input has none."""
    cols = [f"uplift_sd__{a.name}" for a in customers.actions]
    if not all(c in customers.frame.columns for c in cols):
        return None
    return customers.frame[cols].to_numpy(float)


def uplift_sd(customers: ScoredCustomers, config: DesignConfig) -> np.ndarray:
    """(n, a) the width of Thompson's draw: :func:`measured_sd` (else ``thompson_uplift_sd``) times
    ``thompson_scale``."""
    sd = measured_sd(customers)
    if sd is None:
        sd = np.full((len(customers.frame), len(customers.actions)), config.thompson_uplift_sd)
    return config.thompson_scale * np.nan_to_num(sd, nan=config.thompson_uplift_sd)


def exploit_uplift(customers: ScoredCustomers, config: DesignConfig) -> np.ndarray:
    """(n, a) the uplift exploitation acts on: the estimate less ``uplift_pessimism`` of its measured standard
    errors, so an action whose effect the evidence cannot tell from a small harm is not sent on its mean alone
    (exploration still sends it, and keeps measuring it). Unmeasured uncertainty (no ``uplift_sd__`` columns)
    moves nothing: ``thompson_uplift_sd`` is a width for exploring, not evidence."""
    uplift = np.nan_to_num(customers.uplift)
    sd = measured_sd(customers) if config.uplift_pessimism else None
    return uplift if sd is None else uplift - config.uplift_pessimism * np.nan_to_num(sd)


def exploit_economics(customers: ScoredCustomers, config: DesignConfig) -> Economics:
    """The economics of :func:`exploit_uplift`: the customers' own when nothing is subtracted."""
    uplift = exploit_uplift(customers, config)
    if np.array_equal(uplift, np.nan_to_num(customers.uplift)):
        return customers.econ
    return _economics(customers, slice(None), uplift)


def sample_economics(customers: ScoredCustomers, rows: np.ndarray | slice, centre: np.ndarray, sd: np.ndarray,
                     rng: np.random.Generator) -> Economics:
    """The economics of ``rows`` under one draw of each customer's uplift from a normal around ``centre`` (n, a;
    :func:`exploit_uplift`), ``sd`` wide (the ``rows``' own)."""
    # A draw per customer (batched Thompson sampling): each customer's action follows the posterior
    # probability that it is best, exactly as under one draw per action shared by everyone, so the
    # expected value is the same; but the campaign no longer moves as a whole on one draw's luck (shared,
    # the 20k demo's first designed cycle contacted 5,271 to 11,597 customers as the draw fell), and every
    # action gets its posterior share of each cycle's evidence. bench/RESULTS.md, "Thompson's draw: shared or per customer".
    mean = centre[rows]
    return _economics(customers, rows, mean + sd * rng.standard_normal(mean.shape))


def _economics(customers: ScoredCustomers, rows: np.ndarray | slice, uplift: np.ndarray) -> Economics:
    return action_economics(uplift, np.nan_to_num(customers.p_buy[rows]), np.nan_to_num(customers.spend[rows]),
                            np.nan_to_num(customers.margin_rate[rows]), customers.actions, customers.retained[rows])


def exploit_probability(customers: ScoredCustomers, assignment: Assignment, allowed: np.ndarray,
                        penalty: np.ndarray, config: DesignConfig) -> np.ndarray:
    """P(exploitation gives the planned action) for each planned row.

    Epsilon mode: the exploitation plan is deterministic, so 1 for exploit rows; for explored rows,
    whether the Lagrangian rule at the final multipliers would have chosen the same action.
    Thompson mode: the share of fresh posterior draws whose rule picks the planned action, with the
    realised draw counted in for exploit rows (never 0); explored rows may get 0.
    """
    planned = assignment.planned
    planned_action = assignment.choice[planned]
    explore = assignment.explore[planned]
    ok = allowed[planned]
    econ = exploit_economics(customers, config)
    if config.exploration == "epsilon":
        rule = choose(econ.value[planned], econ.cost[planned], ok & (econ.value[planned] > 0), penalty)
        return np.where(explore, (rule == planned_action).astype(float), 1.0)
    rng = random_stream(config, "thompson probabilities")
    sd, centre = uplift_sd(customers, config)[planned], exploit_uplift(customers, config)
    hits = np.where(explore, 0.0, 1.0)  # the realised draw chose the exploit rows' action
    for _ in range(config.thompson_draws):
        sampled = sample_economics(customers, planned, centre, sd, rng)
        hits += choose(sampled.value, sampled.cost, ok, penalty) == planned_action
    # Exploit rows count the realised draw, so never reach 0; explored rows were not part of it, and an
    # action exploitation never picks must weigh only its exploration probability (a floor would bias IPS).
    return np.where(explore, hits / config.thompson_draws, hits / (config.thompson_draws + 1))
