"""KPI alerts: thresholds from ``kpi_alerts.yaml`` applied to one cycle's KPIs, written to ``audit.kpi_alerts``."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

log = logging.getLogger(__name__)

KPI_ALERTS_PATH = Path(__file__).with_name("kpi_alerts.yaml")
_RULES = ("floor", "ceiling", "max_relative_change")

KPI_ALERTS_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.kpi_alerts (
    cycle_id VARCHAR NOT NULL,
    kpi VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    value DOUBLE,
    previous DOUBLE,
    threshold DOUBLE NOT NULL,
    message VARCHAR NOT NULL,
    raised_at TIMESTAMP NOT NULL
)
"""


@dataclass(frozen=True)
class Alert:
    cycle_id: str
    kpi: str
    rule: str  # floor | ceiling | max_relative_change
    severity: str
    value: float | None
    previous: float | None
    threshold: float
    message: str


@cache
def load_kpi_alerts(path: Path = KPI_ALERTS_PATH) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    for kpi, rules in config["kpis"].items():
        unknown = set(rules) - {*_RULES, "severity"}
        if unknown or not set(rules) & set(_RULES):
            raise ValueError(f"{path.name}, KPI {kpi}: needs one of {_RULES}; unknown key(s) {sorted(unknown)}")
    return config


def _value(frame: pd.DataFrame | Mapping[str, Any] | None, kpi: str) -> float | None:
    if frame is None:
        return None
    if isinstance(frame, pd.DataFrame):
        if kpi not in frame or frame.empty:
            return None
        raw = frame[kpi].iloc[-1]
    else:
        raw = frame.get(kpi)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def evaluate_kpi_alerts(
    kpis_df: pd.DataFrame, previous_df: pd.DataFrame | None, config: Mapping[str, Any] | None = None,
) -> list[Alert]:
    """Alerts for the current cycle's KPIs (one row; ``cycle_id`` column optional) against the config.

    A KPI the config names but the frame lacks is skipped (not every KPI exists in every deployment);
    a relative change needs a non-zero previous value.
    """
    config = config or load_kpi_alerts()
    cycle_id = str(kpis_df["cycle_id"].iloc[-1]) if "cycle_id" in kpis_df and len(kpis_df) else ""
    alerts: list[Alert] = []
    for kpi, rules in config["kpis"].items():
        value = _value(kpis_df, kpi)
        if value is None:
            continue
        previous = _value(previous_df, kpi)
        severity = rules.get("severity", "warning")

        found: list[tuple[str, float, str]] = []
        if "floor" in rules and value < rules["floor"]:
            found.append(("floor", rules["floor"], f"{kpi} {value:.6g} is below its floor {rules['floor']:g}"))
        if "ceiling" in rules and value > rules["ceiling"]:
            found.append(("ceiling", rules["ceiling"], f"{kpi} {value:.6g} is above its ceiling {rules['ceiling']:g}"))
        if "max_relative_change" in rules and previous not in (None, 0.0):
            change = value / previous - 1.0
            if abs(change) > rules["max_relative_change"]:
                found.append(("max_relative_change", rules["max_relative_change"],
                              f"{kpi} changed {change:+.1%} vs the previous cycle ({previous:.6g} → {value:.6g}); "
                              f"limit ±{rules['max_relative_change']:.0%}"))
        alerts += [Alert(cycle_id, kpi, rule, severity, value, previous, float(limit), text) for rule, limit, text in found]
    return alerts


def record_alerts(
    con: duckdb.DuckDBPyConnection, alerts: Iterable[Alert], *, callback: Callable[[Alert], None] | None = None,
) -> list[Alert]:
    """Append alerts to audit.kpi_alerts, log one line each and pass each to ``callback`` (if given)."""
    alerts = list(alerts)
    con.execute(KPI_ALERTS_DDL)
    raised_at = datetime.now(UTC).replace(tzinfo=None)
    for a in alerts:
        con.execute("INSERT INTO audit.kpi_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [a.cycle_id, a.kpi, a.rule, a.severity, a.value, a.previous, a.threshold, a.message, raised_at])
        level = logging.ERROR if a.severity == "critical" else logging.WARNING
        log.log(level, "KPI alert %s [%s] %s", a.cycle_id, a.severity, a.message)
        if callback is not None:
            try:
                callback(a)
            except Exception:  # an alerting channel being down must not lose the recorded alert
                log.exception("KPI alert callback failed for %s", asdict(a))
    return alerts
