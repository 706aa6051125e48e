"""Markov removal effects against a hand computation, and the holdouts' incrementality per channel."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ml.attribution import (
    attribution_vs_incrementality,
    conversion_probability,
    holdout_incrementality,
    markov_attribution,
    rule_attribution,
    transition_counts,
)

# Three journeys: email>sms converts (revenue 30), email alone does not, sms alone converts (revenue 10).
# Transitions: start->email 2/3, start->sms 1/3; email->sms 1/2, email->null 1/2; sms->conversion 1.
# P(conversion) = 2/3 * 1/2 + 1/3 = 2/3 (the observed rate). Without email: 1/3, removal effect 1/2.
# Without sms: 0, removal effect 1. Shares 1/3 and 2/3 of the 2 conversions and 40 of revenue.
JOURNEYS = pd.DataFrame({"path": ["email>sms", "email", "sms"], "converted": [True, False, True],
                         "revenue": [30.0, 0.0, 10.0]})


def test_markov_removal_effects_match_the_hand_computation() -> None:
    counts = transition_counts([(["email", "sms"], True, 1.0), (["email"], False, 1.0), (["sms"], True, 1.0)])
    assert conversion_probability(counts) == pytest.approx(2 / 3)
    assert conversion_probability(counts, "email") == pytest.approx(1 / 3)
    assert conversion_probability(counts, "sms") == pytest.approx(0.0)

    result = markov_attribution(JOURNEYS).set_index("channel")
    assert result.loc["email", "removal_effect"] == pytest.approx(0.5)
    assert result.loc["sms", "removal_effect"] == pytest.approx(1.0)
    assert result["markov_share"].to_dict() == pytest.approx({"email": 1 / 3, "sms": 2 / 3})
    assert result["markov_conversions"].to_dict() == pytest.approx({"email": 2 / 3, "sms": 4 / 3})
    assert result["markov_revenue"].to_dict() == pytest.approx({"email": 40 / 3, "sms": 80 / 3})


def test_a_loop_and_journey_weights_are_solved_exactly() -> None:
    # push->push repeats: start->push 1; out of push: push 1, conversion 1, null 2 (of 4 transitions), so
    # b = 1/4 + b/4: b = 1/3, the observed conversion rate.
    journeys = pd.DataFrame({"path": ["push>push", "push", "push"], "converted": [False, True, False],
                             "revenue": [0.0, 5.0, 0.0], "journeys": [1, 1, 1]})
    counts = transition_counts([(["push", "push"], False, 1.0), (["push"], True, 1.0), (["push"], False, 1.0)])
    assert conversion_probability(counts) == pytest.approx(1 / 3)
    assert markov_attribution(journeys).set_index("channel").loc["push", "removal_effect"] == pytest.approx(1.0)
    assert markov_attribution(journeys.assign(converted=False)).empty


def test_holdout_incrementality_sums_campaigns_and_their_variances() -> None:
    lift = pd.DataFrame({
        "campaign_id": ["c1", "c2", "c2", "c3"], "metric": ["converted", "converted", "revenue", "converted"],
        "lift": [0.01, 0.02, 5.0, -0.01], "lift_ci_low": [0.005, 0.01, 1.0, -0.03],
        "lift_ci_high": [0.015, 0.03, 9.0, 0.01], "n_arm": [1000, 500, 500, 200],
    })
    channels = pd.Series({"c1": "email", "c2": "email", "c3": "sms"})
    out = holdout_incrementality(lift, channels).set_index("channel")
    se = 0.005 / 1.959963984540054 * 1000  # each email campaign's standard error, in conversions
    assert out.loc["email", "incremental_conversions"] == pytest.approx(20.0)
    assert out.loc["email", "incremental_ci_high"] - 20.0 == pytest.approx(1.959963984540054 * math.sqrt(2) * se)
    assert out.loc["email", "experiments"] == 2 and out.loc["sms", "incremental_conversions"] == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="c9"):
        holdout_incrementality(lift.assign(campaign_id="c9"), channels)

    rules = rule_attribution(JOURNEYS)
    # email>sms converts: first touch email, last touch sms, linear and position half each; sms alone: sms.
    assert rules.set_index("channel").to_dict("index") == {
        "email": {"first_touch_conversions": 1.0, "last_touch_conversions": 0.0, "linear_conversions": 0.5,
                  "position_conversions": 0.5},
        "sms": {"first_touch_conversions": 1.0, "last_touch_conversions": 2.0, "linear_conversions": 1.5,
                "position_conversions": 1.5}}
    table = attribution_vs_incrementality(markov_attribution(JOURNEYS), rules, out.reset_index()).set_index("channel")
    assert table.loc["email", "markov_to_incremental"] == pytest.approx((2 / 3) / 20.0)
    assert table.loc["email", "linear_to_incremental"] == pytest.approx(0.5 / 20.0)
    assert math.isnan(table.loc["sms", "markov_to_incremental"])  # measured at most zero: no ratio
    assert not table.loc["email", "markov_within_incremental_ci"]
