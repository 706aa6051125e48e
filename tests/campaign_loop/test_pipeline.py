"""The cycle arithmetic shared by the DAG and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime

from campaign_loop.config import Settings
from campaign_loop.pipeline import cycle_of_logical_date, logical_date_of_cycle, settings_for_run


def test_a_run_works_on_the_cycle_that_just_ended() -> None:
    settings = Settings(start_date=date(2026, 1, 5))
    assert cycle_of_logical_date(settings, datetime(2026, 1, 12, 6, tzinfo=UTC)) == 0
    assert cycle_of_logical_date(settings, date(2026, 1, 19)) == 1


def test_logical_dates_of_cycles_round_trip() -> None:
    settings = Settings()
    for cycle in range(10):
        assert cycle_of_logical_date(settings, logical_date_of_cycle(settings, cycle)) == cycle


def test_run_params_override_settings_by_the_same_name() -> None:
    settings = settings_for_run({"customers": 500, "budget": 123.0, "holdout_share": 0.25, "unrelated": 1})
    assert (settings.customers, settings.budget, settings.holdout_share) == (500, 123.0, 0.25)
