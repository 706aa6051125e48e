"""The runtime GX project under ``<home>/validation``: committed suites in, results and Data Docs out.

The committed project (``expectations/gx``) holds only what is versioned: its config and the generated
suites. Each gate run copies both into ``<home>/validation/gx`` and validates there, so validation
results, checkpoints and Data Docs live with the rest of the runtime state, the code checkout can be
read-only, and every home (each test's tmp dir, each demo) has its own history.
"""

from __future__ import annotations

import copy
import html
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_loop.config import Settings
from expectations.suites import GX_DIR, SUITES_DIR

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import FileDataContext
    from great_expectations.datasource.fluent import PandasDatasource

DATASOURCE = "campaign_loop"


def validation_dir(settings: Settings) -> Path:
    return settings.root / "validation"


def data_docs_index(settings: Settings) -> Path:
    return validation_dir(settings) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _sync(runtime: Path) -> None:
    """Copy the committed config and suites over the runtime project's (stale suites removed)."""
    runtime.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GX_DIR / "great_expectations.yml", runtime / "great_expectations.yml")
    target = runtime / "expectations"
    if target.exists():
        for old in target.rglob("*.json"):
            old.unlink()
    for suite in SUITES_DIR.rglob("*.json"):
        dest = target / suite.relative_to(SUITES_DIR)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(suite, dest)


def open_context(settings: Settings, secrets: Mapping[str, str] | None = None) -> FileDataContext:
    """The runtime file context, its config and suites freshly synced from the committed project.

    ``secrets`` fill ``${NAME}`` references in data source configs from memory: GX writes every data
    source it is given into the runtime ``great_expectations.yml``, so a reference keeps a password off disk.
    """
    # No telemetry, ever: GX 1.24 has no usage-statistics client left, but older builds read this switch.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    project = validation_dir(settings)
    _sync(project / "gx")
    return gx.get_context(mode="file", project_root_dir=str(project), runtime_environment=dict(secrets or {}))


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    result: ExpectationSuiteValidationResult
    result_id: Any  # ValidationResultIdentifier, for incremental Data Docs


class Validator:
    """Runs committed suites under one run id: on DataFrames (GX's pandas data source) or on any batch definition."""

    def __init__(self, context: FileDataContext, run_name: str) -> None:
        import datetime as dt

        from great_expectations.core.run_identifier import RunIdentifier

        self.context = context
        self.run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
        self.runs: list[SuiteRun] = []

    def audit_id(self, stage: str, cycle_id: str) -> str:
        """The id of this run's verdict in ``audit.validation_results`` and the logs."""
        return f"{stage}/{cycle_id}/{self.run_id.run_time:%Y%m%dT%H%M%S.%fZ}"

    def validate_frames(
        self, frames: Sequence[tuple[str, pd.DataFrame]], parameters: Mapping[str, Any] | None = None
    ) -> list[SuiteRun]:
        """Validate each (suite name, DataFrame) against its committed suite through GX's pandas data source."""
        if not frames:
            return []
        datasource = self._pandas_datasource([suite for suite, _ in frames])
        return [
            self.run(suite, datasource.get_asset(suite).get_batch_definition("batch"), {"dataframe": frame}, parameters)
            for suite, frame in frames
        ]

    def _pandas_datasource(self, suites: Sequence[str]) -> PandasDatasource:
        # One dataframe asset per suite: an asset's name is the table the results page shows. All are
        # declared in one call because GX rewrites great_expectations.yml on every asset and batch
        # definition added (two rewrites per suite otherwise, a large share of a gate run). Only created
        # when there are frames, so a run over another data source leaves no pandas one in its config.
        assets = [
            {"name": suite, "type": "dataframe", "batch_metadata": {},
             "batch_definitions": [{"name": "batch", "partitioner": None}]}
            for suite in suites
        ]
        return self.context.data_sources.add_or_update_pandas(name=DATASOURCE, assets=assets)

    def run(
        self,
        suite_name: str,
        batch: BatchDefinition,
        batch_parameters: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> SuiteRun:
        """Validate one batch against a committed suite; the result joins this run's Data Docs."""
        import great_expectations as gx
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        suite = self.context.suites.get(suite_name)
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
        )
        result = definition.run(
            batch_parameters=dict(batch_parameters) if batch_parameters else None,
            expectation_parameters=dict(parameters or {}),
            run_id=self.run_id,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )
        # The key GX stored the result under ends in the batch's id, which the result does not carry.
        batch_id = batch.get_batch(batch_parameters=dict(batch_parameters) if batch_parameters else None).id
        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=self.run_id,
            batch_identifier=batch_id,
        )
        run = SuiteRun(suite_name, result, result_id)
        self.runs.append(run)
        return run

    def build_docs(self) -> None:
        """Render this run's results (incrementally: older pages stay) and the site index.

        GX puts a result's unexpected values into its HTML tables as they are, and those values are data
        (a landed member id, a campaign id in a check's description): each stored result is rewritten with
        its data HTML-escaped first, so a hostile value renders as text. The in-memory results the audit
        table is built from keep the values as they were.
        """
        store = self.context.validation_results_store
        for run in self.runs:
            store.set(run.result_id, escaped_for_docs(store.get(run.result_id)))
        ids = [run.result_id for run in self.runs]
        self.context.build_data_docs(resource_identifiers=ids or None)


# The parts of an expectation's result that carry data values; GX escapes the rest (its string templates'
# parameters, such as observed_value) itself, so escaping those too would show "&amp;lt;".
_DATA_RESULT_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
                     "unexpected_list", "unexpected_index_list", "details")


def _escape_strings(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list | tuple):
        return type(value)(_escape_strings(v) for v in value)
    if isinstance(value, dict):
        return {_escape_strings(k): _escape_strings(v) for k, v in value.items()}
    return value


def escaped_for_docs(result: ExpectationSuiteValidationResult) -> ExpectationSuiteValidationResult:
    """A copy of a suite result whose data values (unexpected values, their counts and indexes) are HTML-escaped."""
    result = copy.deepcopy(result)
    for expectation in result.results:
        info = expectation.result or {}
        for key in _DATA_RESULT_KEYS:
            if key in info:
                info[key] = _escape_strings(info[key])
    return result
