"""One check's outcome, whether GX judged it (an expectation) or Python did (a statistical mart check)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class CheckResult:
    """One row of a gate run: what was checked where, how bad a failure is, what was seen against what limit.

    ``observed`` and ``threshold`` are numbers on the same scale when the check has one (a rate, a PSI, a
    p-value, an amount); ``details`` says in words what failed (unexpected values, the exception, ...).
    """

    check: str
    table: str
    column: str | None
    severity: Severity
    success: bool
    observed: float | None = None
    threshold: float | None = None
    details: str = ""
    suite: str | None = None
    expectation_type: str | None = None

    @property
    def critical_failure(self) -> bool:
        return not self.success and self.severity == "critical"

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        status = "ok" if self.success else f"FAILED ({self.severity})"
        numbers = ""
        if self.observed is not None:
            numbers = f" observed={self.observed:.6g}"
            if self.threshold is not None:
                numbers += f" threshold={self.threshold:.6g}"
        return f"{self.check} {where}: {status}{numbers}{' - ' + self.details if self.details else ''}"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _threshold(kwargs: dict[str, Any], parameters: dict[str, Any], is_map: bool) -> float | None:
    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and "$PARAMETER" in value:
            return parameters.get(value["$PARAMETER"])
        return value

    if is_map:
        # A column-map expectation allows at most (1 - mostly) of the non-null rows to be unexpected.
        return round(1.0 - float(kwargs.get("mostly", 1.0)), 9)
    for key in ("max_value", "min_value"):
        number = _number(resolve(kwargs.get(key)))
        if number is not None:
            return number
    return None


def _condition_table(condition: Any) -> str | None:
    """The raw table a per-source row condition (``col("source")=="orders"``) selects, if any."""
    if condition is None:
        return None
    if isinstance(condition, dict):
        column, parameter = (condition.get("column") or {}).get("name"), condition.get("parameter")
    else:
        column, parameter = getattr(getattr(condition, "column", None), "name", None), getattr(condition, "parameter", None)
    return f"raw.{parameter}" if column == "source" and parameter else None


def from_gx(suite: str, result: Any, parameters: dict[str, Any]) -> list[CheckResult]:
    """One CheckResult per expectation of a GX suite validation result."""
    rows: list[CheckResult] = []
    table = suite
    for r in result.results:
        config = r.expectation_config
        kwargs = dict(config.kwargs)
        meta = config.meta or {}
        severity = getattr(config.severity, "value", config.severity) or "critical"
        info = r.result or {}
        is_map = "unexpected_count" in info or "unexpected_percent" in info
        if is_map:
            percent = info.get("unexpected_percent")
            observed = (percent or 0.0) / 100.0
        else:
            observed = _number(info.get("observed_value"))
        column = kwargs.get("column") or (",".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
        details = []
        exception = r.exception_info or {}
        raised = bool(exception.get("raised_exception"))
        if raised:
            details.append(f"error: {str(exception.get('exception_message', '')).strip().splitlines()[0][:300]}")
        if is_map and info.get("unexpected_count"):
            shown = ", ".join(str(v) for v in (info.get("partial_unexpected_list") or [])[:5])
            details.append(f"{info['unexpected_count']} of {info.get('element_count')} rows unexpected (e.g. {shown})")
        rows.append(
            CheckResult(
                check=str(meta.get("check", config.type)),
                table=_condition_table(kwargs.get("row_condition")) or table,
                column=column,
                severity=severity,
                success=bool(r.success) and not raised,
                observed=observed,
                threshold=_threshold(kwargs, parameters, is_map),
                details="; ".join(details),
                suite=suite,
                expectation_type=config.type,
            )
        )
    return rows
