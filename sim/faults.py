"""Fault injection: switches that break a cycle's landing batch on purpose, to prove the gate catches it.

``Settings.faults`` (``CAMPAIGN_LOOP_FAULTS``, CLI ``--faults``) is a comma-separated list of specs::

    corrupt_type:<source>.<column>       a share of the column's values become text no parser reads
    drop_source:<source>                 the source's file of the batch is not written
    duplicate_batch:<source>             the batch file is delivered twice (a re-export, other name)
    shift_timestamps:<source>:<hours>    every timestamp of the source moved by <hours> (e.g. 48: future)
    break_randomisation[:<share>]        <share> (default 0.9) of the control arm is contacted as treatment
    spike_kpi[:<factor>]                 order and receipt amounts multiplied by <factor> (default 10)

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
from sim.landing import Col, Frame, frame_len, primary_format, render

KINDS: tuple[str, ...] = (
    "corrupt_type", "drop_source", "duplicate_batch", "shift_timestamps", "break_randomisation", "spike_kpi",
)
FAULT_STREAM = 200  # random stream of a cycle's faults (sim/period.py uses 10..22 and 100+)
# What a spreadsheet writes when a formula fails: text that no decimal, integer, timestamp or boolean reads.
CORRUPT_VALUE = "#VALUE!"
CORRUPT_RATE = 0.25  # share of the column's rows corrupted; at least twice settings.quarantine_rate_max
DEFAULT_BREAK_SHARE = 0.9
DEFAULT_SPIKE_FACTOR = 10.0
SPIKE_COLUMNS: dict[str, str] = {"orders": "total_amount", "pos_receipts": "total_amount"}
RESENT_NAME = "resent"  # the second copy: <source>/<cycle_id>/resent.<ext>, the same batch


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed or names an unknown source or column."""


@dataclass(frozen=True)
class Fault:
    kind: str
    source: str | None = None
    column: str | None = None
    value: float | None = None  # hours, share or factor
    cycle: int | None = None  # None: every cycle >= 1
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
    if kind in ("break_randomisation", "spike_kpi"):
        if len(parts) > 1:
            raise FaultSpecError(f"fault {spec!r}: write {kind} or {kind}:<number>")
        default = DEFAULT_BREAK_SHARE if kind == "break_randomisation" else DEFAULT_SPIKE_FACTOR
        value = _number(parts[0], spec) if parts else default
        if kind == "break_randomisation" and not 0 < value < 1:
            raise FaultSpecError(f"fault {spec!r}: the share must lie strictly between 0 and 1")
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
    order = ("spike_kpi", "shift_timestamps", "corrupt_type")  # corrupt last: it turns a column into text
    for fault in sorted(faults, key=lambda f: order.index(f.kind) if f.kind in order else -1):
        if fault.kind == "spike_kpi" and SPIKE_COLUMNS.get(source) in frame:
            col = frame[SPIKE_COLUMNS[source]]
            if col.kind == "cents":
                spiked = np.round(np.asarray(col.values, dtype=np.float64) * float(fault.value or 1)).astype(np.int64)
                frame[SPIKE_COLUMNS[source]] = Col("cents", spiked, col.mask)
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
