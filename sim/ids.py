"""Vectorised identifiers and text: hashes, hex IDs, zero-padded numbers, money and timestamps.

Everything returns pyarrow string arrays because formatting millions of values through Python
objects or numpy unicode arrays is what makes a naive simulator slow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hash64(*parts: np.ndarray | int) -> np.ndarray:
    """A stable 64-bit hash of integer tuples (broadcast), so IDs never depend on draw order."""
    h = np.zeros(np.broadcast_shapes(*(np.shape(p) for p in parts)), dtype=np.uint64)
    for part in parts:
        h = _splitmix(h ^ np.asarray(part).astype(np.int64).astype(np.uint64))
    return h


def hex_ids(values: np.ndarray, prefix: str = "", width: int = 16) -> pa.Array:
    """Lower-case hex of uint64 values, truncated to ``width`` characters, with a prefix."""
    raw = np.frombuffer(np.ascontiguousarray(values, dtype=">u8").tobytes().hex().encode(), dtype="S16")
    if width < 16:
        raw = np.ascontiguousarray(raw.view("S1").reshape(-1, 16)[:, :width]).view(f"S{width}").ravel()
    text = pa.array(raw, type=pa.binary(width)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, text, "") if prefix else text


def uuid_ids(values_a: np.ndarray, values_b: np.ndarray) -> pa.Array:
    """UUID-shaped strings (8-4-4-4-12) from two uint64 arrays."""
    both = np.stack([values_a.astype(">u8"), values_b.astype(">u8")], axis=1)
    raw = np.frombuffer(both.tobytes().hex().encode(), dtype=np.uint8).reshape(-1, 32)
    out = np.full((raw.shape[0], 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18], out[:, 19:23], out[:, 24:36] = (
        raw[:, 0:8], raw[:, 8:12], raw[:, 12:16], raw[:, 16:20], raw[:, 20:32]
    )
    return pa.array(np.ascontiguousarray(out).view("S36").ravel(), type=pa.binary(36)).cast(pa.string())


def padded(values: np.ndarray, width: int, prefix: str = "") -> pa.Array:
    text = pc.utf8_lpad(pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "") if prefix else text


def join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def vocab(words: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    return pa.array(list(words), type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def cents(values: np.ndarray) -> pa.Array:
    """Cents as a decimal string with two places, e.g. 1230 -> '12.30' (amounts are never negative)."""
    v = np.asarray(values, dtype=np.int64)
    units = pa.array(v // 100).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(v % 100).cast(pa.string()), 2, "0")
    return pc.binary_join_element_wise(units, frac, ".")


TIMESTAMP_FORMATS: tuple[str, ...] = ("iso_z", "iso_offset", "naive_local", "epoch_s", "epoch_ms")


def timestamps(seconds: np.ndarray, fmt: str, zone: str = "Asia/Seoul") -> pa.Array:
    """Epoch seconds (UTC) rendered in one of the contract's timestamp formats; ``naive_local`` is wall-clock
    time in ``zone``, the retailer's Settings ``timezone`` that ingest reads store sources' naive times in."""
    s = np.asarray(seconds, dtype=np.int64)
    if fmt == "epoch_s":
        return pa.array(s).cast(pa.string())
    if fmt == "epoch_ms":
        # Millisecond part derived from the value itself so re-runs are byte-identical.
        return pa.array(s * 1000 + (s * 7919) % 1000).cast(pa.string())
    if fmt == "naive_local":
        aware = pa.array(s, type=pa.timestamp("s", tz=zone))
        return pc.local_timestamp(aware).cast(pa.string())  # 'YYYY-MM-DD HH:MM:SS'
    shift = 9 * 3_600 if fmt == "iso_offset" else 0
    text = pa.array((s + shift).astype("datetime64[s]")).cast(pa.string())  # 'YYYY-MM-DD HH:MM:SS'
    iso = pc.utf8_replace_slice(text, 10, 11, "T")
    suffix = "+09:00" if fmt == "iso_offset" else "Z"
    return pc.binary_join_element_wise(iso, suffix, "")


def dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int64).astype("datetime64[D]")).cast(pa.string())
