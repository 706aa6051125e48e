"""Each customer's send hour: the local hour, inside the legal window, just where their opens and clicks show
they read.

A message is seen when its recipient next reads, and one that arrives then sits at the top of the inbox.
So the hours (local time, ``fct_customer_engagement_hours``) at which a customer opened or clicked are
read as draws from their reading-hour distribution; with few of them, it is shrunk toward the whole
population's (a Dirichlet prior of :data:`PRIOR_STRENGTH` pseudo-engagements in the population's shares),
smoothed over neighbouring hours (a message that arrives a little before the reader looks is still near the
top, :data:`KERNEL_HOURS`), and the send hour is its mode among the hours the law allows (Settings
``send_window_start``..``send_window_end``).
A customer with no open or click keeps their channel's usual hour (``ml.decide.catalogue.SEND_TIME``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml import features

HOURS = 24
# Pseudo-engagements of the population's hour shares added to each customer's own: with one open, a customer
# moves a third of the way from the population's mode; with ten, most of the way to their own.
PRIOR_STRENGTH = 2.0
KERNEL_HOURS = 2.0  # a message sent two hours before the reading hour is still near the top of the inbox
ENGAGEMENT_COLUMNS = ("customer_id", "local_hour", "opens", "clicks")


def _kernel() -> np.ndarray:
    """(24, 24) circular Gaussian weights of engagement hour (rows) for send hour (columns)."""
    hours = np.arange(HOURS)
    d = np.abs(hours[:, None] - hours[None, :])
    d = np.minimum(d, HOURS - d)
    weights = np.exp(-0.5 * (d / KERNEL_HOURS) ** 2)
    return weights / weights.sum(axis=0, keepdims=True)


def hour_counts(engagement: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, (customers, 24) engagements per local hour) from rows of ``ENGAGEMENT_COLUMNS``."""
    if missing := [c for c in ENGAGEMENT_COLUMNS if c not in engagement.columns]:
        raise ValueError(f"engagement by hour lacks the columns {missing}")
    hour = engagement["local_hour"].to_numpy(np.int64)
    if ((hour < 0) | (hour >= HOURS)).any():
        bad = engagement.loc[(hour < 0) | (hour >= HOURS)].iloc[0]
        raise ValueError(f"engagement by hour: local_hour {bad['local_hour']} of customer {bad['customer_id']} "
                         "is not in 0..23")
    customers, row = np.unique(engagement["customer_id"].to_numpy(), return_inverse=True)
    counts = np.zeros((len(customers), HOURS))
    weight = engagement["opens"].fillna(0).to_numpy(float) + engagement["clicks"].fillna(0).to_numpy(float)
    np.add.at(counts, (row, hour), weight)
    return customers, counts


def choose_send_hours(engagement: pd.DataFrame, window: tuple[int, int] = (8, 21),
                      prior_strength: float = PRIOR_STRENGTH) -> pd.DataFrame:
    """One row per customer with engagement: ``send_hour`` (local, ``window[0] <= h < window[1]``), the share
    of their smoothed reading-hour posterior it catches (``send_hour_share``), and their ``engagements``."""
    start, end = window
    if not 0 <= start < end <= HOURS:
        raise ValueError(f"send window {start}..{end} is not a non-empty range of hours in 0..24")
    customers, counts = hour_counts(engagement)
    total = counts.sum(axis=1)
    keep = total > 0
    customers, counts, total = customers[keep], counts[keep], total[keep]
    if not len(customers):
        return pd.DataFrame({"customer_id": customers, "send_hour": np.array([], dtype=np.int64),
                             "send_hour_share": np.array([], dtype=float), "engagements": np.array([], dtype=float)})
    population = counts.sum(axis=0) / counts.sum()
    posterior = (counts + prior_strength * population) / (total + prior_strength)[:, None]
    smoothed = posterior @ _kernel()
    allowed = smoothed[:, start:end]
    best = allowed.argmax(axis=1)
    return pd.DataFrame({
        "customer_id": customers,
        "send_hour": (start + best).astype(np.int64),
        "send_hour_share": allowed[np.arange(len(best)), best],
        "engagements": total,
    })



def warehouse_send_hours(warehouse_path: Path | str, window: tuple[int, int], schema: str = "published") -> pd.DataFrame:
    """:func:`choose_send_hours` over ``<schema>.fct_customer_engagement_hours``; empty (no customer has an
    hour of their own) when the schema has no such table, as in a warehouse built before it existed."""
    warehouse = features.warehouse_of(warehouse_path)
    if "fct_customer_engagement_hours" not in warehouse.tables(schema):
        return choose_send_hours(pd.DataFrame(columns=list(ENGAGEMENT_COLUMNS)), window)
    # Hours nobody engaged in are most of the mart: each batch drops them before the next is read.
    batches = [batch[batch["opens"] + batch["clicks"] > 0] for batch in warehouse.read_mart(
        "fct_customer_engagement_hours", ["customer_id", "local_hour", "opens", "clicks"], schema=schema,
        batch_rows=features.BATCH_ROWS)]
    engaged = pd.concat(batches, ignore_index=True) if batches else pd.DataFrame(columns=list(ENGAGEMENT_COLUMNS))
    return choose_send_hours(engaged, window)


def with_send_hours(customers: pd.DataFrame, hours: pd.DataFrame) -> pd.DataFrame:
    """``customers`` with ``send_hour`` (nullable: the channel's hour then) from :func:`choose_send_hours`."""
    chosen = hours.drop_duplicates("customer_id").set_index("customer_id")["send_hour"]
    return customers.assign(send_hour=customers["customer_id"].map(chosen).astype("Int64"))
