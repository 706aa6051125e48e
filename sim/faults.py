"""Fault injection: switches that break a cycle's landing batch on purpose, to prove the gate catches it.

``Settings.faults`` (``CAMPAIGN_LOOP_FAULTS``, CLI ``--faults``) is a comma-separated list of specs::

    corrupt_type:<source>.<column>       a share of the column's values become text no parser reads
    drop_source:<source>                 the source's file of the batch is not written
    duplicate_batch:<source>             the batch file is delivered twice (a re-export, other name)
    shift_timestamps:<source>:<hours>    every timestamp of the source moved by <hours> (e.g. 48: future)
    break_randomisation[:<share>]        <share> (default 0.9) of the control arm is contacted as treatment
    spike_kpi[:<factor>]                 order and receipt amounts multiplied by <factor> (default 10)
    scale_amounts:<source>.<column>=<f>  one amount column multiplied by <f> (a unit or currency slip, e.g. 100)
    resend_orders:day|all                a day's (or all) orders and receipts landed again under new ids
    expose_holdout[:<share>]             <share> (default 0.2) of the holdout sent to, with delivered/open events

A spec applies to every cycle >= 1 (cycle 0 builds the baseline the checks compare against), or to
one cycle only with ``@<cycle>``: ``drop_source:orders@3``. Faults are deterministic: the rows they
touch come from ``np.random.default_rng([seed, cycle, FAULT_STREAM])``, so a faulty cycle re-runs
byte-identically. What was applied is recorded in ``truth/faults/<cycle_id>.json``.

``sim/period.py`` calls the hooks: ``apply_to_plan`` before the campaign is executed,
``drops``/``apply_to_frame`` just before a source's frame is written, ``after_write`` after it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from campaign_loop.config import Settings
from ingest.contract import load_contract
from sim.landing import Col, Frame, concat_frames, frame_len, primary_format, render

KINDS: tuple[str, ...] = (
    "corrupt_type", "drop_source", "duplicate_batch", "shift_timestamps", "break_randomisation", "spike_kpi",
    "scale_amounts", "resend_orders", "expose_holdout",
)
FAULT_STREAM = 200  # random stream of a cycle's faults (sim/period.py uses 10..22 and 100+)
# What a spreadsheet writes when a formula fails: text that no decimal, integer, timestamp or boolean reads.
CORRUPT_VALUE = "#VALUE!"
CORRUPT_RATE = 0.25  # share of the column's rows corrupted; at least twice settings.quarantine_rate_max
DEFAULT_BREAK_SHARE = 0.9
DEFAULT_SPIKE_FACTOR = 10.0
SPIKE_COLUMNS: dict[str, str] = {"orders": "total_amount", "pos_receipts": "total_amount"}
RESENT_NAME = "resent"  # the second copy: <source>/<cycle_id>/resent.<ext>, the same batch
# resend_orders: the transaction headers re-exported under new ids (the export regenerated its ids).
RESEND_SOURCES: dict[str, str] = {"orders": "order_id", "pos_receipts": "receipt_id"}
RESEND_SCOPES = ("day", "all")
RESEND_SUFFIX = "-R"
DEFAULT_EXPOSE_SHARE = 0.2
# Holdout members exposed by expose_holdout, per (home, cycle): campaign_sends is written before
# campaign_events (the contract's order), and the events of those members must follow their sends.
_EXPOSED: dict[tuple[str, int], tuple[pa.Array, pa.Array, np.ndarray]] = {}


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


def active_faults(settings: Settings, cycle: int) -> tuple[Fault, ...]:
    return tuple(f for f in parse_faults(settings.faults) if f.applies_to(cycle))


def _rng(settings: Settings, cycle: int, fault: Fault) -> np.random.Generator:
    salt = KINDS.index(fault.kind)
    return np.random.default_rng([settings.seed, cycle, FAULT_STREAM, salt])


# --- hooks ----------------------------------------------------------------------------------------

def apply_to_plan(settings: Settings, cycle: int, plan: pd.DataFrame, faults: Sequence[Fault]) -> pd.DataFrame:
    """break_randomisation: the sender ignores most of the holdout and contacts it as treatment."""
    for fault in faults:
        if fault.kind != "break_randomisation" or plan is None or "arm" not in plan:
            continue
        control = np.flatnonzero((plan["arm"].astype(str) == "control").to_numpy())
        moved = control[_rng(settings, cycle, fault).random(len(control)) < float(fault.value or 0)]
        plan = plan.copy()
        plan.iloc[moved, plan.columns.get_loc("arm")] = "treatment"
    return plan


def drops(source: str, faults: Sequence[Fault]) -> bool:
    return any(f.kind == "drop_source" and f.source == source for f in faults)


def apply_to_frame(settings: Settings, cycle: int, source: str, frame: Frame, faults: Sequence[Fault]) -> Frame:
    """The frame-level faults of ``source``: corrupted values, shifted timestamps, spiked amounts."""
    if not frame_len(frame):
        return frame
    frame = dict(frame)
    # Amounts first, then the re-sent copy (it repeats the amounts as landed), corrupt last: it turns a
    # column into text.
    order = ("spike_kpi", "scale_amounts", "expose_holdout", "resend_orders", "shift_timestamps", "corrupt_type")
    for fault in sorted(faults, key=lambda f: order.index(f.kind) if f.kind in order else -1):
        if fault.kind == "spike_kpi" and SPIKE_COLUMNS.get(source) in frame:
            frame[SPIKE_COLUMNS[source]] = _scaled(frame[SPIKE_COLUMNS[source]], fault.value)
        elif fault.kind == "scale_amounts" and fault.source == source and fault.column in frame:
            frame[fault.column] = _scaled(frame[fault.column], fault.value)
        elif fault.kind == "resend_orders" and source in RESEND_SOURCES:
            frame = _resent(frame, RESEND_SOURCES[source], fault.scope or "all")
        elif fault.kind == "expose_holdout" and source in ("campaign_sends", "campaign_events"):
            frame = _exposed(settings, cycle, source, frame, fault)
        elif fault.kind == "shift_timestamps" and fault.source == source:
            seconds = int(round(float(fault.value or 0) * 3_600))
            for name, col in frame.items():
                if col.kind == "ts":
                    frame[name] = Col("ts", np.asarray(col.values, dtype=np.int64) + seconds, col.mask)
        elif fault.kind == "corrupt_type" and fault.source == source and fault.column in frame:
            col = frame[fault.column]
            rate = min(1.0, max(CORRUPT_RATE, 2 * settings.quarantine_rate_max))
            hit = _rng(settings, cycle, fault).random(len(col)) < rate
            text = render(col, primary_format(source), zone=settings.timezone)
            bad = pa.array(np.full(int(hit.sum()), CORRUPT_VALUE), type=pa.string())
            frame[fault.column] = Col("str", pc.replace_with_mask(text, pa.array(hit), bad))
    return frame


def _scaled(col: Col, factor: float | None) -> Col:
    if col.kind != "cents":
        return col
    values = np.round(np.asarray(col.values, dtype=np.float64) * float(factor or 1)).astype(np.int64)
    return Col("cents", values, col.mask)


def _resent(frame: Frame, id_column: str, scope: str) -> Frame:
    """The frame plus a copy of its first day's rows (``day``) or all rows (``all``) under new ids.

    The copy keeps every other value, so by content it is the same purchase counted again: what an
    export does when it regenerates its ids and re-sends what was already delivered.
    """
    if id_column not in frame:
        return frame
    stamps = next((c for c in frame.values() if c.kind == "ts"), None)
    rows = np.arange(frame_len(frame))
    if scope == "day" and stamps is not None:
        values = np.asarray(stamps.values, dtype=np.int64)
        present = values if stamps.mask is None else values[~stamps.mask]
        if len(present):
            rows = rows[values < present.min() + 86_400]
    copy = {name: col.take(rows) for name, col in frame.items()}
    ids = copy[id_column]
    copy[id_column] = Col("str", pc.binary_join_element_wise(
        pa.array(ids.values).cast(pa.string()), pa.scalar(RESEND_SUFFIX), ""), ids.mask)
    return concat_frames([frame, copy])


def _exposed(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """expose_holdout: a share of the holdout (arm control) is sent to anyway; its sends carry a sent_at
    and campaign_events gains their delivered (and, for half of them, open) events."""
    key = (str(settings.home), cycle)
    if source == "campaign_sends":
        _EXPOSED.pop(key, None)
        if not {"arm", "sent_at", "campaign_id", "member_id"} <= set(frame):
            return frame
        arm = np.asarray(pa.array(frame["arm"].values).cast(pa.string()).to_pylist(), dtype=object)
        control = np.flatnonzero(arm == "control")
        chosen = control[_rng(settings, cycle, fault).random(len(control)) < float(fault.value or 0)]
        sent = frame["sent_at"]
        values = np.asarray(sent.values, dtype=np.int64).copy()
        mask = np.zeros(len(values), dtype=bool) if sent.mask is None else sent.mask.copy()
        if not len(chosen) or mask.all():
            return frame
        values[chosen] = int(np.median(values[~mask]))  # sent with the campaign's other messages
        mask[chosen] = False
        frame["sent_at"] = Col("ts", values, mask)
        _EXPOSED[key] = (frame["campaign_id"].take(chosen).values, frame["member_id"].take(chosen).values,
                         values[chosen])
        return frame
    exposed = _EXPOSED.pop(key, None)
    if exposed is None or not {"campaign_id", "member_id", "event_type", "occurred_at"} <= set(frame):
        return frame
    campaigns, members, sent_at = exposed
    opened = _rng(settings, cycle, fault).random(len(sent_at)) < 0.5
    rows = np.concatenate([np.arange(len(sent_at)), np.flatnonzero(opened)])
    types = np.concatenate([np.zeros(len(sent_at), dtype=np.int64), np.ones(int(opened.sum()), dtype=np.int64)])
    added: Frame = {
        "campaign_id": Col("str", pa.array(campaigns).cast(pa.string()).take(pa.array(rows))),
        "member_id": Col("str", pa.array(members).cast(pa.string()).take(pa.array(rows))),
        "event_type": Col("str", pa.array(["delivered", "open"], type=pa.string()).take(pa.array(types))),
        "occurred_at": Col("ts", sent_at[rows] + 60 * (1 + types)),
    }
    return concat_frames([frame, added])


def after_write(settings: Settings, cycle: int, source: str, path: Path, faults: Sequence[Fault]) -> list[Path]:
    """duplicate_batch: the batch file again as ``<source>/<batch>/resent.<ext>``, rows in reverse order.

    A byte-identical copy would be skipped by ingestion (files are recognised by their sha256); a
    re-export with the same rows is what slips through and doubles every key of the batch.
    """
    written: list[Path] = []
    for fault in faults:
        if fault.kind != "duplicate_batch" or fault.source != source or not path.exists():
            continue
        copy = path.parent / path.name.split(".")[0] / f"{RESENT_NAME}{''.join(path.suffixes)}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            pq.write_table(table.take(pa.array(np.arange(table.num_rows)[::-1])), copy)
        else:
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            with copy.open("w", newline="") as f:
                csv.writer(f, lineterminator="\n").writerows([rows[0], *reversed(rows[1:])])
        written.append(copy)
    return written


def record(settings: Settings, cycle_id: str, faults: Sequence[Fault]) -> None:
    """The faults applied to a cycle, in the truth (the platform never reads it); none: no file."""
    path = settings.truth_dir / "faults" / f"{cycle_id}.json"
    if not faults:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in faults], indent=2) + "\n")
