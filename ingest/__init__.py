"""Ingestion: landing files → the warehouse's raw layer, each file exactly once, bad rows quarantined.

The CLI and the Airflow DAG call ``ingest(settings, sources)``; ``batch_report(settings, batch)`` reads
back what the load log holds for one batch (one cycle's landing). Importing this package loads nothing
heavy: the names resolve on first use, so DAG parsing and ``python -m ingest.contract`` stay cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.landing import LandingError
    from ingest.load import ingest
    from ingest.report import BatchCounts, FileResult, IngestReport, UnknownColumns, batch_report

_EXPORTS: dict[str, str] = {
    "LandingError": "ingest.landing",
    "ingest": "ingest.load",
    "BatchCounts": "ingest.report",
    "FileResult": "ingest.report",
    "IngestReport": "ingest.report",
    "UnknownColumns": "ingest.report",
    "batch_report": "ingest.report",
}
__all__ = [
    "BatchCounts", "FileResult", "IngestReport", "LandingError", "UnknownColumns", "batch_report", "ingest",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
