"""Each customer's preference for a channel, read from their opens there, and how much of it the
randomised campaigns confirm.

:func:`channel_preference` gives every customer and channel the customer's open rate on the channel
relative to the channel's average (1 = average), as an empirical-Bayes posterior mean: opens of the
sends of the past year are Binomial around the customer's rate, and the rates of all customers on the
channel are the Beta prior (fitted by maximum likelihood, beta-binomial). A customer with few sends
stays near 1; a channel that reports no opens (SMS) is 1 for everyone.

:func:`preference_weight` asks the randomised assignments whether an action works better on customers
who prefer its channel: the slope ``beta`` of ``effect = level * (1 + beta * (preference - 1))``, fitted
on every assignment's outcome above its predicted baseline (the baseline free to move with the
preference too: engaged customers may buy more anyway), with its standard error, and combined with a
prior centred on 1 (:data:`SLOPE_PRIOR`). The scorer multiplies each action's level by
``1 + weight * (preference - 1)``; a weight of 0 leaves every customer at the level.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from campaign_loop.config import CHANNELS

# The slope's prior, (mean, standard deviation). A message moves a customer only if it is seen, so its
# effect scales with how often the customer opens on the channel: slope 1, the CRM practice of sending
# where customers engage. Randomised evidence moves it: a slope measured at 0 with the ~0.3 standard error
# of a large campaign history leaves a quarter of the prior, and the ~0.65 of six weekly cycles at 100k
# customers, which cannot tell 1 from 0, leaves about two thirds.
SLOPE_PRIOR = (1.0, 0.5)


def sends_column(channel: str) -> str:
    return f"sends_{channel}_365d"


def opens_column(channel: str) -> str:
    return f"opens_{channel}_365d"


def preference_column(channel: str) -> str:
    return f"preference_{channel}"


def beta_binomial_prior(sends: np.ndarray, opens: np.ndarray) -> tuple[float, float] | None:
    """Maximum-likelihood Beta(a, b) of the open rates behind ``opens`` of ``sends`` (customers with sends);
    None without any send or any open (nothing to learn)."""
    from scipy import optimize, stats

    sends, opens = np.asarray(sends, dtype=np.int64), np.asarray(opens, dtype=np.int64)
    has = sends > 0
    if not has.any() or opens[has].sum() == 0:
        return None
    # Customers share a handful of (sends, opens) pairs: the likelihood sums over the distinct pairs.
    pairs, weight = np.unique(np.column_stack([sends[has], opens[has]]), axis=0, return_counts=True)
    n, k = pairs[:, 0], pairs[:, 1]
    mean = k.sum() / n.sum()

    def loss(theta: np.ndarray) -> float:
        a, b = np.exp(theta)
        return -float((weight * stats.betabinom.logpmf(k, n, a, b)).sum())

    # Start from a Beta with the pooled mean and a moderate concentration; bounds keep the search finite
    # when the rates hardly vary (the concentration then runs to its upper bound: everyone at the mean).
    start = np.log([mean * 10.0, (1.0 - mean) * 10.0])
    fit = optimize.minimize(loss, start, method="L-BFGS-B", bounds=[(-6.0, 9.0), (-6.0, 9.0)])
    a, b = np.exp(fit.x)
    return float(a), float(b)


def channel_preference(frame: pd.DataFrame, channels: tuple[str, ...] = CHANNELS) -> pd.DataFrame:
    """``preference_<channel>`` per row of ``frame`` (which carries ``sends_<channel>_365d`` and
    ``opens_<channel>_365d``): the posterior mean of the customer's open rate on the channel over the
    channel's mean rate. Rows are pooled into one prior, so pass one as-of date at a time."""
    out = pd.DataFrame(index=frame.index)
    for channel in channels:
        if sends_column(channel) not in frame or opens_column(channel) not in frame:
            out[preference_column(channel)] = 1.0  # a source without campaign engagement: nothing known
            continue
        sends = frame[sends_column(channel)].fillna(0).to_numpy(np.int64)
        opens = frame[opens_column(channel)].fillna(0).to_numpy(np.int64)
        prior = beta_binomial_prior(sends, opens)
        if prior is None:
            out[preference_column(channel)] = 1.0
            continue
        a, b = prior
        out[preference_column(channel)] = (a + opens) / (a + b + sends) / (a / (a + b))
    return out


def preference_by_date(frame: pd.DataFrame, channels: tuple[str, ...] = CHANNELS) -> pd.DataFrame:
    """:func:`channel_preference` of a frame of several as-of dates, each date with its own prior."""
    parts = [channel_preference(rows, channels) for _, rows in frame.groupby("as_of_date", sort=False)]
    return pd.concat(parts).reindex(frame.index) if parts else pd.DataFrame(index=frame.index)


def action_preference(preference: pd.DataFrame, channel: pd.Series) -> np.ndarray:
    """Each row's preference for the channel in ``channel`` (1 for a channel it has no column for)."""
    out = np.ones(len(channel))
    for c in CHANNELS:
        column = preference_column(c)
        if column in preference:
            on = (channel == c).to_numpy()
            out[on] = preference[column].to_numpy(float)[on]
    return out


def preference_factor(assignments: pd.DataFrame, weight: float) -> np.ndarray:
    """Each assignment's ``1 + weight * (preference - 1)`` for its action's channel, as of its date:
    its effect relative to its action's level under the scorer's rule."""
    if weight == 0 or assignments.empty:
        return np.ones(len(assignments))
    preference = preference_by_date(assignments)
    if preference.empty:
        return np.ones(len(assignments))
    return 1.0 + weight * (action_preference(preference, assignments["channel"]) - 1.0)


def preference_slope(above: np.ndarray, treated: np.ndarray, level: np.ndarray, preference: np.ndarray) -> tuple[float, float]:
    """(beta, standard error) of ``above = c + gamma * (preference - 1) + treated * level * (1 + beta * (preference - 1))``.

    ``above``: each assignment's outcome above its predicted baseline; ``level``: the measured average effect
    of each row's action; ``preference``: each row's preference for its action's channel. ``gamma`` lets the
    baseline itself move with the preference (engaged customers may buy more anyway), so only the treated
    rows' excess over the holdouts' at the same preference counts for ``beta``. Least squares of the
    residual after the level, with heteroskedasticity-robust (HC0) standard errors; (0, inf) without both
    arms or without variation.
    """
    above, treated = np.asarray(above, dtype=float), np.asarray(treated, dtype=bool)
    level = np.asarray(level, dtype=float)
    spread = np.asarray(preference, dtype=float) - 1.0
    if treated.all() or not treated.any():
        return 0.0, math.inf
    # Three regressors and a sandwich: numpy does it without taking statsmodels on as a dependency.
    x = np.column_stack([np.ones(len(above)), spread, treated * level * spread])
    residual = above - treated * level
    xtx = x.T @ x
    if np.linalg.matrix_rank(xtx) < 3:
        return 0.0, math.inf
    inverse = np.linalg.inv(xtx)
    coef = inverse @ (x.T @ residual)
    error = residual - x @ coef
    cov = inverse @ (x.T * error**2) @ x @ inverse
    return float(coef[2]), math.sqrt(float(cov[2, 2]))


def slope_posterior(slope: float, se: float, prior: tuple[float, float] = SLOPE_PRIOR) -> float:
    """The posterior mean of a slope under a normal prior and the measured (slope, standard error), in
    [0, 1]: the weight the scorer gives the preference (and, under ``ml.evaluate.RANKING_PRIOR``, an uplift
    champion's ranking). Without a finite error the prior's mean."""
    mean, sd = prior
    if not (math.isfinite(slope) and math.isfinite(se) and se > 0):
        return float(np.clip(mean, 0.0, 1.0))
    evidence, belief = se**-2, sd**-2
    return float(np.clip((evidence * slope + belief * mean) / (evidence + belief), 0.0, 1.0))


def preference_weight(assignments: pd.DataFrame, above: np.ndarray, levels: pd.Series) -> tuple[float, float, float]:
    """(weight, slope, standard error): how much of the channel preference to use, the randomised
    assignments' slope combined with :data:`SLOPE_PRIOR`.

    ``assignments``: :func:`ml.features.uplift_frame` rows; ``above``: their outcomes above the predicted
    baseline; ``levels``: each action's measured average effect, indexed ``uplift__<action>``.
    """
    preference = preference_by_date(assignments)
    if preference.empty:
        return 0.0, 0.0, math.inf
    level = ("uplift__" + assignments["action"]).map(levels).fillna(0.0).to_numpy(float)
    slope, se = preference_slope(
        above, assignments["treatment"].to_numpy() == 1, level,
        action_preference(preference, assignments["channel"]),
    )
    return slope_posterior(slope, se), slope, se
