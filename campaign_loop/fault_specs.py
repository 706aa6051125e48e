"""The grammar of fault specs (``Settings.faults``, ``CAMPAIGN_LOOP_FAULTS``, CLI ``--faults``).

It sits beside the settings, not in the simulator, so that loading settings refuses a bad spec at once
without importing ``sim`` (which imports the settings): ``sim/faults.py`` documents what each kind does
and applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.contract import Column, Contract, load_contract

KINDS: tuple[str, ...] = (
    "corrupt_type", "drop_source", "duplicate_batch", "shift_timestamps", "break_randomisation", "spike_kpi",
    "scale_amounts", "resend_orders", "expose_holdout", "null_members", "rename_column", "locale_decimals",
    "future_rows", "colliding_ids", "negative_quantities", "currency_switch", "drop_optouts", "revoke_consents",
    "ignore_consent", "truncate_file", "header_only", "drop_day", "stale_file", "reencode", "lines_mismatch",
    "double_spend",
)
DEFAULT_BREAK_SHARE = 0.9
DEFAULT_SPIKE_FACTOR = 10.0
RESEND_SCOPES = ("day", "all")
DEFAULT_EXPOSE_SHARE = 0.2
# Sources whose <source>[:<number>] faults take a share (or a day), with the default and what the source
# needs: a share of rows of any source, or the sources the fault means something for.
SHARE_FAULTS: dict[str, tuple[float, tuple[str, ...] | None]] = {
    "null_members": (0.9, ("orders", "pos_receipts", "events", "coupon_redemptions", "reviews")),
    "future_rows": (0.1, None),
    "colliding_ids": (0.05, ("orders", "pos_receipts", "events", "coupon_redemptions", "reviews")),
    "negative_quantities": (0.2, ("order_lines", "pos_receipt_lines")),
    "currency_switch": (1350.0, ("orders", "pos_receipts")),
    "truncate_file": (0.6, None),
    "drop_day": (2.0, None),
    "lines_mismatch": (0.3, ("order_lines", "pos_receipt_lines")),
}
REENCODINGS = ("latin1", "bom")


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed or names an unknown source or column."""


@dataclass(frozen=True)
class Fault:
    kind: str
    source: str | None = None
    column: str | None = None
    value: float | None = None  # hours, share or factor
    cycle: int | None = None  # None: every cycle >= 1
    scope: str | None = None  # resend_orders: day or all
    spec: str = ""

    def applies_to(self, cycle: int) -> bool:
        return cycle >= 1 if self.cycle is None else cycle == self.cycle


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FaultSpecError(f"fault {spec!r}: {text!r} is not a number") from None


@dataclass(frozen=True)
class _Spec:
    """One spec split into its parts, with what every kind's parser needs to check them."""

    spec: str  # as given, for messages
    text: str  # stripped, kept on the fault
    kind: str
    parts: tuple[str, ...]
    cycle: int | None
    contract: Contract

    def error(self, message: str) -> FaultSpecError:
        return FaultSpecError(f"fault {self.spec!r}: {message}")

    def number(self, text: str) -> float:
        return _number(text, self.spec)

    def source_of(self, name: str) -> str:
        if name not in self.contract.sources:
            raise self.error(f"unknown source {name!r}; known: {', '.join(self.contract.sources)}")
        return name

    def columns_of(self, source: str) -> Mapping[str, Column]:
        return self.contract.source(self.source_of(source)).columns

    def fault(self, **fields: Any) -> Fault:
        return Fault(self.kind, cycle=self.cycle, spec=self.text, **fields)


def parse_fault(spec: str) -> Fault:
    """One spec, e.g. ``corrupt_type:orders.total_amount`` or ``shift_timestamps:orders:48@2``."""
    text = spec.strip()
    body, at, cycle_text = text.partition("@")
    cycle = None
    if at:
        if not cycle_text.strip().isdigit():
            raise FaultSpecError(f"fault {spec!r}: '@' must be followed by a cycle number, e.g. @1")
        cycle = int(cycle_text)
    kind, _, args = body.partition(":")
    kind = kind.strip()
    parts = tuple(p.strip() for p in args.split(":")) if args else ()
    parsed = _Spec(spec, text, kind, parts, cycle, load_contract())
    parser = _PARSERS.get(kind)
    if parser is None:
        raise parsed.error(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return parser(parsed)


def _corrupt_type(s: _Spec) -> Fault:
    if len(s.parts) != 1 or "." not in s.parts[0]:
        raise s.error("write corrupt_type:<source>.<column>")
    source, column = s.parts[0].split(".", 1)
    columns = s.columns_of(source)
    if column not in columns:
        raise s.error(f"{source} has no column {column!r}")
    if columns[column].type == "string":
        raise s.error(f"{source}.{column} is a string; every text parses as one")
    return s.fault(source=source, column=column)


def _one_source(s: _Spec) -> Fault:
    if len(s.parts) != 1:
        raise s.error(f"write {s.kind}:<source>")
    return s.fault(source=s.source_of(s.parts[0]))


def _shift_timestamps(s: _Spec) -> Fault:
    if len(s.parts) != 2:
        raise s.error("write shift_timestamps:<source>:<hours>")
    return s.fault(source=s.source_of(s.parts[0]), value=s.number(s.parts[1]))


def _scale_amounts(s: _Spec) -> Fault:
    target, eq, factor = (s.parts[0].partition("=") if len(s.parts) == 1 else ("", "", ""))
    if not eq or "." not in target:
        raise s.error("write scale_amounts:<source>.<column>=<factor>")
    source, column = target.split(".", 1)
    columns = s.columns_of(source)
    if column not in columns or columns[column].type != "decimal":
        raise s.error(f"{source}.{column} is not a decimal column of {source}")
    value = s.number(factor)
    if value <= 0:
        raise s.error("the factor must be positive")
    return s.fault(source=source, column=column, value=value)


def _resend_orders(s: _Spec) -> Fault:
    if len(s.parts) != 1 or s.parts[0] not in RESEND_SCOPES:
        raise s.error("write resend_orders:day or resend_orders:all")
    return s.fault(scope=s.parts[0])


def _share_of_source(s: _Spec) -> Fault:
    default, allowed = SHARE_FAULTS[s.kind]
    if len(s.parts) not in (1, 2):
        raise s.error(f"write {s.kind}:<source> or {s.kind}:<source>:<number>")
    source = s.source_of(s.parts[0])
    if allowed is not None and source not in allowed:
        raise s.error(f"{s.kind} applies to {', '.join(allowed)}")
    value = s.number(s.parts[1]) if len(s.parts) == 2 else default
    if s.kind == "drop_day":
        if not value.is_integer() or value < 0:
            raise s.error("the day is a whole number from 0")
    elif s.kind == "currency_switch":
        if value <= 0 or value == 1:
            raise s.error("the factor must be positive and not 1")
    elif not 0 < value <= 1:
        raise s.error("the share must lie in (0, 1]")
    return s.fault(source=source, value=value)


def _rename_column(s: _Spec) -> Fault:
    target, eq, name = (s.parts[0].partition("=") if len(s.parts) == 1 else ("", "", ""))
    if not eq or "." not in target or not name.strip():
        raise s.error("write rename_column:<source>.<column>=<new name>")
    source, column = target.split(".", 1)
    columns = s.columns_of(source)
    if column not in columns:
        raise s.error(f"{source} has no column {column!r}")
    if name.strip().lower() in columns:
        raise s.error(f"{name!r} is a column of {source} already")
    return s.fault(source=source, column=column, scope=name.strip())


def _reencode(s: _Spec) -> Fault:
    if len(s.parts) not in (1, 2) or (len(s.parts) == 2 and s.parts[1] not in REENCODINGS):
        raise s.error("write reencode:<source> or reencode:<source>:latin1|bom")
    return s.fault(source=s.source_of(s.parts[0]), scope=s.parts[1] if len(s.parts) == 2 else "latin1")


def _double_spend(s: _Spec) -> Fault:
    parts = s.parts
    if not parts or parts[0] != "ad_spend" or len(parts) > 2 or (len(parts) == 2 and not parts[1]):
        raise s.error("write double_spend:ad_spend or double_spend:ad_spend:<channel>")
    return s.fault(source="ad_spend", scope=parts[1] if len(parts) == 2 else None)


def _consents(s: _Spec) -> Fault:
    if s.parts:
        raise s.error(f"{s.kind} takes no argument")
    return s.fault(source="consents")


def _ignore_consent(s: _Spec) -> Fault:
    if len(s.parts) > 1:
        raise s.error("write ignore_consent or ignore_consent:<share>")
    value = s.number(s.parts[0]) if s.parts else 0.1
    if not 0 < value <= 1:
        raise s.error("the share must lie in (0, 1]")
    return s.fault(value=value)


def _optional_number(s: _Spec) -> Fault:
    if len(s.parts) > 1:
        raise s.error(f"write {s.kind} or {s.kind}:<number>")
    default = {"break_randomisation": DEFAULT_BREAK_SHARE, "spike_kpi": DEFAULT_SPIKE_FACTOR,
               "expose_holdout": DEFAULT_EXPOSE_SHARE}[s.kind]
    value = s.number(s.parts[0]) if s.parts else default
    if s.kind == "break_randomisation" and not 0 < value < 1:
        raise s.error("the share must lie strictly between 0 and 1")
    if s.kind == "expose_holdout" and not 0 < value <= 1:
        raise s.error("the share must lie in (0, 1]")
    if s.kind == "spike_kpi" and value <= 0:
        raise s.error("the factor must be positive")
    return s.fault(value=value)


# Kinds that read their arguments alike share a parser; a kind missing here is refused as unknown.
_PARSERS: dict[str, Callable[[_Spec], Fault]] = {
    "corrupt_type": _corrupt_type,
    "shift_timestamps": _shift_timestamps,
    "scale_amounts": _scale_amounts,
    "resend_orders": _resend_orders,
    "rename_column": _rename_column,
    "reencode": _reencode,
    "double_spend": _double_spend,
    "ignore_consent": _ignore_consent,
    **dict.fromkeys(("drop_source", "duplicate_batch", "locale_decimals", "header_only", "stale_file"), _one_source),
    **dict.fromkeys(SHARE_FAULTS, _share_of_source),
    **dict.fromkeys(("drop_optouts", "revoke_consents"), _consents),
    **dict.fromkeys(("break_randomisation", "spike_kpi", "expose_holdout"), _optional_number),
}


def parse_faults(specs: Iterable[str]) -> tuple[Fault, ...]:
    return tuple(parse_fault(s) for s in specs if s.strip())
