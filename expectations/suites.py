"""The GX expectation suites, generated from the landing contract and ``rules.yaml`` (their one source).

``python -m expectations.suites --write`` rewrites the committed suites under ``expectations/gx/expectations``;
``--check`` exits non-zero when they differ from what the sources generate (a test does the same).
Suites and expectations get ids derived from their names, so regenerating an unchanged source gives
byte-identical files and a diff shows only real rule changes.

Every expectation carries ``severity`` (GX 1.x's own field: critical or warning) and ``meta.check``, the
name the gate reports it under; parameters that change per cycle (the batch end, the quarantine limit)
are ``$PARAMETER`` references filled at run time.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingest.contract import Contract, Source, load_contract
from ingest.warehouse import METADATA_COLUMNS, SQL_TYPES

PACKAGE_DIR = Path(__file__).resolve().parent
GX_DIR = PACKAGE_DIR / "gx"
SUITES_DIR = GX_DIR / "expectations"
RULES_PATH = PACKAGE_DIR / "rules.yaml"
_ID_NAMESPACE = uuid.UUID("6f0d6c1e-3c55-4d7a-9a51-6a3e1f0c2b10")

# Suites the gate runs besides one per source / mart table.
SCHEMA_SUITE = "raw.schema"
FILES_SUITE = "raw.files"
STATISTICS_SUITE = "marts.statistics"


@dataclass(frozen=True)
class SuiteSpec:
    """A suite as plain data: name and the expectations' (class name, kwargs, severity, check) tuples."""

    name: str
    expectations: tuple[dict[str, Any], ...]


@cache
def load_rules(path: Path = RULES_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def raw_suite_name(source: str) -> str:
    return f"raw.{source}"


def mart_suite_name(table: str) -> str:
    return f"marts.{table}"


def _exp(kind: str, check: str, severity: str, **kwargs: Any) -> dict[str, Any]:
    return {"kind": kind, "check": check, "severity": severity, "kwargs": kwargs}


def _condition(source: str) -> dict[str, Any]:
    # GX 1.x's structured row condition (the string form is deprecated): rows of this source only.
    return {"row_condition": {"type": "comparison", "column": {"name": "source"}, "operator": "==", "parameter": source}}


def schema_types(contract: Contract) -> dict[str, dict[str, str]]:
    """Per source, every column of its raw table (contract + lineage) with its DuckDB type."""
    return {
        s.name: {name: SQL_TYPES[col.type] for name, col in s.columns.items()} | METADATA_COLUMNS
        for s in contract.sources.values()
    }


def _schema_suite(contract: Contract, sev: dict[str, str]) -> SuiteSpec:
    # One row per expected column, "column:TYPE" (TYPE = MISSING when absent): a missing column and a
    # wrong type both show up as the unexpected value itself in Data Docs.
    expectations = [
        _exp(
            "ExpectColumnValuesToBeInSet", "schema", sev["schema"], column="column_type",
            value_set=[f"{name}:{sql_type}" for name, sql_type in columns.items()], **_condition(source),
        )
        for source, columns in schema_types(contract).items()
    ]
    return SuiteSpec(SCHEMA_SUITE, tuple(expectations))


def _files_suite(sev: dict[str, str]) -> SuiteSpec:
    return SuiteSpec(FILES_SUITE, (
        _exp("ExpectColumnMaxToBeBetween", "quarantine_rate", sev["quarantine_rate"], column="quarantine_rate",
             max_value={"$PARAMETER": "quarantine_rate_max"}),
        # Whether a batch holds transactions is judged in Python (expectations.raw.transaction_checks): an
        # empty week is a warning, a dropped export critical, and one sum cannot tell them apart.
    ))


def _source_suite(source: Source, raw_rules: dict[str, Any]) -> SuiteSpec:
    sev = raw_rules["severity"]
    future_allowed = set(raw_rules.get("future_allowed", ()))
    out: list[dict[str, Any]] = []
    for col in source.columns.values():
        if col.required:
            out.append(_exp("ExpectColumnValuesToNotBeNull", "not_null", sev["not_null"], column=col.name))
        if col.accepted is not None:
            out.append(_exp("ExpectColumnValuesToBeInSet", "accepted_values", sev["accepted_values"],
                            column=col.name, value_set=list(col.accepted)))
        # A negative_when column's negatives are credit notes ingest already let through: only max applies.
        low = None if col.negative_when else col.min
        if low is not None or col.max is not None:
            out.append(_exp("ExpectColumnValuesToBeBetween", "range", sev["range"],
                            column=col.name, min_value=low, max_value=col.max))
        if col.type in ("timestamp", "date") and f"{source.name}.{col.name}" not in future_allowed:
            out.append(_exp("ExpectColumnValuesToBeBetween", "not_in_future", sev["not_in_future"],
                            column=col.name, max_value={"$PARAMETER": "batch_end"}))
    mostly = round(1.0 - float(raw_rules["duplicate_rate_max"]), 6)
    if len(source.key) == 1:
        out.append(_exp("ExpectColumnValuesToBeUnique", "duplicate_rate", sev["duplicate_rate"],
                        column=source.key[0], mostly=mostly))
    else:
        out.append(_exp("ExpectCompoundColumnsToBeUnique", "duplicate_rate", sev["duplicate_rate"],
                        column_list=list(source.key), mostly=mostly))
    return SuiteSpec(raw_suite_name(source.name), tuple(out))


def _mart_suite(table: str, spec: dict[str, Any]) -> SuiteSpec:
    out: list[dict[str, Any]] = []
    for column in spec.get("not_null", ()):
        out.append(_exp("ExpectColumnValuesToNotBeNull", "not_null", "critical", column=column))
    for column, values in spec.get("accepted", {}).items():
        out.append(_exp("ExpectColumnValuesToBeInSet", "accepted_values", "critical", column=column, value_set=values))
    for column, low in spec.get("min", {}).items():
        out.append(_exp("ExpectColumnValuesToBeBetween", "range", "critical", column=column, min_value=low))
    key = list(spec["key"])
    if len(key) == 1:
        out.append(_exp("ExpectColumnValuesToBeUnique", "key_unique", "critical", column=key[0]))
    else:
        out.append(_exp("ExpectCompoundColumnsToBeUnique", "key_unique", "critical", column_list=key))
    return SuiteSpec(mart_suite_name(table), tuple(out))


def _statistics_suite() -> SuiteSpec:
    # The statistical mart checks (reconciliation, drift, SRM, ...) run in Python; their outcomes land in
    # a one-row-per-check frame so Data Docs list every failure message next to the GX suites.
    return SuiteSpec(STATISTICS_SUITE, (
        _exp("ExpectColumnValuesToBeNull", "statistical_checks", "critical", column="critical_failure"),
        _exp("ExpectColumnValuesToBeNull", "statistical_checks", "warning", column="warning_failure"),
    ))


def suite_specs(contract: Contract | None = None, rules: dict[str, Any] | None = None) -> list[SuiteSpec]:
    contract = contract or load_contract()
    rules = rules or load_rules()
    specs = [_schema_suite(contract, rules["raw"]["severity"]), _files_suite(rules["raw"]["severity"])]
    specs += [_source_suite(s, rules["raw"]) for s in contract.sources.values()]
    specs += [_mart_suite(t, spec) for t, spec in rules["marts"]["tables"].items()]
    specs.append(_statistics_suite())
    return specs


def _suite_dict(spec: SuiteSpec) -> dict[str, Any]:
    """The suite as GX 1.x serialises it, with ids derived from names so the output is deterministic."""
    expectations = []
    for i, e in enumerate(spec.expectations):
        kwargs = {k: v for k, v in e["kwargs"].items() if v is not None}
        meta = {"check": e["check"]}
        expectations.append({
            "type": _snake(e["kind"]),
            "id": str(uuid.uuid5(_ID_NAMESPACE, f"{spec.name}/{i}/{e['kind']}")),
            "kwargs": kwargs,
            "meta": meta,
            "severity": e["severity"],
        })
    return {
        "name": spec.name,
        "id": str(uuid.uuid5(_ID_NAMESPACE, spec.name)),
        "expectations": expectations,
        "meta": {"generated_from": ["ingest/landing_contract.yaml", "expectations/rules.yaml"]},
        "notes": None,
    }


def _snake(class_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in class_name).lstrip("_")


def suite_path(name: str, root: Path = SUITES_DIR) -> Path:
    # GX's file store maps the dotted suite name "raw.orders" to expectations/raw/orders.json.
    return root.joinpath(*name.split(".")).with_suffix(".json")


def render(spec: SuiteSpec) -> str:
    return json.dumps(_suite_dict(spec), indent=2, sort_keys=True) + "\n"


def generated() -> dict[Path, str]:
    """Every suite file's path and content as the sources generate them."""
    return {suite_path(s.name): render(s) for s in suite_specs()}


def committed_suite_files(root: Path = SUITES_DIR) -> dict[Path, str]:
    return {p: p.read_text() for p in sorted(root.rglob("*.json"))}


def stale(root: Path = SUITES_DIR) -> list[str]:
    """Names of suite files that are missing, different or no longer generated; empty when in sync."""
    want = {suite_path(s.name, root): render(s) for s in suite_specs()}
    have = committed_suite_files(root)
    return sorted(str(p.relative_to(root)) for p in set(want) | set(have) if want.get(p) != have.get(p))


def write(root: Path = SUITES_DIR) -> list[str]:
    """Rewrite the committed suites; returns the files that changed."""
    changed = stale(root)
    want = {suite_path(s.name, root): render(s) for s in suite_specs()}
    for path in committed_suite_files(root):
        if path not in want:
            path.unlink()
    for path, text in want.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m expectations.suites", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="Regenerate the committed suite JSON files.")
    action.add_argument("--check", action="store_true", help="Exit 1 when the committed suites are stale.")
    args = parser.parse_args(argv)
    if args.write:
        for name in write():
            print(f"updated {name}")  # noqa: T201 - the command reports what it rewrote
        return 0
    out_of_date = stale()
    for name in out_of_date:
        print(f"stale: {name}")  # noqa: T201
    return 1 if out_of_date else 0


if __name__ == "__main__":
    raise SystemExit(main())
