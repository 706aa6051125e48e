"""Channel preference from opens, and the randomised check of how much of it to use."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml import engagement


def _opens(rng: np.random.Generator, rate: np.ndarray, sends: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"sends_email_365d": sends, "opens_email_365d": rng.binomial(sends, rate)})


def test_beta_binomial_prior_recovers_the_rates_distribution() -> None:
    rng = np.random.default_rng(3)
    rate = rng.beta(2.0, 8.0, 40_000)
    frame = _opens(rng, rate, rng.integers(1, 12, 40_000))
    a, b = engagement.beta_binomial_prior(frame["sends_email_365d"].to_numpy(), frame["opens_email_365d"].to_numpy())
    assert a / (a + b) == pytest.approx(0.2, abs=0.005)
    assert a + b == pytest.approx(10.0, rel=0.15)


def test_preference_ranks_customers_by_their_rate_and_leaves_the_unknown_at_one() -> None:
    rng = np.random.default_rng(4)
    rate = rng.beta(2.0, 8.0, 20_000)
    sends = np.where(np.arange(20_000) < 1_000, 0, 8)
    frame = _opens(rng, rate, sends).assign(sends_sms_365d=sends, opens_sms_365d=0)
    preference = engagement.channel_preference(frame, ("email", "sms", "push"))
    email = preference["preference_email"].to_numpy()
    assert np.allclose(email[:1_000], 1.0)  # no send: the prior's mean
    assert np.corrcoef(email[1_000:], rate[1_000:])[0, 1] > 0.6
    assert email[1_000:].mean() == pytest.approx(1.0, abs=0.02)
    assert (preference["preference_sms"] == 1.0).all()  # a channel without opens tells nothing
    assert (preference["preference_push"] == 1.0).all()  # no columns for it at all


def test_preference_slope_recovers_the_interaction_of_a_randomised_experiment() -> None:
    rng = np.random.default_rng(5)
    n = 400_000
    preference = rng.gamma(3.0, 1.0 / 3.0, n)
    treated = rng.random(n) < 0.5
    level = np.full(n, 0.02)
    # The last case: customers who prefer the channel buy more anyway, but respond no more to a contact.
    for beta, gamma in ((1.0, 0.0), (0.0, 0.0), (0.0, 0.01)):
        p = 0.05 + gamma * (preference - 1.0) + treated * level * (1.0 + beta * (preference - 1.0))
        above = (rng.random(n) < p) - 0.05
        slope, se = engagement.preference_slope(above, treated, level, preference)
        assert abs(slope - beta) < 3 * se
        assert se < 0.2


def test_preference_slope_without_both_arms_or_variation_is_unknown() -> None:
    assert engagement.preference_slope(np.zeros(4), np.ones(4, bool), np.full(4, 0.01), np.full(4, 2.0)) == (0.0, math.inf)
    treated = np.array([True, False, True, False])
    assert engagement.preference_slope(np.zeros(4), treated, np.full(4, 0.01), np.ones(4)) == (0.0, math.inf)


def test_slope_posterior_weighs_the_evidence_against_the_prior() -> None:
    mean, sd = engagement.SLOPE_PRIOR
    assert engagement.slope_posterior(mean, 0.3) == pytest.approx(min(mean, 1.0))
    # A slope of 0 measured as precisely as the prior leaves half of it; much more precisely, little.
    assert engagement.slope_posterior(0.0, sd) == pytest.approx(mean / 2)
    assert engagement.slope_posterior(0.0, sd / 10) < 0.02
    # Noisy evidence hardly moves it; a weight never leaves [0, 1].
    assert engagement.slope_posterior(0.0, 10 * sd) > 0.95 * mean
    assert engagement.slope_posterior(-5.0, 0.01) == 0.0 and engagement.slope_posterior(3.0, 0.01) == 1.0
    assert engagement.slope_posterior(0.0, math.inf) == pytest.approx(min(mean, 1.0))
