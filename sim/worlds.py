"""The family of simulated worlds: which causal structure turns a contact into a purchase (issue 24).

A benchmark run in one world measures how well the platform fits that world; one tuned on it says
little about a retailer whose customers respond for other reasons. ``Settings.world`` picks one of
:data:`WORLDS`. Everything else (people, their traits, purchases, engagement, files) is drawn the same
way in every world; only the response to a delivered action differs. Only the simulator and the oracle
read the world; the platform learns it from the data, as a retailer would.

* ``a``: persuadables gain in proportion to their affinity for the action's channel, which is also what
  drives their opens (:func:`sim.behaviour.uplift`, unchanged since issue 5).
* ``b``: who is persuadable and how much follows recency (lapsing customers respond most), price
  sensitivity and category interest; nothing about it follows channel affinity or opens.
* ``c``: a quarter of the non-buyers-anyway are sleeping dogs, whom any contact costs purchases, and
  most persuadables respond to a discount only (a message moves them not at all).
* ``d``: world ``a``'s effects, fading with the customer's recent contacts (fatigue): a contact load that
  each delivered contact raises by one and that halves every :data:`FATIGUE_HALF_LIFE_DAYS`.
* ``r``: world ``a``'s effects on this period's purchases, and a second, lasting one (retention): besides
  dropping out after a purchase (BG/NBD), an alive customer defects to a competitor during a period with a
  weekly hazard that rises with price sensitivity (:func:`defection_probability`), and a delivered action
  lowers that period's hazard (:func:`retention`), more on a liked channel and with a discount. A defector
  is lost for good, so what a contact is worth reaches past the cycle (issue 27, the LTV-based budget).

Worlds other than ``a`` derive their classes from the traits people already carry and a per-person
hash of the world seed, so that world ``a`` draws exactly what it drew before the family existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from campaign_loop.config import CHANNELS
from sim import ids
from sim.world import (
    CATEGORIES,
    PARAMS,
    PERSUADABLE,
    SLEEPING_DOG,
    SURE_THING,
    People,
    WorldParams,
)

WORLDS: dict[str, str] = {
    "a": "effects scale with channel affinity (what opens show)",
    "b": "effects follow recency, price sensitivity and category interest, not opens",
    "c": "sleeping dogs harmed by any contact; most persuadables respond to discounts only",
    "d": "world a's effects, fading with recent contacts (fatigue)",
    "r": "world a's effects, and customers defecting whom a contact retains (retention)",
}

WEEK_S = 7 * 86_400
# World b: lapsed customers are the classic win-back audience; the response peaks at this many weeks
# since the last purchase and falls off on a log scale either side (a week-old buyer needs no nudge,
# a two-year-old one has moved on).
RECENCY_PEAK_WEEKS = 12.0
RECENCY_WIDTH = 0.8  # on log(1 + weeks)
NEVER_BOUGHT_WEEKS = 104.0
B_CORRELATION = 0.7  # of the latent responsiveness with the world-b traits (world a's is 0.5)
B_WEIGHTS = (0.55, 0.30, 0.15)  # price sensitivity, recency, category interest
# Brings world b's mean effect near world a's (0.0047 against a's 0.0045; 0.0029 unscaled: members alive at
# cycle 1 of a 5,000-customer world, seed 3, never a benchmark seed), so the worlds differ in who responds.
B_SCALE = 1.5
# World c.
C_SLEEPING_DOG_SHARE = 0.25  # of the people who are not sure things
C_CORRELATION = 0.6
DISCOUNT_ONLY_GAIN = 2.0  # a discount-only responder's gain per unit of world a's discount term
# World d.
FATIGUE_HALF_LIFE_DAYS = 14.0
FATIGUE_RATE = 1.0  # effect multiplier 1 / (1 + rate * contact load)
CONTACT_LOAD = "contact_load"  # world d's state column: delivered contacts, decayed

# World r. A mean weekly hazard of 1 % loses about 40 % of the alive customers in a year on top of BG/NBD's
# dropout: a retailer in a price-driven market, where a retention budget is worth having.
DEFECTION_WEEKLY = 0.01
RETAIN_MESSAGE = 0.35  # share of the period's hazard a delivered message removes, per unit of channel affinity
RETAIN_DISCOUNT = 0.6  # more, per unit of price sensitivity x discount share / 0.2 (20 % off)
RETAIN_MAX = 0.9

_B_SALT, _C_SALT, _C_DISCOUNT_SALT = 2401, 2402, 2403


@dataclass(frozen=True)
class WorldContext:
    """What a world's response needs beyond the people: its name, the seed, and when the period starts."""

    name: str = "a"
    seed: int = 0
    now: int = 0  # epoch seconds of the period's start, from which recency is counted

    def __post_init__(self) -> None:
        if self.name not in WORLDS:
            raise ValueError(f"unknown world {self.name!r}; choose from {', '.join(WORLDS)}")


def _uniform(seed: int, salt: int, person_id: np.ndarray) -> np.ndarray:
    """A uniform per person and purpose, stable across cycles and independent of every draw."""
    return (ids.hash64(seed, salt, person_id) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _normal_score(u: np.ndarray) -> np.ndarray:
    return stats.norm.ppf(np.clip(u, 1e-9, 1 - 1e-9))


def recency_response(people: People, now: int) -> np.ndarray:
    """World b's recency term in (0, 1]: highest for customers lapsed about :data:`RECENCY_PEAK_WEEKS`."""
    last = people["last_purchase"].astype(np.int64)
    weeks = np.where(last >= 0, np.maximum(now - last, 0) / WEEK_S, NEVER_BOUGHT_WEEKS)
    x = (np.log1p(weeks) - np.log1p(RECENCY_PEAK_WEEKS)) / RECENCY_WIDTH
    return np.exp(-0.5 * x**2)


def category_interest(people: People) -> np.ndarray:
    """How focused a customer's category interest is: 0 spread evenly, 1 a single category."""
    k = len(CATEGORIES)
    top = np.max(np.stack([people[f"cat_{c}"] for c in range(k)], axis=1), axis=1).astype(np.float64)
    return (top - 1.0 / k) / (1.0 - 1.0 / k)


def _classes(people: People, score: np.ndarray, rho: float, seed: int, salt: int,
             persuadable_share: float, dog_share: float) -> np.ndarray:
    """Sure things as in world a (by purchase rate); the rest by a latent correlated ``rho`` with ``score``."""
    latent = rho * score + np.sqrt(1.0 - rho**2) * _normal_score(_uniform(seed, salt, people["person_id"]))
    q = stats.norm.cdf(latent)
    return np.where(
        people["response_class"] == SURE_THING, SURE_THING,
        np.where(q > 1.0 - persuadable_share, PERSUADABLE, np.where(q < dog_share, SLEEPING_DOG, 0)),
    ).astype(np.int8)


def world_b_classes(people: People, context: WorldContext, p: WorldParams = PARAMS) -> np.ndarray:
    z_price = _normal_score(stats.beta.cdf(people["price_sens"], 2.0, 3.0))
    # Fixed centres and scales (not the population's): a person's class must not depend on who else is
    # in the frame, since the simulator asks about the treated alone.
    z_recency = (recency_response(people, context.now) - 0.45) / 0.35
    z_category = (category_interest(people) - 0.35) / 0.2
    w = np.asarray(B_WEIGHTS)
    score = (w[0] * z_price + w[1] * z_recency + w[2] * z_category) / np.sqrt((w**2).sum())
    return _classes(people, score, B_CORRELATION, context.seed, _B_SALT, p.persuadable_share, p.sleeping_dog_share)


def world_c_classes(people: People, context: WorldContext, p: WorldParams = PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(class, discount_only). Sleeping dogs lean to frequent buyers who rarely open (contact is noise to
    them); persuadables to the opposite; the price-sensitive among persuadables respond to discounts only."""
    z_rate = _normal_score(stats.gamma.cdf(people["lam"], p.rate_shape, scale=p.rate_scale))
    z_open = _normal_score(stats.beta.cdf(people["open_prop"], 2.0, 8.0))
    score = (z_open - z_rate) / np.sqrt(2.0)  # low: dog-like
    classes = _classes(people, score, C_CORRELATION, context.seed, _C_SALT, p.persuadable_share, C_SLEEPING_DOG_SHARE)
    discount_only = _uniform(context.seed, _C_DISCOUNT_SALT, people["person_id"]) < stats.beta.cdf(people["price_sens"], 2.0, 3.0) * 1.2
    return classes, discount_only & (classes == PERSUADABLE)


def contact_load(people: People) -> np.ndarray:
    load = people.get(CONTACT_LOAD)
    return np.zeros(len(people["person_id"])) if load is None else load.astype(np.float64)


def decay_contact_load(people: People, delivered: np.ndarray, days: float) -> None:
    """World d's state after a period: the old load halved per half-life, plus this period's contacts."""
    people[CONTACT_LOAD] = (contact_load(people) * 0.5 ** (days / FATIGUE_HALF_LIFE_DAYS) + delivered).astype(np.float32)


def channel_terms(people: People, channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(affinity for the action's channel, reachable on it) per person."""
    n = len(channel)
    affinity = np.zeros(n)
    reachable = np.zeros(n, dtype=bool)
    for name in CHANNELS:
        on = channel == name
        affinity = np.where(on, people[f"aff_{name}"], affinity)
        reachable |= on & ~people[f"unreachable_{name}"]
    return affinity, reachable


def world_uplift(
    people: People, base: np.ndarray, share: np.ndarray, channel: np.ndarray, context: WorldContext,
    p: WorldParams, max_uplift: float,
) -> np.ndarray:
    """True uplift in worlds b-d (before reachability and dropout, which every world applies alike)."""
    affinity, _ = channel_terms(people, channel)
    discount = p.discount_gain * people["price_sens"] * share
    cap = np.minimum(max_uplift, 1.0 - base)
    if context.name == "b":
        classes = world_b_classes(people, context, p)
        drive = ((0.4 + 1.2 * recency_response(people, context.now)) * (0.5 + 1.25 * people["price_sens"])
                 * (0.7 + 0.6 * category_interest(people)))
        gain = np.minimum(people["lift"] * B_SCALE * drive * (1.0 + discount), cap)
        harm = -base * people["dog_harm"] * 0.75  # world a's mean harm, without the channel
        return np.where(classes == PERSUADABLE, gain, np.where(classes == SLEEPING_DOG, harm, 0.0))
    if context.name == "c":
        classes, discount_only = world_c_classes(people, context, p)
        gain = np.where(discount_only, people["lift"] * affinity * DISCOUNT_ONLY_GAIN * discount,
                        people["lift"] * affinity * (1.0 + discount))
        gain = np.minimum(gain, cap)
        # Harm on any channel and offer: a discount does not buy back a customer who resents the contact.
        harm = -base * (0.3 + 0.7 * people["dog_harm"])
        return np.where(classes == PERSUADABLE, gain, np.where(classes == SLEEPING_DOG, harm, 0.0))
    if context.name == "d":
        gain = np.minimum(people["lift"] * affinity * (1.0 + discount), cap)
        gain = gain / (1.0 + FATIGUE_RATE * contact_load(people))
        harm = -base * people["dog_harm"] * (0.5 + affinity / 2.0)
        classes = people["response_class"]
        return np.where(classes == PERSUADABLE, gain, np.where(classes == SLEEPING_DOG, harm, 0.0))
    raise ValueError(f"world {context.name!r} has no response here: world a's is sim.behaviour.uplift")


def defection_probability(people: People, weeks: float) -> np.ndarray:
    """World r: P(an alive customer defects during a period of ``weeks``), without a contact; 0 if gone.

    The weekly hazard is :data:`DEFECTION_WEEKLY` x (0.25 + 1.875 x price sensitivity), whose mean over
    price sensitivity ~ Beta(2, 3) is 1: the price-sensitive leave for a cheaper shop.
    """
    weekly = DEFECTION_WEEKLY * (0.25 + 1.875 * people["price_sens"].astype(np.float64))
    return np.where(people["alive"], -np.expm1(np.log1p(-weekly) * weeks), 0.0)


def retention(people: People, share: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """World r: the share of a period's defection hazard a delivered action removes, per person.

    ``share`` is the offer's discount share of the usual order (``sim.behaviour.discount_share``). A bounce
    retains no one; a customer already gone is not brought back.
    """
    affinity, reachable = channel_terms(people, channel)
    effect = RETAIN_MESSAGE * affinity + RETAIN_DISCOUNT * people["price_sens"] * share / 0.2
    return np.where(reachable & people["alive"], np.clip(effect, 0.0, RETAIN_MAX), 0.0)
