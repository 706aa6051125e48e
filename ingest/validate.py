"""The contract as SQL: how a landed string becomes a typed value, and which rows break which rule.

Validation runs as one DuckDB statement per file, never as a Python loop over rows. Every landed value
arrives as trimmed VARCHAR (empty → NULL); each column gets a typed expression ``t`` and a problem
expression that is NULL for a good value and a ``{field, reason, value}`` struct otherwise.
"""

from __future__ import annotations

from ingest.contract import Column, Source
from ingest.warehouse import literal, quote

QUARANTINE_REASONS: dict[str, str] = {
    "malformed_row": "The CSV parser could not split the row into the header's columns (too many or too few "
    "values, an unclosed quote, invalid UTF-8); `value` holds the parser's error type.",
    "missing_required": "A required column is empty.",
    "bad_type": "The value does not parse as the column's type.",
    "not_accepted": "The value is not in the column's accepted list (case-sensitive).",
    "out_of_range": "The value is below the column's min or above its max.",
    "negative_not_allowed": "A negative amount or quantity on a sale: only a credit note (the column's "
    "negative_when, e.g. order_type return or cancellation) may carry one; `value` holds the value.",
    "missing_identifier": "None of the columns of a required_one_of group is filled; `field` lists the group.",
}

PROBLEM_TYPE = "STRUCT(field VARCHAR, reason VARCHAR, value VARCHAR)"

# Regular expressions are full matches (regexp_full_match); they decide the format, TRY_CAST the validity.
_INTEGER = r"[+-]?\d+(\.0*)?"  # "3.0" is an unambiguous integer (spreadsheets and float parquet write it)
_DECIMAL = r"[+-]?(\d+(\.\d*)?|\.\d+)"  # plain numbers only: no thousands separators, no exponent
_DOUBLE = _DECIMAL + r"([eE][+-]?\d+)?"  # a double may carry an exponent (1e-05), as printf('%.17g') writes one
_DATE_ISO = r"\d{4}-\d{2}-\d{2}"
_DATE_COMPACT = r"\d{8}"
_TIME = r"[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
_OFFSET = r"\s?(Z|z|[+-]\d{2}(:?\d{2})?)"
_TS_AWARE = _DATE_ISO + _TIME + _OFFSET
_TS_NAIVE = _DATE_ISO + f"({_TIME})?"
_EPOCH_S = r"\d{10}"
_EPOCH_MS = r"\d{13}"
_NULL = "CAST(NULL AS VARCHAR)"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _match(value: str, pattern: str) -> str:
    return f"regexp_full_match({value}, {literal(pattern)})"


def _in_zone(naive: str, timezone: str) -> str:
    """A naive local timestamp in ``timezone`` as a naive UTC timestamp."""
    if timezone == "UTC":
        return naive
    return f"timezone('UTC', timezone({literal(timezone)}, {naive}))"


def typed(column: Column, value: str, timezone: str) -> str:
    """SQL turning the trimmed VARCHAR ``value`` into the column's type; NULL when it does not parse."""
    match column.type:
        case "string":
            return value
        case "integer":
            return f"CASE WHEN {_match(value, _INTEGER)} THEN TRY_CAST(regexp_replace({value}, '\\.0*$', '') AS BIGINT) END"
        case "decimal":
            return f"CASE WHEN {_match(value, _DECIMAL)} THEN TRY_CAST({value} AS DECIMAL(18,4)) END"
        case "double":
            return f"CASE WHEN {_match(value, _DOUBLE)} THEN TRY_CAST({value} AS DOUBLE) END"
        case "boolean":
            true, false = ", ".join(map(literal, _TRUE)), ", ".join(map(literal, _FALSE))
            return f"CASE WHEN lower({value}) IN ({true}) THEN true WHEN lower({value}) IN ({false}) THEN false END"
        case "date":
            return (
                f"CASE WHEN {_match(value, _DATE_ISO)} THEN TRY_CAST({value} AS DATE) "
                f"WHEN {_match(value, _DATE_COMPACT)} THEN CAST(TRY_STRPTIME({value}, '%Y%m%d') AS DATE) END"
            )
        case "timestamp":
            # The order matters: 13 and 10 digits are epochs, 8 digits a compact date; an ISO string with
            # an offset carries its own zone, a naive one (or a bare date) is local time of the source.
            compact = _in_zone(f"TRY_STRPTIME({value}, '%Y%m%d')", timezone)
            naive = _in_zone(f"TRY_CAST({value} AS TIMESTAMP)", timezone)
            return (
                f"CASE WHEN {_match(value, _EPOCH_MS)} THEN epoch_ms(CAST({value} AS BIGINT)) "
                f"WHEN {_match(value, _EPOCH_S)} THEN make_timestamp(CAST({value} AS BIGINT) * 1000000) "
                f"WHEN {_match(value, _DATE_COMPACT)} THEN {compact} "
                f"WHEN {_match(value, _TS_AWARE)} THEN timezone('UTC', TRY_CAST({value} AS TIMESTAMPTZ)) "
                f"WHEN {_match(value, _TS_NAIVE)} THEN {naive} END"
            )
    raise ValueError(f"column {column.name}: unknown type {column.type!r}")


def _problem(field: str, reason: str, value: str) -> str:
    return f"{{'field': {literal(field)}, 'reason': {literal(reason)}, 'value': {value}}}"


def problem(column: Column, value: str, typed_value: str, row: dict[str, str] | None = None) -> str | None:
    """SQL: the first rule ``value`` breaks as a struct, NULL when it keeps them all; None if no rule applies.

    ``row`` maps the source's columns to their raw SQL values, for rules that read another column
    (negative_when); without it such a rule is treated as unmet.
    """
    branches: list[str] = []
    if column.required:
        branches.append(f"WHEN {value} IS NULL THEN {_problem(column.name, 'missing_required', _NULL)}")
    if column.type != "string":
        branches.append(
            f"WHEN {value} IS NOT NULL AND {typed_value} IS NULL THEN {_problem(column.name, 'bad_type', value)}"
        )
    if column.accepted is not None:
        accepted = ", ".join(map(literal, column.accepted))
        branches.append(f"WHEN {value} NOT IN ({accepted}) THEN {_problem(column.name, 'not_accepted', value)}")
    if column.negative_when is not None:
        when_column, values = column.negative_when
        credit_note = f"{row[when_column]} IN ({', '.join(map(literal, values))})" if row else "false"
        # A credit note's negative value is fine; zero still has to meet min (a line of 0 units is no line).
        branches.append(f"WHEN {typed_value} < 0 AND {credit_note} THEN NULL")
        branches.append(f"WHEN {typed_value} < 0 THEN {_problem(column.name, 'negative_not_allowed', value)}")
    bounds = [f"{typed_value} < {column.min}" if column.min is not None else None,
              f"{typed_value} > {column.max}" if column.max is not None else None]
    if any(bounds):
        outside = " OR ".join(b for b in bounds if b)
        branches.append(f"WHEN {outside} THEN {_problem(column.name, 'out_of_range', value)}")
    if not branches:
        return None
    return f"CASE {' '.join(branches)} END"


def problems(source: Source, raw: dict[str, str], typed_values: dict[str, str]) -> str:
    """SQL: the list of every problem of a row, in contract column order, identifier groups last."""
    items = [p for name, col in source.columns.items() if (p := problem(col, raw[name], typed_values[name], raw))]
    for group in source.required_one_of:
        all_empty = " AND ".join(f"{raw[name]} IS NULL" for name in group)
        items.append(f"CASE WHEN {all_empty} THEN {_problem('|'.join(group), 'missing_identifier', _NULL)} END")
    if not items:
        return f"CAST([] AS {PROBLEM_TYPE}[])"
    return f"list_filter([{', '.join(items)}], lambda p: p IS NOT NULL)"


def raw_name(column: str) -> str:
    return quote(f"r__{column}")


def typed_name(column: str) -> str:
    return quote(f"t__{column}")
