"""The landing contract as typed objects, read from ``landing_contract.yaml`` (its one source of truth)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

ColumnType = Literal["string", "integer", "decimal", "double", "boolean", "timestamp", "date"]
CONTRACT_PATH = Path(__file__).with_name("landing_contract.yaml")
FILE_FORMATS: tuple[str, ...] = ("csv", "parquet")
# The one source of which a cycle needs at least one: without transactions nothing can be learned.
TRANSACTION_SOURCES: tuple[str, ...] = ("orders", "pos_receipts")
# A source's `timezone: local`: its naive times are the retailer's local time, Settings `timezone`, which
# depends on the deployment and so is not written into the contract.
LOCAL_TIMEZONE = "local"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    required: bool = False
    accepted: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pii: bool = False
    # (column, values): a negative value is a credit note's, accepted despite `min` when the row's `column`
    # is one of `values`, and quarantined as negative_not_allowed anywhere else.
    negative_when: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    key: tuple[str, ...]
    timezone: str
    columns: dict[str, Column]
    required_one_of: tuple[tuple[str, ...], ...] = ()
    derived_key: str | None = None
    # Columns that name the customer, all optional: a row with none of them is a guest's, kept.
    identifiers: tuple[str, ...] = ()

    def zone(self, local: str) -> str:
        """The IANA zone the source's naive timestamps are read in; ``local`` is Settings ``timezone``."""
        return local if self.timezone == LOCAL_TIMEZONE else self.timezone

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns.values() if c.required)


@dataclass(frozen=True)
class Contract:
    version: int
    sources: dict[str, Source] = field(default_factory=dict)

    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources))
            raise KeyError(f"unknown source {name!r}; the landing contract knows: {known}") from None


_COLUMN_KEYS = frozenset({"type", "required", "accepted", "min", "max", "pii", "description", "negative_when"})
_SOURCE_KEYS = frozenset({"description", "key", "timezone", "columns", "required_one_of", "derived_key", "identifiers"})
_TYPES = frozenset({"string", "integer", "decimal", "double", "boolean", "timestamp", "date"})


def _check_keys(where: str, spec: dict, allowed: frozenset[str]) -> None:
    # An unquoted comma in a YAML flow mapping silently splits a description into a new key; fail loudly.
    extra = set(spec) - allowed
    if extra:
        raise ValueError(f"landing contract, {where}: unknown key(s) {sorted(extra)} (quote text containing commas)")


def _column(name: str, spec: dict) -> Column:
    _check_keys(f"column {name}", spec, _COLUMN_KEYS)
    if spec["type"] not in _TYPES:
        raise ValueError(f"landing contract, column {name}: unknown type {spec['type']!r}")
    accepted = spec.get("accepted")
    negative_when = spec.get("negative_when")
    if negative_when is not None:
        if not (isinstance(negative_when, dict) and len(negative_when) == 1
                and isinstance(next(iter(negative_when.values())), list)):
            raise ValueError(f"landing contract, column {name}: negative_when must be {{column: [values]}}")
        if spec.get("min") is None or spec["min"] < 0:
            raise ValueError(f"landing contract, column {name}: negative_when needs a min of 0 or more to relax")
        (when_column, when_values), = negative_when.items()
        negative_when = (str(when_column), tuple(str(v) for v in when_values))
    return Column(
        name=name,
        type=spec["type"],
        description=spec["description"],
        required=bool(spec.get("required", False)),
        accepted=tuple(str(v) for v in accepted) if accepted is not None else None,
        min=spec.get("min"),
        max=spec.get("max"),
        pii=bool(spec.get("pii", False)),
        negative_when=negative_when,
    )


@cache
def load_contract(path: Path = CONTRACT_PATH) -> Contract:
    raw = yaml.safe_load(path.read_text())
    sources = {}
    for name, spec in raw["sources"].items():
        _check_keys(f"source {name}", spec, _SOURCE_KEYS)
        columns = {col: _column(col, cspec) for col, cspec in spec["columns"].items()}
        conditions = (c.negative_when[0] for c in columns.values() if c.negative_when)
        for col in (*spec["key"], *(c for g in spec.get("required_one_of", ()) for c in g), spec.get("derived_key"),
                    *spec.get("identifiers", ()), *conditions):
            if col is not None and col not in columns:
                raise ValueError(f"landing contract, source {name}: {col!r} is not one of its columns")
        timezone = spec.get("timezone", "UTC")
        try:
            if timezone != LOCAL_TIMEZONE:
                ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"landing contract, source {name}: unknown timezone {timezone!r} "
                             f"(an IANA name, or {LOCAL_TIMEZONE!r} for the retailer's Settings timezone)") from None
        sources[name] = Source(
            name=name,
            description=" ".join(spec["description"].split()),
            key=tuple(spec["key"]),
            timezone=timezone,
            columns=columns,
            required_one_of=tuple(tuple(group) for group in spec.get("required_one_of", ())),
            derived_key=spec.get("derived_key"),
            identifiers=tuple(spec.get("identifiers", ())),
        )
    return Contract(version=int(raw["version"]), sources=sources)


# ---------------------------------------------------------------------------------------------------
# The contract as Markdown: docs/landing-contract.md embeds this between the markers below, so the doc
# is regenerated from the YAML (`python -m ingest.contract --update-doc`) and a test catches drift.

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "landing-contract.md"
DOC_BEGIN = "<!-- BEGIN generated from ingest/landing_contract.yaml by `python -m ingest.contract --update-doc` -->"
DOC_END = "<!-- END generated -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rule(column: Column) -> str:
    parts = []
    if column.accepted is not None:
        parts.append(", ".join(f"`{v}`" for v in column.accepted))
    if column.min is not None and column.max is not None:
        parts.append(f"{column.min:g} to {column.max:g}")
    elif column.min is not None:
        parts.append(f">= {column.min:g}")
    elif column.max is not None:
        parts.append(f"<= {column.max:g}")
    if column.negative_when is not None:
        when_column, values = column.negative_when
        parts.append(f"negative when `{when_column}` is {' or '.join(f'`{v}`' for v in values)}")
    return "; ".join(parts)


def source_markdown(source: Source) -> str:
    lines = [f"### `{source.name}`", "", _cell(source.description), ""]
    lines.append(f"- Key: {', '.join(f'`{k}`' for k in source.key)}")
    zone = "the retailer's local time (Settings `timezone`)" if source.timezone == LOCAL_TIMEZONE else f"`{source.timezone}`"
    lines.append(f"- Naive timestamps are read in: {zone}")
    for group in source.required_one_of:
        lines.append(f"- Each row fills at least one of: {', '.join(f'`{c}`' for c in group)}")
    if source.identifiers:
        lines.append(f"- Customer identifiers (a row with none of them is a guest's): "
                     f"{', '.join(f'`{c}`' for c in source.identifiers)}")
    if source.derived_key:
        lines.append(f"- `{source.derived_key}` is derived from the row's content (its identifiers and required columns) when absent or empty")
    lines += ["", "| column | type | required | accepted / range | PII | description |",
              "|---|---|---|---|---|---|"]
    for c in source.columns.values():
        lines.append(
            f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {_cell(_rule(c))} | "
            f"{'yes' if c.pii else ''} | {_cell(c.description)} |"
        )
    return "\n".join(lines)


def markdown(contract: Contract | None = None) -> str:
    """Every source's section, in contract order, framed by the markers the doc keeps them between."""
    contract = contract or load_contract()
    body = "\n\n".join(source_markdown(s) for s in contract.sources.values())
    return f"{DOC_BEGIN}\n\n{body}\n\n{DOC_END}"


def update_doc(path: Path = DOC_PATH) -> bool:
    """Replace the generated block of ``path`` with the current contract; True when it changed."""
    text = path.read_text()
    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if start < 0 or end < 0:
        raise ValueError(f"{path}: markers {DOC_BEGIN!r} ... {DOC_END!r} not found; add them where the tables go")
    new = text[:start] + markdown() + text[end + len(DOC_END):]
    path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ingest.contract", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="Print the per-source tables as Markdown.")
    action.add_argument("--update-doc", action="store_true", help=f"Rewrite the generated block of {DOC_PATH.name}.")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown())  # noqa: T201 - this command's output is the Markdown
    elif update_doc():
        print(f"updated {DOC_PATH}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
