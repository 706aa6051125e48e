"""Settings: defaults run out of the box, every key is overridable by environment, bad values are named."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from campaign_loop.config import Settings, load_settings


def test_defaults_put_all_state_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMPAIGN_LOOP_HOME", raising=False)
    settings = Settings()
    assert settings.root == Path("var").resolve()
    for path in (settings.landing_dir, settings.quarantine_dir, settings.warehouse_path, settings.exports_dir,
                 settings.mlflow_dir, settings.airflow_home, settings.reports_dir, settings.truth_dir):
        assert path.is_relative_to(settings.root)


def test_every_key_is_overridable_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # key: (environment value, parsed value), every one away from its default
    overrides: dict[str, tuple[str, object]] = {
        "home": (str(tmp_path), tmp_path), "demo": ("false", False), "airflow_runner": ("dags_test", "dags_test"),
        "customers": ("1234", 1234), "seed": ("7", 7), "start_date": ("2026-03-02", date(2026, 3, 2)),
        "cycle_days": ("14", 14), "cycles": ("3", 3), "history_weeks": ("10", 10), "dirt": ("0.5", 0.5),
        "bau_contact_share": ("0.2", 0.2), "newsletter_history": ("3", 3), "file_format": ("parquet", "parquet"),
        "world": ("c", "c"), "send_hour_preference": ("true", True), "send_time": ("channel", "channel"),
        "send_window_start": ("9", 9), "send_window_end": ("20", 20), "media_effect": ("true", True),
        "media_mix": ("true", True), "media_budgets": ("1", True), "policy_choice": ("true", True),
        "quarantine_rate_max": ("0.1", 0.1), "budget": ("500", 500.0),
        "header_bytes_max": ("2048", 2048), "field_bytes_max": ("4096", 4096), "file_bytes_max": ("8192", 8192),
        "file_rows_max": ("7", 7), "raw_pii_retention_days": ("none", None),
        "channel_budgets": ("sms:50, email:200", {"sms": 50.0, "email": 200.0}), "holdout_share": ("0.2", 0.2),
        "min_detectable_lift": ("0.02", 0.02), "correction": ("dunnett", "dunnett"), "contact_cap": ("2", 2),
        "frequency_cap": ("customer", "customer"),
        "exploration": ("epsilon", "epsilon"), "epsilon": ("0.1", 0.1), "thompson_scale": ("0.5", 0.5),
        "uplift_pessimism": ("1", 1.0),
        "value_horizon_weeks": ("52", 52), "retention_effect": ("0.3", 0.3),
        "channel_preference": ("false", False),
        "offers": ("message,pct10", ("message", "pct10")), "kpi_alert_callback": ("alerts:send", "alerts:send"),
        "channels": ("email, sms, email", ("email", "sms")), "assume_consent": ("true", True), "approve_restatement": ("2026-01-05", ("2026-01-05",)),
        "timezone": ("Europe/London", "Europe/London"),
        "triggers": ("cart_abandonment, win_back", ("cart_abandonment", "win_back")), "trigger_holdout_share": ("0.3", 0.3),
        "closed_dates": ("2010-12-24..2010-12-26, 2011-01-01",
                         (date(2010, 12, 24), date(2010, 12, 25), date(2010, 12, 26), date(2011, 1, 1))),
        "default_margin_rate": ("0.25", 0.25),
        "promotion_mode": ("manual", "manual"), "faults": ("drop_source:pos_receipts", ("drop_source:pos_receipts",)),
        "airflow_database_url": ("postgresql+psycopg2://airflow@db/airflow", "postgresql+psycopg2://airflow@db/airflow"),
        "mlflow_database_url": ("postgresql://mlflow@db/mlflow", "postgresql://mlflow@db/mlflow"),
        "celery_broker_url": ("redis://broker:6380/1", "redis://broker:6380/1"), "celery_workers": ("3", 3),
        "celery_worker_concurrency": ("4", 4), "warehouse_pool_slots": ("2", 2),
        "task_heartbeat_timeout_seconds": ("20", 20), "task_retry_delay_seconds": ("5", 5),
    }
    assert set(overrides) == set(Settings.model_fields)
    for key, (text, _) in overrides.items():
        monkeypatch.setenv(f"CAMPAIGN_LOOP_{key.upper()}", text)
    settings = Settings()
    for key, (_, value) in overrides.items():
        assert getattr(settings, key) == value, key
    assert settings.root == tmp_path.resolve()


def test_explicit_overrides_beat_environment_and_none_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGN_LOOP_SEED", "7")
    assert load_settings(seed=None).seed == 7
    assert load_settings(seed=9).seed == 9


def test_invalid_values_are_rejected_with_the_key_named() -> None:
    with pytest.raises(ValidationError, match="holdout_share"):
        Settings(holdout_share=0.9)
    with pytest.raises(ValidationError, match="Monday"):
        Settings(start_date=date(2026, 1, 6))


def test_channels_are_a_subset_of_the_known_ones_and_carry_every_budget() -> None:
    assert Settings().channels == ("email", "push", "sms", "kakao")  # KakaoTalk available, not forced
    with pytest.raises(ValidationError, match="channels"):
        Settings(channels="email,fax")
    with pytest.raises(ValidationError, match="channels"):
        Settings(channels="")
    with pytest.raises(ValidationError, match=r"channel_budgets names \['kakao'\], which channels \(email,sms\)"):
        Settings(channels="email,sms", channel_budgets="sms:5,kakao:1")
    assert Settings(channels="email,sms", channel_budgets="sms:5").channel_budgets == {"sms": 5.0}


def test_timezone_is_an_iana_zone() -> None:
    assert Settings().timezone == "Asia/Seoul"  # the demo's retailer
    assert Settings(timezone="America/New_York").timezone == "America/New_York"
    for bad in ("Mars/Olympus_Mons", "KST", "../etc/passwd"):
        with pytest.raises(ValidationError, match=f"timezone\n.*unknown time zone '{re.escape(bad)}'"):
            Settings(timezone=bad)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().customers = 5  # type: ignore[misc]


def test_cycles_map_to_days_and_back() -> None:
    settings = Settings(start_date=date(2026, 1, 5), cycle_days=7)
    assert settings.cycle_start(2) == date(2026, 1, 19)
    assert settings.cycle_index(date(2026, 1, 25)) == 2
    assert settings.cycle_key(0) == "2026-01-05"
    with pytest.raises(ValueError, match="before start_date"):
        settings.cycle_index(date(2026, 1, 4))
