"""Time in the simulated world: epoch seconds (UTC) everywhere, shaped by weekday, month and holidays.

Cycles are UTC days, so the platform's ``cycle_index(date)`` of a UTC timestamp finds the batch that
carried it. Hours of the day follow local (Asia/Seoul) habits: evenings online, daytime in stores.
"""

from __future__ import annotations

from datetime import date

import numpy as np

DAY_S = 86_400
SEOUL_OFFSET_S = 9 * 3_600
# Mon..Sun: stores peak on Saturday, online on Sunday evening and Monday; a mild retail pattern.
WEEKDAY_WEIGHT = np.array([0.95, 0.90, 0.93, 0.97, 1.05, 1.15, 1.05])
MONTH_WEIGHT = np.array([0.92, 0.88, 0.95, 0.98, 1.02, 0.97, 0.95, 0.96, 1.00, 1.00, 1.08, 1.20])
# (first MMDD, last MMDD, boost): Lunar New Year-like, Chuseok-like, Black Friday week, Christmas run-up.
PEAKS: tuple[tuple[int, int, float], ...] = ((125, 205, 0.20), (910, 920, 0.35), (1124, 1201, 0.45), (1215, 1224, 0.50))
# Local hour-of-day weights (0..23).
HOUR_ONLINE = np.array([3, 2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 6, 6, 6, 6, 6, 7, 8, 10, 11, 10, 6], dtype=float)
HOUR_STORE = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 5, 8, 10, 9, 9, 9, 10, 10, 11, 10, 8, 5, 2, 0], dtype=float)


def epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def raw_intensity(days: np.ndarray) -> np.ndarray:
    """Relative purchase intensity of each day (days since the epoch), before normalisation."""
    d64 = days.astype("datetime64[D]")
    month_start = d64.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12
    day_of_month = (d64 - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    mmdd = (month + 1) * 100 + day_of_month
    weight = MONTH_WEIGHT[month] * WEEKDAY_WEIGHT[(days + 3) % 7]  # 1970-01-01 was a Thursday
    for first, last, boost in PEAKS:
        weight = weight * (1.0 + boost * ((mmdd >= first) & (mmdd <= last)))
    return weight


# Normalise so an average day has intensity 1 and a rate per week means purchases per average week.
_NORM = float(raw_intensity(np.arange(epoch_day(date(2024, 1, 1)), epoch_day(date(2028, 1, 1)))).mean())
MAX_INTENSITY = float(MONTH_WEIGHT.max() * WEEKDAY_WEIGHT.max() * (1 + max(p[2] for p in PEAKS)) / _NORM)


def intensity(days: np.ndarray) -> np.ndarray:
    return raw_intensity(days) / _NORM


def period_days(start: date, n_days: int) -> np.ndarray:
    first = epoch_day(start)
    return np.arange(first, first + n_days, dtype=np.int64)


def exposure_weeks(days: np.ndarray) -> float:
    """Seasonally weighted length of a period, in average weeks: the multiplier of a weekly rate."""
    return float(intensity(days).sum() / 7.0)


def local_time_of_day(rng: np.random.Generator, n: int, hours: np.ndarray) -> np.ndarray:
    """Seconds after UTC midnight of a local clock time drawn from an hour profile (kept within the UTC day)."""
    hour = rng.choice(24, size=n, p=hours / hours.sum())
    return ((hour - 9) % 24) * 3_600 + rng.integers(0, 3_600, size=n)


def draw_times(rng: np.random.Generator, days: np.ndarray, n: int, hours: np.ndarray) -> np.ndarray:
    """n timestamps in the given days, days weighted by seasonal intensity."""
    weight = intensity(days)
    day = days[rng.choice(len(days), size=n, p=weight / weight.sum())]
    return day * DAY_S + local_time_of_day(rng, n, hours)
