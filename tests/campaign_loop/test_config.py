"""Settings: defaults run out of the box, every key is overridable by environment, bad values are named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from campaign_loop.config import Settings, cycle_id, load_settings


def test_defaults_put_all_state_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMPAIGN_LOOP_HOME", raising=False)
    settings = Settings()
    assert settings.root == Path("var").resolve()
    for path in (settings.landing_dir, settings.quarantine_dir, settings.warehouse_path, settings.exports_dir,
                 settings.mlflow_dir, settings.airflow_home, settings.reports_dir, settings.truth_dir):
        assert path.is_relative_to(settings.root)


def test_every_key_is_overridable_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAMPAIGN_LOOP_HOME", str(tmp_path))
    monkeypatch.setenv("CAMPAIGN_LOOP_CUSTOMERS", "1234")
    monkeypatch.setenv("CAMPAIGN_LOOP_HOLDOUT_SHARE", "0.2")
    monkeypatch.setenv("CAMPAIGN_LOOP_FILE_FORMAT", "parquet")
    settings = Settings()
    assert (settings.root, settings.customers, settings.holdout_share, settings.file_format) == (
        tmp_path, 1234, 0.2, "parquet")


def test_explicit_overrides_beat_environment_and_none_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGN_LOOP_SEED", "7")
    assert load_settings(seed=None).seed == 7
    assert load_settings(seed=9).seed == 9


def test_invalid_values_are_rejected_with_the_key_named() -> None:
    with pytest.raises(ValidationError, match="holdout_share"):
        Settings(holdout_share=0.9)
    with pytest.raises(ValidationError, match="Monday"):
        Settings(start_date=date(2026, 1, 6))


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().customers = 5  # type: ignore[misc]


def test_cycles_map_to_days_and_back() -> None:
    settings = Settings(start_date=date(2026, 1, 5), cycle_days=7)
    assert settings.cycle_start(2) == date(2026, 1, 19)
    assert settings.cycle_index(date(2026, 1, 25)) == 2
    assert cycle_id(settings.cycle_start(0)) == "2026-01-05"
    with pytest.raises(ValueError, match="before start_date"):
        settings.cycle_index(date(2026, 1, 4))
