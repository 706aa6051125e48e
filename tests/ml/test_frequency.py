"""Each customer's frequency cap learned from fatigue (ml.frequency), and the design that respects it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml.decide import DesignConfig, design_campaign
from ml.frequency import POOLED, fit_fatigue, frequency_caps, with_frequency_caps
from tests.ml.test_decide import make_world


def synthetic_sends(rates: dict[str, float], n: int, seed: int, base_uplift: float = 0.04) -> pd.DataFrame:
    """Randomised sends whose uplift is ``base_uplift / (1 + rate * k)`` per segment: planned counts 0-3, each
    plan treated with probability 0.9 (the holdout). The outcome is each send's purchase probability, the limit
    of many sends: at a retailer's few thousand holdout members a fitted rate is mostly noise (bench/RESULTS.md,
    "Frequency cap learned from fatigue"), and these tests check what the fit recovers, not the noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for segment, rate in rates.items():
        planned = rng.integers(0, 4, n)
        contacts = rng.binomial(planned, 0.9)
        treated = rng.random(n) < 0.9
        p = 0.05 + np.where(treated, base_uplift / (1 + rate * contacts), 0.0)
        parts.append(pd.DataFrame({"customer_id": [f"{segment}{i}" for i in range(n)], "segment": segment,
                                   "planned_before": planned, "contacts_before": contacts,
                                   "is_treatment": treated, "is_converted": p}))
    return pd.concat(parts, ignore_index=True)


def test_a_segment_that_fatigues_more_gets_lower_caps() -> None:
    fatigue = fit_fatigue(synthetic_sends({"fast": 2.0, "slow": 0.0}, 400_000, 1))
    # Each segment is shrunk toward the pooled rate, which lies between them.
    assert fatigue.rate["slow"] < fatigue.rate[POOLED] < fatigue.rate["fast"]
    assert fatigue.rate["fast"] > 0.5
    world = make_world(2000, 4).assign(segment=lambda d: np.where(d.index % 2 == 0, "fast", "slow"))
    config = DesignConfig.from_settings(Settings(budget=1e9, contact_cap=4), "2026-01-12")
    caps = pd.Series(frequency_caps(world, fatigue, config), index=world.index)
    assert caps.between(1, config.contact_cap).all()
    assert caps[world["segment"] == "fast"].mean() < caps[world["segment"] == "slow"].mean()


def test_without_fatigue_every_cap_is_the_global_one_and_the_plan_is_unchanged() -> None:
    none = fit_fatigue(synthetic_sends({"x": 0.0, "y": 0.0}, 20_000, 2))
    assert none.rate == {POOLED: 0.0, "x": 0.0, "y": 0.0}
    world = make_world(800, 5)
    config = DesignConfig.from_settings(Settings(budget=300.0), "2026-01-12")
    capped = with_frequency_caps(world, none, config)
    assert (capped["frequency_cap"] == config.contact_cap).all()
    assert design_campaign(capped, config).rows.equals(design_campaign(world, config).rows)


def test_the_design_contacts_nobody_at_their_own_cap_and_counts_them() -> None:
    world = make_world(800, 6).assign(contacts_last_30d=lambda d: d.index % 3)  # 0, 1 or 2 contacts
    config = DesignConfig.from_settings(Settings(budget=1e9), "2026-01-12")
    world = world.assign(frequency_cap=np.where(world.index % 2 == 0, 1, np.nan))  # half capped at 1, half none
    plan = design_campaign(world, config)
    planned = world.set_index("customer_id").loc[plan.rows["customer_id"]]
    assert not (planned["contacts_last_30d"] >= planned["frequency_cap"]).any()
    assert (planned["frequency_cap"].isna() & (planned["contacts_last_30d"] > 0)).any()
    reach = plan.summary["reach"]
    assert plan.summary["frequency_capped"] == reach["under_contact_cap"] - reach["under_frequency_cap"] > 0
    from ml.export import _reach_lines

    assert any(f"Frequency caps: {plan.summary['frequency_capped']:,} customers" in line
               for line in _reach_lines(plan.summary))


@pytest.mark.parametrize(("world", "fatigued"), [("d", True), ("a", False)])
def test_fatigue_learned_in_a_simulated_world(tmp_path: Path, world: str, fatigued: bool) -> None:
    """World d's effects fade with recent contacts and world a's do not: fitted on each send's true purchase
    probability in its arm (the limit of many sends), the rate is positive in d only."""
    from bench.frequency_cap import design, observed_sends
    from sim.period import simulate_period

    settings = Settings(home=tmp_path, customers=4000, seed=11, world=world, budget=200.0)
    simulate_period(settings, 0)
    for cycle in range(1, 5):
        simulate_period(settings, cycle, design(settings, cycle, 0.5).rows)
    rate = fit_fatigue(observed_sends(settings, range(1, 5), expected=True)).rate[POOLED]
    assert (rate > 0.1) if fatigued else (rate < 0.1)


def test_the_sends_are_read_from_the_marts(synthetic_home: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    from ml.frequency import SEND_COLUMNS, warehouse_sends

    home, frames = synthetic_home
    sends = warehouse_sends(Settings(home=home).warehouse_path, schema="marts")
    assert tuple(sends.columns) == SEND_COLUMNS
    action_sends = frames["fct_action_sends"]
    assert len(sends) == int((action_sends["customer_id"].notna() & action_sends["arm"].notna()).sum())
    assert (sends["contacts_before"] <= sends["planned_before"]).all()
    assert sends["planned_before"].max() > 0
    fit_fatigue(sends)  # the marts' sends fit without error
