"""The latent response class: what behaviour can tell about it, checked against the classes drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.world import PARAMS, PERSUADABLE, SLEEPING_DOG, SURE_THING, class_probabilities, draw_people


def test_class_probabilities_match_the_drawn_classes_bin_by_bin() -> None:
    people = draw_people(np.random.default_rng(3), 200_000, 0, np.zeros(200_000, dtype=np.int64))
    persuadable, sleeping_dog = class_probabilities(people)
    rest = people["response_class"] != SURE_THING
    frame = pd.DataFrame({
        "p": persuadable[rest], "d": sleeping_dog[rest],
        "is_p": people["response_class"][rest] == PERSUADABLE, "is_d": people["response_class"][rest] == SLEEPING_DOG,
    })
    by_bin = frame.groupby(pd.qcut(frame["p"], 10), observed=True)[["p", "is_p", "d", "is_d"]].mean()
    # ~17,000 people per bin: a binomial share has a standard error under 0.004.
    assert np.abs(by_bin["p"] - by_bin["is_p"]).max() < 0.015
    assert np.abs(by_bin["d"] - by_bin["is_d"]).max() < 0.015
    # The traits move the odds a lot (that is what makes persuadables findable), yet never settle them.
    assert by_bin["is_p"].iloc[0] < 0.12 and by_bin["is_p"].iloc[-1] > 0.5
    assert abs(frame["is_p"].mean() - PARAMS.persuadable_share) < 0.01


def test_without_correlation_the_traits_say_nothing_about_the_class() -> None:
    from dataclasses import replace

    people = draw_people(np.random.default_rng(4), 1_000, 0, np.zeros(1_000, dtype=np.int64))
    persuadable, sleeping_dog = class_probabilities(people, replace(PARAMS, response_correlation=0.0))
    assert np.allclose(persuadable, PARAMS.persuadable_share) and np.allclose(sleeping_dog, PARAMS.sleeping_dog_share)
