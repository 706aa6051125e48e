"""The committed GX suites are exactly what the landing contract and rules.yaml generate."""

from __future__ import annotations

import json

from expectations.suites import (
    SUITES_DIR,
    committed_suite_files,
    generated,
    raw_suite_name,
    stale,
    suite_specs,
)
from ingest.contract import load_contract


def test_committed_suites_equal_the_generated_ones() -> None:
    assert stale() == [], "run `python -m expectations.suites --write` and commit expectations/gx"
    assert committed_suite_files() == generated()


def test_every_suite_loads_as_a_gx_suite_with_a_severity() -> None:
    import great_expectations as gx

    for path in SUITES_DIR.rglob("*.json"):
        suite = gx.ExpectationSuite(**json.loads(path.read_text()))
        assert suite.expectations, path
        for expectation in suite.expectations:
            assert expectation.severity.value in ("critical", "warning")
            assert expectation.meta["check"]


def test_the_contract_rules_become_expectations() -> None:
    specs = {s.name: s for s in suite_specs()}
    contract = load_contract()
    for source in contract.sources.values():
        kinds = [(e["check"], e["kwargs"].get("column")) for e in specs[raw_suite_name(source.name)].expectations]
        for column in source.required_columns:
            assert ("not_null", column) in kinds
        for column in source.columns.values():
            if column.accepted:
                assert ("accepted_values", column.name) in kinds
    orders = specs["raw.orders"].expectations
    assert any(e["check"] == "duplicate_rate" and e["severity"] == "warning" for e in orders)
    assert any(e["check"] == "not_in_future" and e["kwargs"]["column"] == "ordered_at" for e in orders)
    # A campaign is planned ahead: its validity window may lie after the batch end.
    assert not any(e["check"] == "not_in_future" for e in specs["raw.campaigns"].expectations)
