"""The media mix model on a simulated world whose paid media sell with known ROAS (sim/media.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import Settings
from ml import mmm
from sim.media import MEDIA_RESPONSE
from sim.oracle import media_daily_rows, media_truth
from sim.period import PAID_MEDIA, simulate_period


@pytest.fixture(scope="module")
def media_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, mmm.MediaMixFit]:
    home: Path = tmp_path_factory.mktemp("media_world")
    settings = Settings(home=home, customers=10_000, seed=11, history_weeks=26, media_effect=True,
                        newsletter_history=0, dirt=0.0)
    simulate_period(settings, 0)
    frame = mmm.media_frame(media_daily_rows(settings), days=mmm.MediaMixConfig().days)
    return settings, mmm.fit_media_mix(frame)


def test_recovered_roas_lies_within_its_interval_for_most_channels(media_world) -> None:
    settings, fit = media_world
    summary = mmm.channel_summary(fit).set_index("channel")
    first, last = fit.frame[mmm.DATE].min().date(), fit.frame[mmm.DATE].max().date()
    truth = media_truth(settings, first, last).set_index("channel")["roas"].reindex(summary.index)

    covered = (summary["roas_low"] <= truth) & (truth <= summary["roas_high"])

    assert list(summary.index) == ["display", "search", "social"]
    assert covered.mean() >= 0.8, pd.concat([summary[["roas_low", "roas", "roas_high"]], truth.rename("true")], axis=1)
    assert mmm.diagnostics(fit)["max_r_hat"] <= 1.05


def test_reallocation_keeps_the_total_within_bounds_and_earns_more_on_the_fitted_curves(media_world) -> None:
    _, fit = media_world
    curves = mmm.ResponseCurves.from_fit(fit)
    current = fit.frame[fit.channels].tail(28).mean()

    plan = mmm.recommend_budgets(curves, current).set_index("channel")

    assert plan["recommended_daily_spend"].sum() == pytest.approx(current.sum(), rel=1e-6)
    assert plan["recommended_daily_revenue"].sum() >= plan["current_daily_revenue"].sum()
    assert np.all(plan["recommended_daily_spend"] >= 0.5 * plan["current_daily_spend"] - 1e-6)
    assert np.all(plan["recommended_daily_spend"] <= 1.5 * plan["current_daily_spend"] + 1e-6)
    # the logged model answers MLflow's predict with a revenue a day per channel
    assert list(curves.predict(fit.frame[fit.channels].tail(2)).columns) == fit.channels


def test_on_the_true_curves_reallocation_moves_money_from_display_to_the_steeper_channels() -> None:
    reference = np.array([v[0] for v in PAID_MEDIA.values()])
    truth = list(MEDIA_RESPONSE.values())
    curves = mmm.ResponseCurves(list(MEDIA_RESPONSE), beta=np.array([[r.beta for r in truth]]) * reference,
                                lam=np.array([[r.lam for r in truth]]), channel_scale=reference)

    plan = mmm.recommend_budgets(curves, pd.Series(reference, index=list(MEDIA_RESPONSE))).set_index("channel")

    # true marginal ROAS at the usual spend: search 1.9, social 1.6, display 0.8
    assert plan.loc["display", "recommended_daily_spend"] == pytest.approx(0.5 * reference[2], rel=1e-3)
    assert plan["recommended_daily_revenue"].sum() > plan["current_daily_revenue"].sum()


def test_a_frame_too_short_is_refused_with_its_length() -> None:
    days = pd.date_range("2026-01-05", periods=10)
    rows = pd.DataFrame({mmm.DATE: days.repeat(2), "channel": ["search", "social"] * 10, "spend": 1.0, mmm.REVENUE: 5.0})
    with pytest.raises(mmm.TooLittleData, match="10 days"):
        mmm.fit_media_mix(mmm.media_frame(rows))


def test_the_fit_is_registered_as_mmm_and_its_budgets_written(media_world, mlflow_store: str) -> None:
    from ml import registry
    from ml.mmm import recommendation_path, register_media_mix

    settings, fit = media_world
    cycle_id = settings.cycle_key(1)

    out = register_media_mix(settings, cycle_id, {"dbt_invocation_id": "test"}, fit)

    assert out["status"] == "promoted" and out["version"] == "1", out["reason"]
    assert recommendation_path(settings, cycle_id).is_file()
    assert {row["channel"] for row in out["budgets"]} == set(fit.channels)
    champion = registry.load_champion("mmm", flavor="sklearn")
    assert champion.predict(fit.frame[fit.channels].tail(1)).shape == (1, len(fit.channels))
