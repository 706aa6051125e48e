"""Landing files: typed columns rendered as text the way a retailer's export would, plus dirt.

A ``Frame`` is one source's rows as typed columns (``Col``); ``write_source`` renders it, applies the
configured dirt (duplicates, missing required values, other timestamp formats, junk identifiers,
malformed rows, an unexpected column, late events) and writes the batch file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from campaign_loop.config import Settings
from ingest.contract import load_contract
from sim import ids


@dataclass(frozen=True)
class Col:
    kind: str  # str | ts | cents | int | bool | date
    values: np.ndarray | pa.Array
    mask: np.ndarray | None = None  # True where the value is absent

    def __len__(self) -> int:
        return len(self.values)

    def take(self, rows: np.ndarray) -> Col:
        values = self.values.take(pa.array(rows)) if isinstance(self.values, pa.Array) else self.values[rows]
        return Col(self.kind, values, None if self.mask is None else self.mask[rows])


Frame = dict[str, Col]

# Default dirt rates, multiplied by settings.dirt.
DUPLICATE_RATE = 0.005
MISSING_RATE = 0.001
OTHER_TIMESTAMP_RATE = 0.02
LATE_EVENT_RATE = 0.01
MALFORMED_RATE = 0.0005
JUNK_ID_RATE = 0.003
EXTRA_COLUMN_PROB = 0.05  # per file
JUNK_IDS: tuple[str, ...] = ("unknown", "0", "")
EXTRA_COLUMNS: tuple[str, ...] = ("export_batch_id", "source_system", "legacy_flag")

# Each source's usual timestamp format; dirt mixes in the others.
PRIMARY_FORMAT: dict[str, str] = {
    "orders": "iso_offset",
    "pos_receipts": "naive_local",
    "campaign_events": "epoch_ms",
    "coupon_redemptions": "iso_offset",
}
AWARE_FORMATS: tuple[str, ...] = ("iso_z", "iso_offset", "epoch_s", "epoch_ms")


def primary_format(source: str) -> str:
    return PRIMARY_FORMAT.get(source, "iso_z")


def frame_len(frame: Frame) -> int:
    return len(next(iter(frame.values()))) if frame else 0


def concat_frames(frames: list[Frame]) -> Frame:
    """Rows of several frames of one source; a column absent from a part is empty there."""
    frames = [f for f in frames if frame_len(f)]
    if not frames:
        return {}
    names: list[str] = []
    for f in frames:
        names += [c for c in f if c not in names]
    out: Frame = {}
    for name in names:
        kind = next(f[name].kind for f in frames if name in f)
        parts, masks = [], []
        for f in frames:
            n = frame_len(f)
            if name in f:
                col = f[name]
                parts.append(col.values)
                masks.append(np.zeros(n, dtype=bool) if col.mask is None else col.mask)
            else:
                parts.append(pa.nulls(n, pa.string()) if kind == "str" else np.zeros(n, dtype=np.int64))
                masks.append(np.ones(n, dtype=bool))
        if kind == "str":
            values: np.ndarray | pa.Array = pa.concat_arrays([p.cast(pa.string()) for p in parts])
        else:
            values = np.concatenate(parts)
        mask = np.concatenate(masks)
        out[name] = Col(kind, values, mask if mask.any() else None)
    return out


def _with_nulls(arr: pa.Array, mask: np.ndarray | None) -> pa.Array:
    if mask is None or not mask.any():
        return arr
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), arr)


def render(col: Col, fmt: str, formats: np.ndarray | None = None, zone: str = "Asia/Seoul") -> pa.Array:
    """A column as strings; ``formats`` picks a timestamp format per row (index into TIMESTAMP_FORMATS);
    naive local times are wall-clock time in ``zone`` (Settings ``timezone``)."""
    if col.kind == "str":
        text = col.values.cast(pa.string())
    elif col.kind == "ts":
        text = ids.timestamps(col.values, fmt, zone)
        if formats is not None:
            for code, other in enumerate(ids.TIMESTAMP_FORMATS):
                rows = formats == code
                if other != fmt and rows.any():
                    text = pc.replace_with_mask(text, pa.array(rows), ids.timestamps(col.values[rows], other, zone))
    elif col.kind == "cents":
        text = ids.cents(col.values)
    elif col.kind == "int":
        text = pa.array(np.asarray(col.values, dtype=np.int64)).cast(pa.string())
    elif col.kind == "bool":
        text = ids.vocab(("false", "true"), np.asarray(col.values, dtype=np.int64))
    elif col.kind == "date":
        text = ids.dates(col.values)
    else:
        raise ValueError(f"unknown column kind {col.kind!r}")
    return _with_nulls(text, col.mask)


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int
    late: pa.Table | None


def _clean_table(source: str, frame: Frame, zone: str) -> pa.Table:
    fmt = primary_format(source)
    return pa.table({name: render(col, fmt, zone=zone) for name, col in frame.items()})


def write_source(
    settings: Settings,
    source: str,
    frame: Frame,
    path: Path,
    rng: np.random.Generator,
    late_in: pa.Table | None = None,
    hold_late: bool = False,
) -> Written:
    """Render, dirty and write one source's batch file; returns the rows held back as late events."""
    spec = load_contract().source(source)
    unknown = set(frame) - set(spec.columns)
    if unknown:
        raise ValueError(f"{source}: columns {sorted(unknown)} are not in the landing contract")
    frame = {name: frame[name] for name in spec.columns if name in frame}  # contract order
    dirt = settings.dirt
    n = frame_len(frame)
    rows = np.arange(n)
    late_out = None
    if hold_late and dirt > 0:
        held = rng.random(n) < LATE_EVENT_RATE * dirt
        if held.any():
            late_out = _clean_table(source, {k: c.take(rows[held]) for k, c in frame.items()}, settings.timezone)
        rows = rows[~held]
    duplicates = rows[rng.random(len(rows)) < DUPLICATE_RATE * dirt]
    rows = np.concatenate([rows, rng.permutation(duplicates)])  # a re-sent row arrives later in the file
    frame = {k: c.take(rows) for k, c in frame.items()}
    m = len(rows)

    fmt = primary_format(source)
    others = [ids.TIMESTAMP_FORMATS.index(f) for f in AWARE_FORMATS if f != fmt]
    required = [c for c in spec.required_columns if c in frame]
    missing = rng.random(m) < MISSING_RATE * dirt
    missing_col = rng.integers(0, max(len(required), 1), m)
    bad_amount = rng.random(m) < MALFORMED_RATE / 2 * dirt
    columns: dict[str, pa.Array] = {}
    for name, col in frame.items():
        formats = None
        if col.kind == "ts":
            other = rng.random(m) < OTHER_TIMESTAMP_RATE * dirt
            formats = np.where(other, np.array(others)[rng.integers(0, len(others), m)], ids.TIMESTAMP_FORMATS.index(fmt))
        text = render(col, fmt, formats, settings.timezone)
        if name in ("cookie_id", "device_id"):
            junk = rng.random(m) < JUNK_ID_RATE * dirt
            if junk.any():
                text = pc.replace_with_mask(text, pa.array(junk), ids.vocab(JUNK_IDS, rng.integers(0, len(JUNK_IDS), junk.sum())))
        if col.kind == "cents" and bad_amount.any():
            # An export that wrote a locale decimal comma and a stray character: '12,3x'.
            comma = pc.replace_substring(text.filter(pa.array(bad_amount)), ".", ",")
            bad = pc.binary_join_element_wise(pc.utf8_slice_codeunits(comma, 0, -1), "x", "")
            text = pc.replace_with_mask(text, pa.array(bad_amount), bad)
        if name in required:
            blank = missing & (missing_col == required.index(name))
            text = _with_nulls(text, blank)
        columns[name] = text
    table = pa.table(columns)
    if late_in is not None and late_in.num_rows:
        late_cols = {
            name: late_in.column(name) if name in late_in.column_names else pa.nulls(late_in.num_rows, pa.string())
            for name in table.column_names
        }
        table = pa.concat_tables([pa.table(late_cols), table])
    if rng.random() < EXTRA_COLUMN_PROB * dirt:
        extra = EXTRA_COLUMNS[int(rng.integers(0, len(EXTRA_COLUMNS)))]
        table = table.append_column(extra, pa.array(np.full(table.num_rows, f"{source}-{path.stem}")))

    path.parent.mkdir(parents=True, exist_ok=True)
    if settings.file_format == "parquet":
        pq.write_table(table, path)
        return Written(path, table.num_rows, late_out)
    malformed = rng.random(table.num_rows) < MALFORMED_RATE / 2 * dirt
    lines = _malformed_lines(table.filter(pa.array(malformed)), rng) if malformed.any() else ""
    table = table.filter(pa.array(~malformed)) if malformed.any() else table
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
    if lines:
        with path.open("a", newline="") as f:
            f.write(lines)
    return Written(path, table.num_rows + int(malformed.sum()), late_out)


def _malformed_lines(rows: pa.Table, rng: np.random.Generator) -> str:
    """Rows with a field too few or too many: what a broken exporter or a stray delimiter produces."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for values in zip(*(rows.column(i).to_pylist() for i in range(rows.num_columns)), strict=True):
        fields = ["" if v is None else v for v in values]
        writer.writerow(fields[:-1] if rng.random() < 0.5 else [*fields, "x"])
    return out.getvalue()
