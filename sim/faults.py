"""Fault injection: switches that break a cycle's landing batch on purpose, to prove the gate catches it.

``Settings.faults`` (``CAMPAIGN_LOOP_FAULTS``, CLI ``--faults``) is a comma-separated list of specs::

    corrupt_type:<source>.<column>       a share of the column's values become text no parser reads
    drop_source:<source>                 the source's file of the batch is not written
    duplicate_batch:<source>             the batch file is delivered twice (a re-export, other name)
    shift_timestamps:<source>:<hours>    every timestamp of the source moved by <hours> (e.g. 48: future)
    break_randomisation[:<share>]        <share> (default 0.9) of the control arm is contacted as treatment
    spike_kpi[:<factor>]                 order and receipt amounts, and their lines' prices, multiplied by
                                         <factor> (default 10): revenue up as a real surge's, lines adding up
    scale_amounts:<source>.<column>=<f>  one amount column multiplied by <f> (a unit or currency slip, e.g. 100)
    resend_orders:day|all                a day's (or all) orders and receipts landed again under new ids
    expose_holdout[:<share>]             <share> (default 0.2) of the holdout sent to, with delivered/open events
    null_members:<source>[:<share>]      member_id emptied on <share> (default 0.9) of the rows (a broken join)
    rename_column:<source>.<col>=<name>  the header names the column <name> (an export's new template)
    locale_decimals:<source>             a European spreadsheet's export: ';' between fields, ',' in decimals
    future_rows:<source>[:<share>]       <share> (default 0.1) of the rows dated one cycle later (a year typo)
    colliding_ids:<source>[:<share>]     <share> (default 0.05) of the rows take another row's id (per-store ids)
    negative_quantities:<source>[:<share>]  <share> (default 0.2) of sale lines with a negative quantity
    currency_switch:<source>[:<factor>]  a transaction source's amounts and its lines' prices in another
                                         currency: multiplied by <factor> (default 1350, units to KRW)
    drop_optouts                         the consents export filtered to opt-ins: every opt-out row left out
    revoke_consents                      the consents export writes opt_out on every row
    ignore_consent[:<share>]             <share> (default 0.1) of the campaign's recipients had opted out of
                                         its channel the day before it started (the CRM has it; the sender
                                         did not suppress them)
    truncate_file:<source>[:<share>]     the CSV file cut after <share> (default 0.6) of its bytes, mid-row
    header_only:<source>                 the CSV file holds its header and no row
    drop_day:<source>[:<day>]            the rows of the cycle's day <day> (0-based, default 2) left out
    stale_file:<source>                  the previous cycle's file delivered again under this cycle's name
    reencode:<source>[:latin1|bom]       the CSV file re-sent in latin-1 (default; a share of its text values
                                         spelt with accents first, as a European CRM holds names) or in
                                         UTF-8 with a byte-order mark before the header
    lines_mismatch:<lines source>[:<share>]  <share> (default 0.3) of the orders (receipts) with 2+ lines lose
                                         one line: lines no longer sum to the header's total
    double_spend:ad_spend[:<channel>]    one channel's spend doubled (default: the channel spending most),
                                         its impressions and clicks not: the export summed it twice

A spec applies to every cycle >= 1 (cycle 0 builds the baseline the checks compare against), or to
one cycle only with ``@<cycle>``: ``drop_source:orders@3``. Faults are deterministic: the rows they
touch come from ``np.random.default_rng([seed, cycle, FAULT_STREAM])``, so a faulty cycle re-runs
byte-identically. What was applied is recorded in ``truth/faults/<cycle_id>.json``.

``sim/period.py`` calls the hooks: ``apply_to_plan`` before the campaign is executed,
``drops``/``apply_to_frame`` just before a source's frame is written, ``after_write`` after it.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from campaign_loop.config import Settings
from campaign_loop.fault_specs import KINDS, Fault, parse_faults

# The grammar's error and parser stay importable from here, where the tests and the fault matrix look.
from campaign_loop.fault_specs import FaultSpecError as FaultSpecError
from campaign_loop.fault_specs import parse_fault as parse_fault
from ingest.contract import load_contract
from sim.landing import Col, Frame, concat_frames, frame_len, primary_format, render

FAULT_STREAM = 200  # random stream of a cycle's faults (sim/period.py uses 10..22 and 100+)
# What a spreadsheet writes when a formula fails: text that no decimal, integer, timestamp or boolean reads.
CORRUPT_VALUE = "#VALUE!"
CORRUPT_RATE = 0.25  # share of the column's rows corrupted; at least twice settings.quarantine_rate_max
RESENT_NAME = "resent"  # the second copy: <source>/<cycle_id>/resent.<ext>, the same batch
# resend_orders: the transaction headers re-exported under new ids (the export regenerated its ids).
RESEND_SOURCES: dict[str, str] = {"orders": "order_id", "pos_receipts": "receipt_id"}
RESEND_SUFFIX = "-R"
# Holdout members exposed by expose_holdout, per (home, cycle): campaign_sends is written before
# campaign_events (the contract's order), and the events of those members must follow their sends.
_EXPOSED: dict[tuple[str, int], tuple[pa.Array, pa.Array, np.ndarray]] = {}
# currency_switch: the amount columns of a transaction source and of its lines, and the new currency's code.
CURRENCY_AMOUNTS: dict[str, dict[str, tuple[str, ...]]] = {
    "orders": {"orders": ("total_amount", "discount_amount", "shipping_amount"),
               "order_lines": ("unit_price", "discount_amount")},
    "pos_receipts": {"pos_receipts": ("total_amount", "discount_amount"),
                     "pos_receipt_lines": ("unit_price", "discount_amount")},
}
SWITCHED_CURRENCY = "KRW"
# spike_kpi: every amount of the transaction headers and of their lines.
SPIKE_COLUMNS: dict[str, tuple[str, ...]] = {s: c for amounts in CURRENCY_AMOUNTS.values() for s, c in amounts.items()}
# Sources written as one file whose bytes a file fault rewrites.
FILE_FAULTS = ("rename_column", "locale_decimals", "truncate_file", "header_only", "stale_file", "reencode")
# reencode:<source>:latin1 on an all-ASCII file changes no byte; the world's names are ASCII, so a share of
# the text values get the accents a European CRM's names carry (one vowel each), then the file is latin-1.
ACCENTED = {"a": "\u00e1", "e": "\u00e9", "i": "\u00ed", "o": "\u00f3", "u": "\u00fc"}
ACCENT_SHARE = 0.3
# Free text a person typed (names, cities): the columns reencode accents; codes and ids stay ASCII.
TEXT_COLUMNS = ("full_name", "city", "product_name", "campaign_name")
DOUBLE_SPEND_FACTOR = 2
# ignore_consent: the plan's treatment members and channels, per (home, cycle), from apply_to_plan to the
# consents file written later in the same simulate_period.
_PLANNED: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}




def active_faults(settings: Settings, cycle: int) -> tuple[Fault, ...]:
    return tuple(f for f in parse_faults(settings.faults) if f.applies_to(cycle))


def _rng(settings: Settings, cycle: int, fault: Fault) -> np.random.Generator:
    salt = KINDS.index(fault.kind)
    return np.random.default_rng([settings.seed, cycle, FAULT_STREAM, salt])


# --- hooks ----------------------------------------------------------------------------------------

def apply_to_plan(settings: Settings, cycle: int, plan: pd.DataFrame, faults: Sequence[Fault]) -> pd.DataFrame:
    """break_randomisation: the sender ignores most of the holdout and contacts it as treatment.

    ignore_consent: the plan's treatment members and channels are kept for the consents file."""
    key = (str(settings.home), cycle)
    _PLANNED.pop(key, None)
    if any(f.kind == "ignore_consent" for f in faults) and plan is not None and {"arm", "member_id", "channel"} <= set(plan):
        treated = plan[plan["arm"].astype(str) == "treatment"]
        _PLANNED[key] = (treated["member_id"].astype(str).to_numpy(), treated["channel"].astype(str).to_numpy())
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
    order = ("drop_day", "spike_kpi", "scale_amounts", "currency_switch", "null_members", "colliding_ids",
             "negative_quantities", "lines_mismatch", "double_spend", "drop_optouts", "revoke_consents", "ignore_consent", "expose_holdout",
             "resend_orders", "future_rows", "shift_timestamps", "corrupt_type")
    for fault in sorted(faults, key=lambda f: order.index(f.kind) if f.kind in order else -1):
        if fault.kind in ROW_FAULTS:
            frame = ROW_FAULTS[fault.kind](settings, cycle, source, frame, fault)
            if not frame_len(frame):
                return frame
        if fault.kind == "spike_kpi" and source in SPIKE_COLUMNS:
            # headers and lines alike, so the lines still add up to the totals (raw lines_match)
            for name in SPIKE_COLUMNS[source]:
                if name in frame:
                    frame[name] = _scaled(frame[name], fault.value)
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


def _rows(settings: Settings, cycle: int, fault: Fault, n: int, share: float | None = None) -> np.ndarray:
    """The rows (of ``n``) a share fault touches: each with probability ``share`` (default the fault's), and
    at least one, so a switched-on fault always does something however small the batch."""
    rng = _rng(settings, cycle, fault)
    hit = rng.random(n) < float(fault.value if share is None else share)
    if n and not hit.any():
        hit[int(rng.integers(n))] = True
    return hit


def _text(col: Col) -> np.ndarray:
    return np.asarray(pa.array(col.values).cast(pa.string()).to_pylist(), dtype=object)


def _null_members(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """A share of member_id emptied: the export's join to the membership table lost them."""
    if fault.source != source or "member_id" not in frame:
        return frame
    col = frame["member_id"]
    hit = _rows(settings, cycle, fault, len(col))
    mask = hit if col.mask is None else (col.mask | hit)
    return frame | {"member_id": Col(col.kind, col.values, mask)}


def _future_rows(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """A share of rows dated one cycle later (every timestamp of the row): a mistyped date or clock."""
    if fault.source != source:
        return frame
    hit = _rows(settings, cycle, fault, frame_len(frame))
    later = int(settings.cycle_days) * 86_400
    out = dict(frame)
    for name, col in frame.items():
        if col.kind == "ts":
            out[name] = Col("ts", np.asarray(col.values, dtype=np.int64) + later * hit, col.mask)
    return out


def _colliding_ids(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """A share of rows carry the id of another row of the file: ids numbered per store or per export,
    unique where they were made and colliding where they meet. Staging would keep one of each pair."""
    key = load_contract().source(source).key[0] if fault.source == source else None
    if key not in frame or frame_len(frame) < 2:
        return frame
    col = frame[key]
    n = len(col)
    hit = _rows(settings, cycle, fault, n)
    rng = _rng(settings, cycle, fault)
    other = (np.arange(n) + rng.integers(1, n, n)) % n  # never the row itself
    values = pa.array(col.values).cast(pa.string())
    moved = pc.replace_with_mask(values, pa.array(hit), values.take(pa.array(other[hit])))
    return frame | {key: Col("str", moved, col.mask)}


def _negative_quantities(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """A share of sale lines with a negative quantity: returns netted into the sales file without a type."""
    if fault.source != source or "quantity" not in frame:
        return frame
    col = frame["quantity"]
    hit = _rows(settings, cycle, fault, len(col))
    type_col = next((frame[t] for t in ("order_type", "receipt_type") if t in frame), None)
    if type_col is not None:
        hit &= np.isin(_text(type_col), [None, "sale"])
    values = np.asarray(col.values, dtype=np.int64)
    return frame | {"quantity": Col("int", np.where(hit, -np.abs(values), values), col.mask)}


def _currency_switch(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """One channel's amounts in another currency, its lines' prices too, labelled with its code."""
    columns = CURRENCY_AMOUNTS.get(fault.source or "", {}).get(source)
    if not columns:
        return frame
    out = dict(frame)
    for name in columns:
        if name in out:
            out[name] = _scaled(out[name], fault.value)
    if source == fault.source:
        out["currency"] = Col("str", pa.array(np.full(frame_len(frame), SWITCHED_CURRENCY), type=pa.string()))
    return out


def _consent_rows(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """drop_optouts, revoke_consents and ignore_consent on the consents file."""
    if source != "consents" or "status" not in frame:
        return frame
    status = _text(frame["status"])
    if fault.kind == "drop_optouts":
        return {name: col.take(np.flatnonzero(status != "opt_out")) for name, col in frame.items()}
    if fault.kind == "revoke_consents":
        return frame | {"status": Col("str", pa.array(np.full(len(status), "opt_out"), type=pa.string()))}
    planned = _PLANNED.pop((str(settings.home), cycle), None)
    if planned is None or not len(planned[0]):
        return frame
    members, channels = planned
    chosen = np.flatnonzero(_rows(settings, cycle, fault, len(members)))
    start = int(calendar.timegm(settings.cycle_start(cycle).timetuple()))
    added: Frame = {
        "member_id": Col("str", pa.array(members[chosen], type=pa.string())),
        "channel": Col("str", pa.array(channels[chosen], type=pa.string())),
        "status": Col("str", pa.array(np.full(len(chosen), "opt_out"), type=pa.string())),
        "changed_at": Col("ts", np.full(len(chosen), start - 86_400, dtype=np.int64)),
        "source": Col("str", pa.array(np.full(len(chosen), "preference_center"), type=pa.string())),
    }
    return concat_frames([frame, {k: v for k, v in added.items() if k in frame}])


def _drop_day(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """The rows of one day of the cycle left out (by the source's first timestamp): an export job that
    failed that night and was never re-run."""
    stamps = next((c for c in frame.values() if c.kind == "ts"), None) if fault.source == source else None
    if stamps is None:
        return frame
    start = int(calendar.timegm(settings.cycle_start(cycle).timetuple())) + int(fault.value or 0) * 86_400
    values = np.asarray(stamps.values, dtype=np.int64)
    keep = ~((values >= start) & (values < start + 86_400))
    if stamps.mask is not None:
        keep |= stamps.mask
    return {name: col.take(np.flatnonzero(keep)) for name, col in frame.items()}


def _lines_mismatch(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """A share of the orders (receipts) with two or more lines lose their last line: the export's line
    query missed rows (a join on a product not yet in its catalogue), the header's total still counts it."""
    key = next((k for k in ("order_id", "receipt_id") if k in frame), None) if fault.source == source else None
    if key is None:
        return frame
    ids = _text(frame[key])
    _, first, inverse, counts = np.unique(ids.astype(str), return_index=True, return_inverse=True,
                                          return_counts=True)
    several = np.flatnonzero(counts >= 2)
    chosen = several[_rows(settings, cycle, fault, len(several))] if len(several) else several
    last = np.full(len(counts), -1)
    np.maximum.at(last, inverse, np.arange(len(ids)))  # the document's last line in the file
    keep = np.ones(len(ids), dtype=bool)
    keep[last[chosen]] = False
    return {name: col.take(np.flatnonzero(keep)) for name, col in frame.items()}


def _double_spend(settings: Settings, cycle: int, source: str, frame: Frame, fault: Fault) -> Frame:
    """One channel's spend doubled, impressions and clicks as they were: the export summed it twice."""
    if source != "ad_spend" or not {"channel", "spend"} <= set(frame):
        return frame
    channels = _text(frame["channel"]).astype(str)
    spend = np.asarray(frame["spend"].values, dtype=np.int64)
    channel = fault.scope
    if channel is None:
        names = np.unique(channels)
        channel = str(names[int(np.argmax([spend[channels == c].sum() for c in names]))])
    hit = channels == channel
    return frame | {"spend": Col("cents", np.where(hit, spend * DOUBLE_SPEND_FACTOR, spend), frame["spend"].mask)}


ROW_FAULTS = {
    "null_members": _null_members, "future_rows": _future_rows, "colliding_ids": _colliding_ids,
    "negative_quantities": _negative_quantities, "currency_switch": _currency_switch,
    "drop_optouts": _consent_rows, "revoke_consents": _consent_rows, "ignore_consent": _consent_rows,
    "drop_day": _drop_day, "lines_mismatch": _lines_mismatch, "double_spend": _double_spend,
}


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
    """The file faults (``FILE_FAULTS``) rewrite the written file in place; duplicate_batch writes the batch
    file again as ``<source>/<batch>/resent.<ext>``, rows in reverse order.

    A byte-identical copy would be skipped by ingestion (files are recognised by their sha256); a
    re-export with the same rows is what slips through and doubles every key of the batch.
    """
    written: list[Path] = []
    for fault in faults:
        if fault.kind in FILE_FAULTS and fault.source == source and path.exists():
            _rewrite(settings, cycle, path, fault)
            continue
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


def _rewrite(settings: Settings, cycle: int, path: Path, fault: Fault) -> None:
    """The file faults: the written batch file changed in place, as the export delivered it."""
    if fault.kind == "stale_file":
        # Yesterday's extract under today's name: byte for byte the previous cycle's file.
        previous = path.with_name(settings.cycle_key(cycle - 1) + "".join(path.suffixes))
        if previous.exists():
            path.write_bytes(previous.read_bytes())
        return
    data = path.read_bytes()
    if fault.kind == "reencode":
        if path.suffix != ".parquet":
            path.write_bytes(_reencoded(settings, cycle, data.decode("utf-8"), fault))
        return  # parquet: its strings are UTF-8 by the format's definition
    if fault.kind == "truncate_file":
        header_end = data.find(b"\n") + 1
        cut = max(int(len(data) * float(fault.value or 0)), header_end + 2)
        while cut > header_end + 1 and data[cut - 1:cut] in (b"\n", b'"'):
            cut -= 1  # mid-value: a cut at a line or field boundary could pass for a whole file
        path.write_bytes(data[:cut])
        return
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        if fault.kind == "rename_column" and fault.column in table.column_names:
            names = [fault.scope if n == fault.column else n for n in table.column_names]
            pq.write_table(table.rename_columns(names), path)
        elif fault.kind == "header_only":
            pq.write_table(table.slice(0, 0), path)
        return  # locale_decimals: parquet carries typed numbers, no locale to get wrong
    text = data.decode("utf-8")
    header, _, body = text.partition("\n")
    if fault.kind == "header_only":
        path.write_text(header + "\n")
    elif fault.kind == "rename_column":
        names = next(csv.reader([header]))
        names = [fault.scope if n.strip().lower() == fault.column else n for n in names]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(names)
        path.write_text(out.getvalue() + body)
    elif fault.kind == "locale_decimals":
        columns = load_contract().source(fault.source or "").columns
        rows = list(csv.reader(io.StringIO(text)))
        decimal = [i for i, n in enumerate(rows[0]) if n in columns and columns[n].type == "decimal"]
        for row in rows[1:]:
            for i in decimal:
                if i < len(row):
                    row[i] = row[i].replace(".", ",")
        out = io.StringIO()
        csv.writer(out, delimiter=";", lineterminator="\n").writerows(rows)
        path.write_text(out.getvalue())


def _reencoded(settings: Settings, cycle: int, text: str, fault: Fault) -> bytes:
    """The CSV text as the export re-sent it: behind a UTF-8 byte-order mark, or in latin-1 with a share of
    its free-text values accented (one vowel each: what latin-1 can spell and UTF-8 spells otherwise)."""
    if fault.scope == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    columns = [i for i, name in enumerate(rows[0]) if name in TEXT_COLUMNS] if rows else []
    hit = _rows(settings, cycle, fault, max(len(rows) - 1, 0), ACCENT_SHARE)
    for row, accent in zip(rows[1:], hit, strict=False):
        for i in columns if accent else ():
            if i < len(row):
                at = next((j for j, ch in enumerate(row[i]) if ch in ACCENTED), None)
                if at is not None:
                    row[i] = row[i][:at] + ACCENTED[row[i][at]] + row[i][at + 1:]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("latin-1")


def record(settings: Settings, cycle_id: str, faults: Sequence[Fault]) -> None:
    """The faults applied to a cycle, in the truth (the platform never reads it); none: no file."""
    path = settings.truth_dir / "faults" / f"{cycle_id}.json"
    if not faults:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in faults], indent=2) + "\n")
