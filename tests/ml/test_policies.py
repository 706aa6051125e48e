"""Baseline policies keep consent and budget; the loop-value benchmark writes the rows it promises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml.decide import DesignConfig
from ml.policies import BASELINES, POLICIES, bench_loop_value
from tests.ml.test_decide import make_world


@pytest.mark.parametrize("policy", sorted(BASELINES))
@pytest.mark.parametrize("budget", [0.5, 5.0, 50.0, 1e6])
def test_baselines_respect_consent_and_budget(policy: str, budget: float) -> None:
    world = make_world(600, seed=3)
    world["monetary_value"] = world["expected_spend"]
    config = DesignConfig(cycle_id="2026-02-02", budget=budget, channel_budgets={"sms": budget / 4}, seed=1)
    plan = BASELINES[policy](world, config)
    rows = plan.rows
    assert rows["customer_id"].is_unique
    # Consent is hard, on both arms.
    by_id = world.set_index("customer_id")
    consented = [bool(by_id.loc[c, f"consent_{ch}"]) is True for c, ch in zip(rows["customer_id"], rows["channel"], strict=True)]
    assert all(consented)
    # Nobody unsubscribed or at the contact cap, nobody with missing inputs.
    people = by_id.loc[rows["customer_id"]]
    assert not people["unsubscribed_recently"].fillna(True).astype(bool).any()
    assert (people["contacts_last_30d"] < config.contact_cap).all()
    # The budget holds on all planned rows (control arm included), per channel too.
    assert rows["expected_cost"].sum() <= budget + 1e-6
    assert rows.loc[rows["channel"] == "sms", "expected_cost"].sum() <= budget / 4 + 1e-6
    if len(rows) >= 10:
        assert 0.05 <= (rows["arm"] == "control").mean() <= 0.25
    assert set(rows["arm"]) <= {"treatment", "control"}
    assert np.isfinite(rows["assignment_probability"]).all()


def test_ranking_baselines_take_their_best_customers_first() -> None:
    world = make_world(400, seed=5)
    world["monetary_value"] = world["expected_spend"]
    config = DesignConfig(cycle_id="2026-02-02", budget=5.0, seed=1)
    plan = BASELINES["propensity"](world, config)
    chosen = world["customer_id"].isin(plan.rows["customer_id"])
    reachable = world[[f"consent_{c}" for c in config.channels]].fillna(False).any(axis=1) & \
        ~world["unsubscribed_recently"].fillna(True).astype(bool) & (world["contacts_last_30d"] < 4) & world["p_buy"].notna() \
        & world["expected_spend"].notna() & world["margin_rate"].notna()
    assert world.loc[chosen, "p_buy"].mean() > world.loc[reachable & ~chosen, "p_buy"].mean()


@pytest.mark.timeout(120)
def test_bench_loop_value_writes_the_rows(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "settings", customers=300, seed=11)
    json_path = tmp_path / "loop.json"
    rows = bench_loop_value(settings, 2, json_path, ("random", "oracle"), out_dir=tmp_path / "worlds",
                            log=lambda *_: None)
    written = json.loads(json_path.read_text())
    assert written == json.loads(json.dumps(rows, default=str))
    assert {(r["policy"], r["cycle"]) for r in written} == {(p, c) for p in ("random", "oracle") for c in (1, 2)}
    for row in written:
        assert {"policy", "cycle", "incremental_profit", "ratio_to_oracle"} <= set(row)
    oracle = pd.DataFrame(written).query("policy == 'oracle'")
    # The oracle policy executes the oracle plan: it earns exactly what the oracle would.
    assert np.allclose(oracle["incremental_profit"], oracle["oracle_incremental_profit"])
    assert set(POLICIES) >= {"random", "rfm", "propensity", "platform", "oracle"}
