"""Paid media that sells (issue 27), an opt-in mechanism: ``Settings.media_effect``.

In every world paid media (:data:`sim.period.PAID_MEDIA`) is bought and clicked, but its spend causes no
purchase, so a media mix model can only find nothing. With ``media_effect`` on, each channel's daily
spend causes extra online orders through the response a media mix model assumes: a geometric adstock
over :data:`L_MAX` days (weights normalised to sum to one), then a logistic saturation,

    incremental revenue(day) = beta * reference * (1 - exp(-lam * x / reference)) / (1 + exp(-lam * x / reference))

with ``x`` the adstocked spend and ``reference`` the channel's usual daily spend. The spend itself runs
in weekly flights independent of the season (a retailer's media calendar), so the sales it causes can
be told apart from the sales the season brings. Cycle 0 also lands the ``history_weeks`` of spend (and
the orders it caused) before it, as a retailer's ad accounts hold a year of spend.

The truth (parameters, spend and expected incremental revenue per day and channel, realised revenue of
the orders media caused) goes to ``truth_dir/media``; :func:`sim.oracle.media_truth` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calendar import DAY_S, local_time_of_day

# Days of carry-over; the weights of day 0..L_MAX-1 are alpha**i normalised to sum to one.
L_MAX = 7
FLIGHT_SIGMA = 0.5  # log-sd of a channel's weekly spend level
DAILY_SIGMA = 0.15  # log-sd of a day's spend around its week's level
_FLIGHT_SALT = 2701


@dataclass(frozen=True)
class MediaResponse:
    """One channel's true response: adstock decay per day, saturation steepness, and the most revenue a
    day can bring as a multiple of the channel's reference daily spend."""

    alpha: float
    lam: float
    beta: float

    def steady_roas(self, spend_over_reference: float = 1.0) -> float:
        """Revenue per unit of spend of a constant daily spend (adstock's steady state is the spend)."""
        x = self.lam * spend_over_reference
        return float(self.beta * (1 - np.exp(-x)) / (1 + np.exp(-x)) / spend_over_reference)


# Search converts fast and saturates early, social carries over and has room, display barely pays back:
# steady ROAS at the usual spend 2.5, 1.7, 0.9, so moving budget from display to social earns more.
MEDIA_RESPONSE: dict[str, MediaResponse] = {
    "search": MediaResponse(alpha=0.2, lam=1.2, beta=4.5),
    "social": MediaResponse(alpha=0.5, lam=0.5, beta=7.0),
    "display": MediaResponse(alpha=0.7, lam=1.0, beta=2.0),
}


def adstock(spend: np.ndarray, alpha: float, l_max: int = L_MAX) -> np.ndarray:
    """Geometric adstock along axis 0 with normalised weights; ``spend`` starts ``l_max - 1`` days early."""
    weights = alpha ** np.arange(l_max)
    weights = weights / weights.sum()
    out = np.zeros_like(spend, dtype=np.float64)
    for lag, w in enumerate(weights):
        out[lag:] += w * spend[: len(spend) - lag]
    return out


def logistic(x: np.ndarray) -> np.ndarray:
    return (1 - np.exp(-x)) / (1 + np.exp(-x))


def flight_spend(seed: int, days: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Daily spend (currency, days x channels): a weekly flight level per channel times daily noise.

    Each day's draw depends on the seed, the day and the channel alone, so a cycle, the history before
    it and the carry-over days before a cycle see the same spend for the same day.
    """
    out = np.empty((len(days), len(base)))
    for i, day in enumerate(days):
        week = int(day) // 7
        for c in range(len(base)):
            level = np.random.default_rng([seed, _FLIGHT_SALT, week, c]).lognormal(-FLIGHT_SIGMA**2 / 2, FLIGHT_SIGMA)
            noise = np.random.default_rng([seed, _FLIGHT_SALT, int(day), c, 1]).lognormal(-DAILY_SIGMA**2 / 2, DAILY_SIGMA)
            out[i, c] = base[c] * level * noise
    return np.round(out, 2)


def expected_revenue(seed: int, days: np.ndarray, reference: np.ndarray,
                     response: tuple[MediaResponse, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(spend, expected incremental revenue), each days x channels, carry-over from before ``days`` included."""
    early = np.arange(int(days[0]) - L_MAX + 1, int(days[0]))
    spend = flight_spend(seed, np.concatenate([early, days]), reference)
    revenue = np.empty_like(spend)
    for c, r in enumerate(response):
        revenue[:, c] = r.beta * reference[c] * logistic(r.lam * adstock(spend[:, c], r.alpha) / reference[c])
    return spend[len(early):], revenue[len(early):]


def media_orders(rng: np.random.Generator, alive: np.ndarray, days: np.ndarray, revenue: np.ndarray,
                 mean_order_value: float, hours: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per channel, (person, ts) of the online orders its spend caused: a Poisson number a day with the
    expected revenue as mean, from alive people at random, at online hours."""
    candidates = np.flatnonzero(alive)
    out = []
    for c in range(revenue.shape[1]):
        count = rng.poisson(revenue[:, c] / mean_order_value) if len(candidates) else np.zeros(len(days), np.int64)
        day = np.repeat(days, count)
        person = candidates[rng.integers(0, len(candidates), len(day))] if len(candidates) else day[:0]
        ts = day * DAY_S + local_time_of_day(rng, len(day), hours)
        order = np.argsort(ts, kind="stable")
        out.append((person[order].astype(np.int64), ts[order]))
    return out
