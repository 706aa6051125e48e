"""The grammar of fault specs (``Settings.faults``, ``CAMPAIGN_LOOP_FAULTS``, CLI ``--faults``).

It sits beside the settings, not in the simulator, so that loading settings refuses a bad spec at once
without importing ``sim`` (which imports the settings): ``sim/faults.py`` documents what each kind does
and applies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest.contract import load_contract

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
    parts = [p.strip() for p in args.split(":")] if args else []
    contract = load_contract()

    def source_of(name: str) -> str:
        if name not in contract.sources:
            raise FaultSpecError(f"fault {spec!r}: unknown source {name!r}; known: {', '.join(contract.sources)}")
        return name

    if kind == "corrupt_type":
        if len(parts) != 1 or "." not in parts[0]:
            raise FaultSpecError(f"fault {spec!r}: write corrupt_type:<source>.<column>")
        source, column = parts[0].split(".", 1)
        columns = contract.source(source_of(source)).columns
        if column not in columns:
            raise FaultSpecError(f"fault {spec!r}: {source} has no column {column!r}")
        if columns[column].type == "string":
            raise FaultSpecError(f"fault {spec!r}: {source}.{column} is a string; every text parses as one")
        return Fault(kind, source, column, cycle=cycle, spec=text)
    if kind in ("drop_source", "duplicate_batch"):
        if len(parts) != 1:
            raise FaultSpecError(f"fault {spec!r}: write {kind}:<source>")
        return Fault(kind, source_of(parts[0]), cycle=cycle, spec=text)
    if kind == "shift_timestamps":
        if len(parts) != 2:
            raise FaultSpecError(f"fault {spec!r}: write shift_timestamps:<source>:<hours>")
        return Fault(kind, source_of(parts[0]), value=_number(parts[1], spec), cycle=cycle, spec=text)
    if kind == "scale_amounts":
        target, eq, factor = (parts[0].partition("=") if len(parts) == 1 else ("", "", ""))
        if not eq or "." not in target:
            raise FaultSpecError(f"fault {spec!r}: write scale_amounts:<source>.<column>=<factor>")
        source, column = target.split(".", 1)
        columns = contract.source(source_of(source)).columns
        if column not in columns or columns[column].type != "decimal":
            raise FaultSpecError(f"fault {spec!r}: {source}.{column} is not a decimal column of {source}")
        value = _number(factor, spec)
        if value <= 0:
            raise FaultSpecError(f"fault {spec!r}: the factor must be positive")
        return Fault(kind, source, column, value=value, cycle=cycle, spec=text)
    if kind == "resend_orders":
        if len(parts) != 1 or parts[0] not in RESEND_SCOPES:
            raise FaultSpecError(f"fault {spec!r}: write resend_orders:day or resend_orders:all")
        return Fault(kind, cycle=cycle, spec=text, scope=parts[0])
    if kind in SHARE_FAULTS:
        default, allowed = SHARE_FAULTS[kind]
        if len(parts) not in (1, 2):
            raise FaultSpecError(f"fault {spec!r}: write {kind}:<source> or {kind}:<source>:<number>")
        source = source_of(parts[0])
        if allowed is not None and source not in allowed:
            raise FaultSpecError(f"fault {spec!r}: {kind} applies to {', '.join(allowed)}")
        value = _number(parts[1], spec) if len(parts) == 2 else default
        if kind == "drop_day":
            if not value.is_integer() or value < 0:
                raise FaultSpecError(f"fault {spec!r}: the day is a whole number from 0")
        elif kind == "currency_switch":
            if value <= 0 or value == 1:
                raise FaultSpecError(f"fault {spec!r}: the factor must be positive and not 1")
        elif not 0 < value <= 1:
            raise FaultSpecError(f"fault {spec!r}: the share must lie in (0, 1]")
        return Fault(kind, source, value=value, cycle=cycle, spec=text)
    if kind == "rename_column":
        target, eq, name = (parts[0].partition("=") if len(parts) == 1 else ("", "", ""))
        if not eq or "." not in target or not name.strip():
            raise FaultSpecError(f"fault {spec!r}: write rename_column:<source>.<column>=<new name>")
        source, column = target.split(".", 1)
        columns = contract.source(source_of(source)).columns
        if column not in columns:
            raise FaultSpecError(f"fault {spec!r}: {source} has no column {column!r}")
        if name.strip().lower() in columns:
            raise FaultSpecError(f"fault {spec!r}: {name!r} is a column of {source} already")
        return Fault(kind, source, column, cycle=cycle, scope=name.strip(), spec=text)
    if kind in ("locale_decimals", "header_only", "stale_file"):
        if len(parts) != 1:
            raise FaultSpecError(f"fault {spec!r}: write {kind}:<source>")
        return Fault(kind, source_of(parts[0]), cycle=cycle, spec=text)
    if kind == "reencode":
        if len(parts) not in (1, 2) or (len(parts) == 2 and parts[1] not in REENCODINGS):
            raise FaultSpecError(f"fault {spec!r}: write reencode:<source> or reencode:<source>:latin1|bom")
        return Fault(kind, source_of(parts[0]), cycle=cycle, scope=parts[1] if len(parts) == 2 else "latin1",
                     spec=text)
    if kind == "double_spend":
        if not parts or parts[0] != "ad_spend" or len(parts) > 2 or (len(parts) == 2 and not parts[1]):
            raise FaultSpecError(f"fault {spec!r}: write double_spend:ad_spend or double_spend:ad_spend:<channel>")
        return Fault(kind, "ad_spend", cycle=cycle, scope=parts[1] if len(parts) == 2 else None, spec=text)
    if kind in ("drop_optouts", "revoke_consents"):
        if parts:
            raise FaultSpecError(f"fault {spec!r}: {kind} takes no argument")
        return Fault(kind, "consents", cycle=cycle, spec=text)
    if kind == "ignore_consent":
        if len(parts) > 1:
            raise FaultSpecError(f"fault {spec!r}: write ignore_consent or ignore_consent:<share>")
        value = _number(parts[0], spec) if parts else 0.1
        if not 0 < value <= 1:
            raise FaultSpecError(f"fault {spec!r}: the share must lie in (0, 1]")
        return Fault(kind, value=value, cycle=cycle, spec=text)
    if kind in ("break_randomisation", "spike_kpi", "expose_holdout"):
        if len(parts) > 1:
            raise FaultSpecError(f"fault {spec!r}: write {kind} or {kind}:<number>")
        default = {"break_randomisation": DEFAULT_BREAK_SHARE, "spike_kpi": DEFAULT_SPIKE_FACTOR,
                   "expose_holdout": DEFAULT_EXPOSE_SHARE}[kind]
        value = _number(parts[0], spec) if parts else default
        if kind == "break_randomisation" and not 0 < value < 1:
            raise FaultSpecError(f"fault {spec!r}: the share must lie strictly between 0 and 1")
        if kind == "expose_holdout" and not 0 < value <= 1:
            raise FaultSpecError(f"fault {spec!r}: the share must lie in (0, 1]")
        if kind == "spike_kpi" and value <= 0:
            raise FaultSpecError(f"fault {spec!r}: the factor must be positive")
        return Fault(kind, value=value, cycle=cycle, spec=text)
    raise FaultSpecError(f"fault {spec!r}: unknown kind {kind!r}; known: {', '.join(KINDS)}")


def parse_faults(specs: Iterable[str]) -> tuple[Fault, ...]:
    return tuple(parse_fault(s) for s in specs if s.strip())
