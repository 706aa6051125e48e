"""True purchase behaviour: the baseline purchase probability of a period and the uplift of an action.

BG/NBD: an alive person buys as a Poisson process with weekly rate lambda (scaled by the season) and
drops out with probability p after each purchase. A campaign action changes the probability of buying
in the period by its uplift, which depends on the person's latent response class:
persuadables gain (more on a preferred channel, more with a discount when price-sensitive), sure things
and lost causes do not move, sleeping dogs buy less. That is world a; :mod:`sim.worlds` has the others.
"""

from __future__ import annotations

import numpy as np

from campaign_loop.actions import Action
from campaign_loop.config import CHANNELS
from sim.world import PARAMS, PERSUADABLE, SLEEPING_DOG, People, WorldParams
from sim.worlds import WorldContext, channel_terms, defection_probability, retention, world_uplift

MAX_UPLIFT = 0.25
EXTRA_ORDER_RATE = 0.12  # buyers place 1 + Poisson(0.12) orders in a period
SHIPPING_FEE = 300  # cents, online orders below the free-shipping threshold
FREE_SHIPPING_FROM = 5_000
MARGIN_RATE = 0.44  # realised gross margin share of revenue, used for expected (not realised) margins
# Realised orders average ~2.5x the person's spend trait: whole units of catalogue prices overshoot the
# target value (measured on a 20k world; see docs/simulator.md).
ORDER_VALUE_FACTOR = 2.5


def baseline_probability(people: People, exposure_weeks: float) -> np.ndarray:
    """P(at least one purchase in the period | no campaign); zero for people who dropped out."""
    return np.where(people["alive"], -np.expm1(-people["lam"].astype(np.float64) * exposure_weeks), 0.0)


def discount_share(people: People, offer_type: np.ndarray, offer_value: np.ndarray) -> np.ndarray:
    """The offer's value as a share of the person's usual order (what price sensitivity reacts to)."""
    spend = people["spend"].astype(np.float64) * ORDER_VALUE_FACTOR
    share = np.zeros(len(spend))
    share = np.where(offer_type == "percent_off", offer_value / 100.0, share)
    share = np.where(offer_type == "amount_off", np.minimum(offer_value / np.maximum(spend, 1.0), 1.0), share)
    share = np.where(offer_type == "free_shipping", people["online_share"] * (SHIPPING_FEE / 100.0) / spend, share)
    return share


def uplift(
    people: People,
    base: np.ndarray,
    offer_type: np.ndarray | str,
    offer_value: np.ndarray | float,
    channel: np.ndarray | str,
    p: WorldParams = PARAMS,
    *,
    world: WorldContext | None = None,
) -> np.ndarray:
    """True uplift in purchase probability of a delivered action, per person (treated minus baseline).

    ``world`` (None: world a) picks the causal structure, :mod:`sim.worlds`; this body is world a's.
    """
    n = len(base)
    offer_type = np.broadcast_to(np.asarray(offer_type), (n,))
    offer_value = np.broadcast_to(np.asarray(offer_value, dtype=np.float64), (n,))
    channel = np.broadcast_to(np.asarray(channel), (n,))
    # World r's purchase effects are world a's: its retention is a second effect (sim.worlds.retention).
    if world is not None and world.name not in ("a", "r"):
        _, reachable = channel_terms(people, channel)
        effect = world_uplift(people, base, discount_share(people, offer_type, offer_value), channel, world, p, MAX_UPLIFT)
        return np.where(reachable & people["alive"], effect, 0.0)
    affinity = np.zeros(n)
    reachable = np.zeros(n, dtype=bool)
    for name in CHANNELS:
        on = channel == name
        affinity = np.where(on, people[f"aff_{name}"], affinity)
        reachable |= on & ~people[f"unreachable_{name}"]
    share = discount_share(people, offer_type, offer_value)
    gain = people["lift"] * affinity * (1.0 + p.discount_gain * people["price_sens"] * share)
    gain = np.minimum(gain, np.minimum(MAX_UPLIFT, 1.0 - base))
    harm = -base * people["dog_harm"] * (0.5 + affinity / 2.0)
    response_class = people["response_class"]
    effect = np.where(response_class == PERSUADABLE, gain, np.where(response_class == SLEEPING_DOG, harm, 0.0))
    # A bounce delivers nothing, and a person who dropped out does not come back for a message.
    return np.where(reachable & people["alive"], effect, 0.0)


def retention_columns(people: People, world: WorldContext, weeks: float,
                      actions: tuple[Action, ...]) -> dict[str, np.ndarray]:
    """World r's truth of a period: ``defection_probability`` and ``retention__<action>`` per person; none in
    the other worlds, whose effects files stay as they were."""
    if world.name != "r":
        return {}
    n = len(people["alive"])
    columns = {"defection_probability": defection_probability(people, weeks)}
    for action in actions:
        share = discount_share(people, np.full(n, action.offer.offer_type), np.full(n, action.offer.offer_value))
        columns[f"retention__{action.name}"] = retention(people, share, np.full(n, action.channel))
    return columns


def expected_discount(people: People, offer_type: np.ndarray | str, offer_value: np.ndarray | float) -> np.ndarray:
    """Expected discount (currency) a treated buyer redeems: the coupon applies to one order."""
    n = len(people["spend"])
    offer_type = np.broadcast_to(np.asarray(offer_type), (n,))
    offer_value = np.broadcast_to(np.asarray(offer_value, dtype=np.float64), (n,))
    spend = people["spend"].astype(np.float64) * ORDER_VALUE_FACTOR
    out = np.where(offer_type == "percent_off", spend * offer_value / 100.0, 0.0)
    out = np.where(offer_type == "amount_off", np.minimum(offer_value, spend), out)
    return np.where(offer_type == "free_shipping", people["online_share"] * SHIPPING_FEE / 100.0 * 0.4, out)


def expected_incremental_profit(
    people: People, base: np.ndarray, lift: np.ndarray, offer_type: np.ndarray | str,
    offer_value: np.ndarray | float, cost_per_contact: np.ndarray | float,
) -> np.ndarray:
    """Expected incremental gross margin of contacting a person, net of discount and contact cost."""
    margin_if_buy = people["spend"] * ORDER_VALUE_FACTOR * (1.0 + EXTRA_ORDER_RATE) * MARGIN_RATE
    treated = base + lift
    return treated * (margin_if_buy - expected_discount(people, offer_type, offer_value)) - base * margin_if_buy - cost_per_contact
