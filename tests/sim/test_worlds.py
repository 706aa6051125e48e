"""The family of worlds (sim/worlds.py): each world's true effects have the structure it claims."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from sim import simulate_period
from sim.behaviour import baseline_probability, uplift
from sim.oracle import effects_at_start
from sim.world import PERSUADABLE, WorldStore, draw_people
from sim.worlds import CONTACT_LOAD, WORLDS, WorldContext, recency_response, world_c_classes

NOW = 1_800_000_000
WEEK_S = 7 * 86_400
OFFERS = {"message": ("none", 0.0), "pct10": ("percent_off", 10.0), "pct20": ("percent_off", 20.0)}


@pytest.fixture(scope="module")
def people() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    n = 8_000
    out = draw_people(rng, n, 0, np.full(n, NOW - 400 * 86_400))
    # A history's spread of last purchases: most bought within a year, some never.
    weeks = rng.exponential(14.0, n)
    out["last_purchase"] = np.where(rng.random(n) < 0.85, NOW - (weeks * WEEK_S).astype(np.int64), -1)
    return out


def _uplift(people: dict[str, np.ndarray], world: str, offer: str = "pct10", channel: str = "email") -> np.ndarray:
    base = baseline_probability(people, 1.0)
    return uplift(people, base, *OFFERS[offer], channel, world=WorldContext(world, 7, NOW))


def _open_rate(people: dict[str, np.ndarray], channel: str = "email") -> np.ndarray:
    return people["open_prop"] * people[f"aff_{channel}"]  # what sim.campaigns.engage opens with


def test_world_a_is_the_default_and_the_unchanged_response(people) -> None:
    assert Settings().world == "a"
    base = baseline_probability(people, 1.0)
    for offer in OFFERS:
        before = uplift(people, base, *OFFERS[offer], "sms")
        assert np.array_equal(before, uplift(people, base, *OFFERS[offer], "sms", world=WorldContext("a", 7, NOW)))
    assert np.corrcoef(_uplift(people, "a"), _open_rate(people))[0, 1] > 0.15  # the structure b removes


def test_world_b_effects_follow_price_and_recency_not_opens(people) -> None:
    for channel in ("email", "push"):
        effect = _uplift(people, "b", channel=channel)
        assert abs(np.corrcoef(effect, _open_rate(people, channel))[0, 1]) < 0.04
        assert abs(np.corrcoef(effect, people[f"aff_{channel}"])[0, 1]) < 0.04
        assert np.corrcoef(effect, people["price_sens"])[0, 1] > 0.25
        assert np.corrcoef(effect, recency_response(people, NOW))[0, 1] > 0.15
    # The same person gains the same on every channel: no channel preference to find.
    reachable = ~people["unreachable_email"] & ~people["unreachable_push"]
    assert np.allclose(_uplift(people, "b", channel="email")[reachable], _uplift(people, "b", channel="push")[reachable])


def test_world_c_has_sleeping_dogs_and_discount_only_responders(people) -> None:
    effects = np.column_stack([_uplift(people, "c", offer) for offer in OFFERS])
    harmed = (effects < 0).all(axis=1)
    assert 0.12 < harmed.mean() < 0.30
    assert (effects[harmed].max(axis=1) < 0).all()  # no offer buys a sleeping dog back
    classes, discount_only = world_c_classes(people, WorldContext("c", 7, NOW))
    moved = discount_only & (effects[:, 2] > 0)
    assert discount_only.sum() > 0.5 * (classes == PERSUADABLE).sum()
    assert moved.sum() > 100
    assert (effects[moved, 0] == 0).all()  # a message moves them not at all
    assert (effects[moved, 2] > effects[moved, 1]).all()  # the bigger discount moves them more
    # The world's message, on average, costs more than it earns; world a's does not.
    assert effects[:, 0].mean() < 0 < _uplift(people, "a", "message").mean()


def test_world_d_effects_fall_with_recent_contacts(people) -> None:
    fresh = _uplift(people, "d")
    assert np.array_equal(fresh, _uplift(people, "a"))  # no contacts yet: world a
    tired = dict(people, **{CONTACT_LOAD: np.full(len(fresh), 2.0, dtype=np.float32)})
    gains = fresh > 0
    assert gains.sum() > 500
    np.testing.assert_allclose(_uplift(tired, "d")[gains], fresh[gains] / 3.0, rtol=1e-5)


def test_world_d_carries_each_contact_into_the_next_cycle(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, customers=1_500, world="d", dirt=0.0, newsletter_history=0)
    simulate_period(settings, 0)
    people = WorldStore(settings).load_people(0)
    outcomes = pd.read_parquet(settings.truth_dir / "outcomes" / f"{settings.cycle_key(0)}.parquet")
    treated = outcomes.loc[outcomes["arm"] == "treatment", "person_id"].to_numpy()
    untouched = np.setdiff1d(outcomes["person_id"].to_numpy(), treated)
    assert (people[CONTACT_LOAD][untouched] == 0).all()
    assert 0.9 * len(treated) < (people[CONTACT_LOAD][treated] > 0).sum() <= len(treated)  # bounces do not count
    # The oracle's view of cycle 1 sees the same fatigue: the contacted persuadables' effects are
    # world a's divided by 1 + load.
    effects, _ = effects_at_start(settings, 1)
    world_a, _ = effects_at_start(settings.model_copy(update={"world": "a"}), 1)
    column = "uplift__pct10__email"
    load = np.concatenate([people[CONTACT_LOAD], np.zeros(len(effects) - len(people[CONTACT_LOAD]))])
    gained = (world_a[column] > 0).to_numpy() & (load > 0)
    assert gained.sum() > 0
    np.testing.assert_allclose(effects[column].to_numpy()[gained], world_a[column].to_numpy()[gained] / (1 + load[gained]),
                               rtol=1e-5)


def test_a_home_of_one_world_refuses_another(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, customers=300, world="b", newsletter_history=0)
    simulate_period(settings, 0)
    with pytest.raises(ValueError, match="world"):
        simulate_period(settings.model_copy(update={"world": "a"}), 1)


def test_unknown_world_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings(world="e")
    with pytest.raises(ValueError, match="unknown world"):
        WorldContext("e")
    assert set(WORLDS) == {"a", "b", "c", "d", "r"}


def test_world_r_loses_defectors_that_world_a_keeps_and_writes_their_truth(tmp_path: Path) -> None:
    alive, effects = {}, {}
    for world in ("a", "r"):
        settings = Settings(home=tmp_path / world, customers=1000, seed=5, world=world, history_weeks=8)
        simulate_period(settings, 0)
        alive[world] = WorldStore(settings).load_people(0)["alive"]
        effects[world] = pd.read_parquet(settings.truth_dir / "effects" / f"{settings.cycle_key(0)}.parquet")
    # The same draws but defection's own stream: world r's alive are a strict subset of world a's.
    assert not (alive["r"] & ~alive["a"]).any() and alive["r"].sum() < alive["a"].sum()
    retention = [c for c in effects["r"] if c.startswith("retention__")]
    assert "defection_probability" in effects["r"] and len(retention) == 12
    assert not any(c.startswith("retention__") or c == "defection_probability" for c in effects["a"])
    assert (effects["r"]["retention__pct20__email"] >= effects["r"]["retention__message__email"]).all()


ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ("ingest", "ml", "dbt_project", "expectations", "dags", "campaign_loop")
READS_WORLD = re.compile(r"(?<!sim)\.world\b|\[\s*[\"']world[\"']\s*\]|get\(\s*[\"']world[\"']|CAMPAIGN_LOOP_WORLD|var\(\s*[\"']world")


def test_the_platform_never_reads_which_world_it_is_in() -> None:
    readers = []
    for package in PLATFORM:
        for path in (ROOT / package).rglob("*"):
            if path.suffix not in (".py", ".sql", ".yml", ".yaml") or "target" in path.parts:
                continue
            if path == ROOT / "campaign_loop" / "config.py":
                continue  # declares it
            if READS_WORLD.search(path.read_text(errors="ignore")):
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []
