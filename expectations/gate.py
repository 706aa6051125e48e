"""The validation gate: ``run_gate(settings, cycle_id, stage)`` judges one cycle's raw batches or marts.

The raw stage judges every batch not yet published (``expectations.raw.pending_batches``): this cycle's,
and any an earlier gate rejected or a correction changed since, each on its live rows.

A critical failure makes ``GateResult.passed`` False and the DAG stops the cycle before training,
decisioning and publishing (fail closed); warnings are recorded and logged but let the cycle go on.
Every run appends one row per check to ``audit.validation_results`` and refreshes Data Docs under
``<home>/validation``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from campaign_loop.config import Settings
from expectations.context import Validator, data_docs_index, open_context
from expectations.decisions import decision_checks
from expectations.marts_gate import mart_frames_and_checks
from expectations.raw import (
    batch_window,
    pending_batches,
    raw_frames,
    raw_parameters,
    schema_frame,
    transaction_checks,
)
from expectations.results import CheckResult, from_gx
from expectations.suites import FILES_SUITE, SCHEMA_SUITE, STATISTICS_SUITE, load_rules
from ingest.contract import load_contract

log = logging.getLogger(__name__)

Stage = Literal["raw", "marts"]
STAGES: tuple[str, ...] = ("raw", "marts")
# Tables a suite's results are reported under when it is not simply "<layer>.<table>".
_SUITE_TABLES = {FILES_SUITE: "raw._load_log", SCHEMA_SUITE: "raw", STATISTICS_SUITE: "marts"}

AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.validation_results (
    validation_result_id VARCHAR NOT NULL,
    cycle_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    run_at TIMESTAMP NOT NULL,
    suite VARCHAR,
    "check" VARCHAR NOT NULL,
    "table" VARCHAR NOT NULL,
    "column" VARCHAR,
    severity VARCHAR NOT NULL,
    success BOOLEAN NOT NULL,
    observed DOUBLE,
    threshold DOUBLE,
    details VARCHAR,
    expectation_type VARCHAR
)
"""
_AUDIT_COLUMNS = ("validation_result_id", "cycle_id", "stage", "run_at", "suite", "check", "table", "column",
                  "severity", "success", "observed", "threshold", "details", "expectation_type")


@dataclass(frozen=True)
class GateResult:
    cycle_id: str
    stage: str
    passed: bool  # no critical check failed
    checks: tuple[CheckResult, ...]
    validation_result_id: str
    data_docs: Path  # index.html of the Data Docs site

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success)

    @property
    def critical_failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.critical_failure)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.failures if c.severity == "warning")

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.__dict__ for c in self.checks])

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"validation gate {self.stage} {self.cycle_id}: {verdict} - {len(self.checks)} checks, "
                f"{len(self.critical_failures)} critical and {len(self.warnings)} warning failures "
                f"(run {self.validation_result_id}, Data Docs {self.data_docs})")


class GateFailed(RuntimeError):
    """Raised by ``require_pass`` so an Airflow task fails (and the cycle stops) on a critical failure."""


def require_pass(result: GateResult) -> GateResult:
    if not result.passed:
        failed = "; ".join(c.describe() for c in result.critical_failures[:10])
        raise GateFailed(f"{result.summary()}: {failed}")
    return result


def run_gate(settings: Settings, cycle_id: str, stage: Stage) -> GateResult:
    """Validate one cycle (``cycle_id`` = its batch) at ``stage`` ("raw" or "marts"); record and return the verdict."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    batch_window(settings, cycle_id)  # a malformed cycle id fails here, before anything is written
    context = open_context(settings)
    validator = Validator(context, run_name=f"{stage}-{cycle_id}")
    run_time = validator.run_id.run_time
    validation_result_id = validator.audit_id(stage, cycle_id)

    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        if stage == "raw":
            checks = _validate_raw(validator, con, settings, cycle_id, validation_result_id)
        else:

            frames, python_checks = mart_frames_and_checks(con, settings, cycle_id, load_rules()["marts"])
            checks = _validate(validator, frames, {}) + python_checks
        validator.build_docs()
        result = GateResult(
            cycle_id=cycle_id, stage=stage, passed=not any(c.critical_failure for c in checks),
            checks=tuple(checks), validation_result_id=validation_result_id, data_docs=data_docs_index(settings),
        )
        write_audit(con, result, run_time.replace(tzinfo=None))

    for check in result.failures:
        level = logging.ERROR if check.severity == "critical" else logging.WARNING
        log.log(level, "validation %s %s: %s", stage, cycle_id, check.describe())
    log.info("%s", result.summary())
    return result


def _validate_raw(
    validator: Validator, con: duckdb.DuckDBPyConnection, settings: Settings, cycle_id: str,
    validation_result_id: str | None = None,
) -> list[CheckResult]:
    contract = load_contract()
    checks = _validate(validator, [(SCHEMA_SUITE, schema_frame(con, contract))], {})
    batches = pending_batches(con, cycle_id)
    for batch in batches:
        found = _validate(validator, raw_frames(con, batch, contract, schema=False),
                          raw_parameters(settings, cycle_id, batch))
        # The audit row is the cycle's; an earlier batch's checks say which batch they judged.
        checks += found if batch == cycle_id else [_in_batch(c, batch) for c in found]
    if len(batches) > 1:
        log.warning("validation raw %s: also judging unpublished batch(es) %s",
                    cycle_id, ", ".join(b for b in batches if b != cycle_id))
    rules = load_rules()["raw"]
    decisions = decision_checks(con, settings, cycle_id, batches, rules, validation_result_id)
    return checks + transaction_checks(con, cycle_id, batches, rules["severity"]) + decisions


def _in_batch(row: CheckResult, batch: str) -> CheckResult:
    from dataclasses import replace

    return replace(row, details=f"batch {batch}" + (f": {row.details}" if row.details else ""))


def _validate(validator: Validator, frames: Iterable[tuple[str, pd.DataFrame]], parameters: dict[str, Any]) -> list[CheckResult]:
    checks: list[CheckResult] = []
    for run in validator.validate_frames(list(frames), parameters):
        rows = from_gx(run.suite, run.result, parameters)
        table = _SUITE_TABLES.get(run.suite)
        if table:
            rows = [r if r.table != run.suite else _with_table(r, table) for r in rows]
        checks += rows
    return checks


def _with_table(row: CheckResult, table: str) -> CheckResult:
    from dataclasses import replace

    return replace(row, table=table)


def write_audit(con: duckdb.DuckDBPyConnection, result: GateResult, run_at: datetime | None = None) -> None:
    """Append the run's rows to audit.validation_results (never updated: trends are queries over it)."""
    con.execute(AUDIT_DDL)
    run_at = run_at or datetime.now(UTC).replace(tzinfo=None)
    rows = pd.DataFrame(
        [
            {
                "validation_result_id": result.validation_result_id, "cycle_id": result.cycle_id,
                "stage": result.stage, "run_at": run_at, "suite": c.suite, "check": c.check, "table": c.table,
                "column": c.column, "severity": c.severity, "success": c.success, "observed": c.observed,
                "threshold": c.threshold, "details": c.details or None, "expectation_type": c.expectation_type,
            }
            for c in result.checks
        ],
        columns=list(_AUDIT_COLUMNS),
    ).astype({"observed": "float64", "threshold": "float64"})
    con.register("_gate_rows", rows)
    try:
        columns = ", ".join(f'"{c}"' for c in _AUDIT_COLUMNS)
        con.execute(f"INSERT INTO audit.validation_results ({columns}) SELECT {columns} FROM _gate_rows")
    finally:
        con.unregister("_gate_rows")
