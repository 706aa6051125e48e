"""KPI alerts from kpi_alerts.yaml: floors, ceilings and relative changes, recorded and logged."""

from __future__ import annotations

import logging

import duckdb
import pandas as pd

from expectations.kpi import Alert, evaluate_kpi_alerts, load_kpi_alerts, record_alerts

CONFIG = {"kpis": {"orders": {"floor": 10, "max_relative_change": 0.5},
                   "quarantine_rate": {"ceiling": 0.05, "severity": "critical"}}}


def test_the_committed_config_loads() -> None:
    assert "revenue" in load_kpi_alerts()["kpis"]


def test_quiet_kpis_raise_nothing() -> None:
    kpis = pd.DataFrame({"cycle_id": ["2026-01-12"], "orders": [110], "quarantine_rate": [0.01]})
    assert evaluate_kpi_alerts(kpis, pd.DataFrame({"orders": [100]}), CONFIG) == []


def test_each_rule_raises_its_alert() -> None:
    kpis = pd.DataFrame({"cycle_id": ["2026-01-12"], "orders": [5], "quarantine_rate": [0.2]})
    alerts = evaluate_kpi_alerts(kpis, pd.DataFrame({"orders": [100]}), CONFIG)
    assert {(a.kpi, a.rule, a.severity) for a in alerts} == {
        ("orders", "floor", "warning"), ("orders", "max_relative_change", "warning"),
        ("quarantine_rate", "ceiling", "critical")}
    assert all(a.cycle_id == "2026-01-12" for a in alerts)


def test_without_a_previous_cycle_only_absolute_rules_apply() -> None:
    kpis = pd.DataFrame({"orders": [5000]})
    assert evaluate_kpi_alerts(kpis, None, CONFIG) == []


def test_alerts_are_recorded_logged_and_passed_to_the_callback(tmp_path, caplog) -> None:
    alerts = evaluate_kpi_alerts(pd.DataFrame({"cycle_id": ["c"], "orders": [1]}), None, CONFIG)
    seen: list[Alert] = []
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con, caplog.at_level(logging.WARNING):
        record_alerts(con, alerts, callback=seen.append)
        rows = con.execute("SELECT kpi, rule, severity FROM audit.kpi_alerts").fetchall()
    assert rows == [("orders", "floor", "warning")]
    assert seen == alerts
    assert sum("KPI alert" in r.message for r in caplog.records) == 1
