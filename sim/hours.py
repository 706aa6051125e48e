"""Send-hour preference: an opt-in mechanism (Settings ``send_hour_preference``, off by default) in which each
simulated person reads messages at a preferred local hour.

A message sent shortly before that hour is seen at the top of the inbox; one sent hours away is buried under
later ones. So the chance to open and click a message, and the uplift of its action, are scaled by
:func:`hour_factor` of the distance between the send hour and the person's preferred hour. Most opens
happen when the person next reads (their preferred hour), the rest soon after delivery, so the opens'
local hours show the preference to a CRM that looks, as they would to a real retailer's.

The preferred hour is a function of the world seed and the person (a hash, no random stream), so it is
stable across cycles and turning the mechanism on moves no other draw of the world; with it off nothing
here runs, so worlds a-d stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim import ids
from sim.world import People

# When people read their messages: the commute, lunch and the evening, in local hours (mean, share), with a
# spread of HOUR_SPREAD around each. The evening peak sits past 21:00 for a sixth of its people, whom the
# legal window (08:00-21:00 in Korea) lets the retailer reach at 20:00 at the latest.
READING_PEAKS: tuple[tuple[float, float], ...] = ((8.0, 0.30), (12.5, 0.25), (19.5, 0.45))
HOUR_SPREAD = 1.0
# hour_factor: 1 at the preferred hour, HOUR_FLOOR far from it, half-way down at about 1.2 * HOUR_WIDTH.
HOUR_WIDTH = 2.0
HOUR_FLOOR = 0.35
READ_AT_PREFERRED = 0.7  # share of opens that happen at the next preferred hour (the rest soon after delivery)
_PEAK_SALT, _HOUR_SALT = 2701, 2702


def _uniform(seed: int, salt: int, person_id: np.ndarray) -> np.ndarray:
    return (ids.hash64(seed, salt, person_id) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def preferred_hour(people: People, seed: int) -> np.ndarray:
    """Each person's preferred local reading hour in [0, 24)."""
    pid = people["person_id"]
    shares = np.cumsum([share for _, share in READING_PEAKS])
    peak = np.searchsorted(shares / shares[-1], _uniform(seed, _PEAK_SALT, pid), side="right")
    centre = np.array([hour for hour, _ in READING_PEAKS])[np.minimum(peak, len(READING_PEAKS) - 1)]
    noise = stats.norm.ppf(np.clip(_uniform(seed, _HOUR_SALT, pid), 1e-9, 1 - 1e-9)) * HOUR_SPREAD
    return np.mod(centre + noise, 24.0)


def hour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between local hours on the 24-hour circle."""
    d = np.abs(np.mod(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), 24.0))
    return np.minimum(d, 24.0 - d)


def hour_factor(preferred: np.ndarray, send_hour: np.ndarray) -> np.ndarray:
    """How much of a message's open chance and effect survives its send hour: 1 at the preferred hour."""
    d = hour_distance(preferred, send_hour)
    return HOUR_FLOOR + (1.0 - HOUR_FLOOR) * np.exp(-0.5 * (d / HOUR_WIDTH) ** 2)


def local_hour(epoch_s: np.ndarray, timezone: str) -> np.ndarray:
    """Local hour (fractional) of epoch seconds in ``timezone``."""
    local = pd.to_datetime(np.asarray(epoch_s, dtype=np.int64), unit="s", utc=True).tz_convert(timezone)
    return np.asarray(local.hour + local.minute / 60.0 + local.second / 3600.0, dtype=float)


@dataclass(frozen=True)
class HourResponse:
    """Per assigned person: the send hour's factor, and when the person next reads after the send."""

    factor: np.ndarray
    next_read: np.ndarray  # epoch seconds of the first preferred hour after the send

    @classmethod
    def of(cls, people: People, person: np.ndarray, sent_at: np.ndarray, seed: int, timezone: str) -> HourResponse:
        preferred = preferred_hour({"person_id": people["person_id"][person]}, seed)
        sent_hour = local_hour(sent_at, timezone)
        wait = np.mod(preferred - sent_hour, 24.0)
        return cls(hour_factor(preferred, sent_hour), sent_at + (wait * 3_600).astype(np.int64))
