"""KPI alerts from kpi_alerts.yaml: floors, ceilings and relative changes, recorded and logged."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from expectations.kpi import Alert, evaluate_kpi_alerts, load_kpi_alerts, record_alerts

CONFIG = {"kpis": {"orders": {"floor": 10, "max_relative_change": 0.5},
                   "quarantine_rate": {"ceiling": 0.05, "severity": "critical"}}}


KPI_CYCLE_YML = Path(__file__).parents[2] / "dbt_project" / "models" / "marts" / "kpi" / "kpi_cycle.yml"


def test_the_committed_config_watches_only_kpis_the_cycle_frame_has() -> None:
    # The evaluator skips a KPI its frame lacks, so a misspelt name would never alert: pin the names here.
    (model,) = yaml.safe_load(KPI_CYCLE_YML.read_text())["models"]
    frame_columns = {c["name"] for c in model["columns"]} | {"quarantine_rate"}  # the pipeline adds the last
    watched = set(load_kpi_alerts()["kpis"])
    assert watched and watched <= frame_columns, watched - frame_columns


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
    kpis = pd.DataFrame({"orders": [5]})  # below the floor, and a 95 % fall had there been a previous 100
    assert [(a.kpi, a.rule) for a in evaluate_kpi_alerts(kpis, None, CONFIG)] == [("orders", "floor")]


def test_alerts_are_recorded_logged_and_passed_to_the_callback(tmp_path, caplog) -> None:
    alerts = evaluate_kpi_alerts(pd.DataFrame({"cycle_id": ["c"], "orders": [1]}), None, CONFIG)
    seen: list[Alert] = []
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con, caplog.at_level(logging.WARNING):
        record_alerts(con, alerts, callback=seen.append)
        rows = con.execute("SELECT kpi, rule, severity FROM audit.kpi_alerts").fetchall()
    assert rows == [("orders", "floor", "warning")]
    assert seen == alerts
    assert sum("KPI alert" in r.message for r in caplog.records) == 1
