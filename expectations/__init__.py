"""The validation gate: GX suites generated from the landing contract, run per cycle before the loop learns.

``run_gate(settings, cycle_id, stage)`` validates a cycle's raw batch ("raw") or its marts ("marts")
and returns a ``GateResult`` whose ``passed`` is False on any critical failure; ``evaluate_kpi_alerts``
applies ``kpi_alerts.yaml``. Importing this package loads nothing heavy (GX loads on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expectations.gate import GateFailed, GateResult, require_pass, run_gate
    from expectations.kpi import Alert, evaluate_kpi_alerts, load_kpi_alerts, record_alerts
    from expectations.results import CheckResult

_EXPORTS: dict[str, str] = {
    "GateFailed": "expectations.gate",
    "GateResult": "expectations.gate",
    "require_pass": "expectations.gate",
    "run_gate": "expectations.gate",
    "Alert": "expectations.kpi",
    "evaluate_kpi_alerts": "expectations.kpi",
    "load_kpi_alerts": "expectations.kpi",
    "record_alerts": "expectations.kpi",
    "CheckResult": "expectations.results",
}
__all__ = [
    "Alert", "CheckResult", "GateFailed", "GateResult", "evaluate_kpi_alerts", "load_kpi_alerts", "record_alerts",
    "require_pass", "run_gate",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'expectations' has no attribute {name!r}")
