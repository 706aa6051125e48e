"""Model inputs read from the warehouse marts: one feature list, typed frames, nothing written.

Every frame is keyed by ``customer_id`` and ``as_of_date`` and carries :data:`FEATURES` exactly as
the models consume them (floats, NaN where a value is undefined, e.g. recency before a first order).
Each frame is one mart of ``dbt_project/models/marts/ml`` read through :mod:`campaign_loop.warehouse`
(the joins are dbt's, so they build on every engine), with the date bounds pushed to the engine; here
only the pandas types and the action catalogue are applied. ``warehouse`` is a
:class:`campaign_loop.warehouse.Warehouse` or the DuckDB file's path (read-only, so training can run
while nobody writes), and the schema is a parameter (``marts``, or ``published`` once the gate passed).

Frames:

* :func:`classifier_frame`: ``fct_classifier_rows``, features as of each date beside the labels; only
  rows whose label window is fully observed.
* :func:`uplift_frame`: ``fct_uplift_rows``, one row per campaign assignment (treatment or control) of a
  known action, with the features as of the campaign's cycle start. A customer never assigned to an action
  is no evidence about it, so each action only sees its own treatment and control rows.
* :func:`scoring_frame`: ``fct_scoring_rows`` of the newest as-of date, the features plus what
  ``ml/decide/`` needs besides model outputs (consent, recent contacts and unsubscribes, segment, margin rate).
* :func:`transactions`: ``fct_orders``, the order log up to a date, for the CLV models.

The uplift and scoring frames also carry :data:`ENGAGEMENT_COLUMNS` (sends and opens per channel), which
no model reads: ``ml/engagement.py`` turns them into each customer's channel preference.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from campaign_loop.actions import OFFERS
from campaign_loop.config import CHANNELS
from campaign_loop.warehouse import Condition, DuckDBWarehouse, Warehouse, read_whole
from ml.engagement import opens_column, sends_column

DEFAULT_SCHEMA = "marts"
KEYS: tuple[str, ...] = ("customer_id", "as_of_date")

# The customer features every model sees: point-in-time columns of fct_customer_features only.
# Static profile columns of dim_customers (tier, city) are left out: they hold today's value, which
# would leak into the history rows.
FEATURES: tuple[str, ...] = (
    "orders_total", "revenue_total", "margin_total", "recency_days", "frequency", "recency", "t",
    "monetary_value", "avg_order_value", "online_order_share", "orders_30d", "orders_90d",
    "orders_365d", "revenue_90d", "revenue_365d", "tenure_days", "sessions_30d", "product_views_30d",
    "add_to_carts_30d", "sends_90d", "opens_90d", "clicks_90d", "consent_email", "consent_push",
    "consent_sms", "consent_kakao", "r_score", "f_score", "m_score", "is_member",
)
# Sends and opens per channel over the past year: read by ml/engagement.py's channel preference, which
# uses them with a structure (opens are Binomial around a rate) no tree learner finds in a few cycles' data.
ENGAGEMENT_COLUMNS: tuple[str, ...] = tuple(column for c in CHANNELS for column in (sends_column(c), opens_column(c)))
# What tells the actions apart inside the pooled uplift learners (see ml/uplift.py).
ACTION_FEATURES: tuple[str, ...] = ("offer_discount", *(f"channel_{c}" for c in CHANNELS))
CONSENT_COLUMNS: tuple[str, ...] = tuple(f"consent_{c}" for c in CHANNELS)
BOUNCED_COLUMNS: tuple[str, ...] = tuple(f"bounced_{c}" for c in CHANNELS)

Label = Literal["purchased_next_cycle", "churned"]
LABEL_COMPLETE: dict[str, str] = {
    "purchased_next_cycle": "label_complete_next_cycle",
    "churned": "label_complete_churn",
}
UPLIFT_OUTCOMES: dict[str, str] = {"conversion": "is_converted", "margin": "margin"}


WarehouseLike = Warehouse | Path | str
# Rows per batch where a frame is filtered as it is read: a few MB per batch whatever the mart's size.
BATCH_ROWS = 200_000


def warehouse_of(warehouse: WarehouseLike) -> Warehouse:
    """The interface for ``warehouse``: a path is the DuckDB file, read-only."""
    if isinstance(warehouse, (str, Path)):
        return DuckDBWarehouse(warehouse)
    return warehouse


def read(warehouse: WarehouseLike, mart: str, columns: Sequence[str] | None, schema: str,
         where: Sequence[Condition] = ()) -> pd.DataFrame:
    """``schema.mart``'s ``columns`` of the rows ``where`` holds for, in one frame (a mart read as it is)."""
    return read_whole(warehouse_of(warehouse), mart, columns, schema=schema, where=where)


def _as_of_bounds(max_as_of: date | None = None, min_as_of: date | None = None) -> list[Condition]:
    return [*((("as_of_date", "<=", max_as_of),) if max_as_of is not None else ()),
            *((("as_of_date", ">=", min_as_of),) if min_as_of is not None else ())]


def typed_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast :data:`FEATURES` and :data:`ENGAGEMENT_COLUMNS` to float64 in place of DuckDB's decimals,
    booleans and nullable ints."""
    out = frame.copy()
    for column in (*FEATURES, *(c for c in ENGAGEMENT_COLUMNS if c in frame)):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    return out


def as_of_dates(warehouse: WarehouseLike, schema: str = DEFAULT_SCHEMA) -> list[date]:
    """The features' as-of dates, made distinct by the engine: a few dates, whatever the mart's size."""
    frame = read_whole(warehouse_of(warehouse), "fct_customer_features", ["as_of_date"], schema=schema, distinct=True)
    return sorted(pd.Timestamp(d).date() for d in frame["as_of_date"])


def classifier_frame(
    warehouse_path: WarehouseLike,
    label: Label,
    *,
    schema: str = DEFAULT_SCHEMA,
    max_as_of: date | None = None,
    min_as_of: date | None = None,
) -> pd.DataFrame:
    """Features as of each date with ``label`` (0/1), complete label windows only.

    ``max_as_of`` bounds the dates (the cycle being trained); rows after it are not read, so a rerun of
    an old cycle sees what that cycle saw, as far as the marts still hold it.
    """
    return classifier_frames(warehouse_path, (label,), schema=schema, max_as_of=max_as_of, min_as_of=min_as_of)[label]


def classifier_frames(
    warehouse_path: WarehouseLike,
    labels: Sequence[Label],
    *,
    schema: str = DEFAULT_SCHEMA,
    max_as_of: date | None = None,
    min_as_of: date | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`classifier_frame` of each of ``labels`` from one read of ``fct_classifier_rows``: the labels
    share their feature rows. Read in batches, each cut to its complete rows before the next arrives."""
    if unknown := [label for label in labels if label not in LABEL_COMPLETE]:
        raise ValueError(f"unknown label {unknown[0]!r}; expected one of {sorted(LABEL_COMPLETE)}")
    completes = [LABEL_COMPLETE[label] for label in labels]
    columns = [*KEYS, *FEATURES, *dict.fromkeys([*labels, *completes])]
    # One label's flag is a filter the engine applies; several are an "or", applied per batch here.
    where = [*_as_of_bounds(max_as_of, min_as_of), *(((completes[0], "=", True),) if len(labels) == 1 else ())]
    batches = [batch[batch[completes].fillna(False).to_numpy(bool).any(axis=1)]
               for batch in warehouse_of(warehouse_path).read_mart(
                   "fct_classifier_rows", columns, schema=schema, batch_rows=BATCH_ROWS, where=where)]
    frame = pd.concat(batches, ignore_index=True) if batches else pd.DataFrame(columns=columns)
    frame = typed_features(frame.sort_values(["as_of_date", "customer_id"], ignore_index=True))
    frames: dict[str, pd.DataFrame] = {}
    for label in labels:
        complete = frame[LABEL_COMPLETE[label]].fillna(False).to_numpy(bool)
        part = frame.loc[complete, [*KEYS, *FEATURES]].reset_index(drop=True)
        part["label"] = frame.loc[complete, label].astype("int64").to_numpy()
        frames[label] = part
    return frames


def action_name(offer_type: str, offer_value: float, channel: str) -> str | None:
    """The ``<offer>__<channel>`` action of a campaign, or None for an offer outside the catalogue."""
    for name, offer in OFFERS.items():
        if offer.offer_type == offer_type and abs(offer.offer_value - float(offer_value or 0.0)) < 1e-9:
            return f"{name}__{channel}" if channel in CHANNELS else None
    return None


def action_features(actions: pd.Series | Sequence[str]) -> pd.DataFrame:
    """Numeric description of each action: its discount share and a one-hot channel."""
    # Many rows share a dozen actions: describe each distinct action once, then look rows up by code.
    codes, distinct = pd.factorize(pd.Series(list(actions), dtype="object"), use_na_sentinel=False)
    names = pd.Series(distinct, dtype="object")
    offer = names.str.split("__").str[0]
    channel = names.str.split("__").str[1]
    discount = offer.map(
        {n: (o.offer_value / 100.0 if o.offer_type == "percent_off" else 0.0) for n, o in OFFERS.items()}
    )
    out = pd.DataFrame({"offer_discount": discount.astype("float64").to_numpy()[codes]})
    for c in CHANNELS:
        out[f"channel_{c}"] = (channel == c).astype("float64").to_numpy()[codes]
    return out


UPLIFT_COLUMNS: tuple[str, ...] = (
    *KEYS, *(c for c in FEATURES if c != "is_member"), *ENGAGEMENT_COLUMNS, "is_member", "campaign_id",
    "send_member_id", "channel", "offer_type", "offer_value", "treatment", "assignment_probability",
    "is_converted", "margin",
)


def uplift_frame(
    warehouse_path: WarehouseLike,
    *,
    schema: str = DEFAULT_SCHEMA,
    max_as_of: date | None = None,
) -> pd.DataFrame:
    """One row per assignment of a catalogue action: features as of the campaign's cycle start,
    ``action``, ``treatment`` (0/1), outcomes ``is_converted`` (0/1) and ``margin``.

    ``fct_uplift_rows`` keeps the assignments whose campaign window has ended by the newest loaded data
    and whose member resolved to a customer with a feature row; a campaign imported without a ``cycle_id``
    has the newest snapshot at or before its start.
    """
    frame = read(warehouse_path, "fct_uplift_rows", UPLIFT_COLUMNS, schema, _as_of_bounds(max_as_of))
    frame = frame.sort_values(["as_of_date", "campaign_id", "customer_id", "send_member_id"], ignore_index=True)
    _warn_unplaced_campaigns(warehouse_path, schema)
    # A handful of distinct campaigns cover every assignment: name each distinct one once.
    campaigns = list(zip(frame["offer_type"], frame["offer_value"], frame["channel"], strict=True))
    names = {campaign: action_name(*campaign) for campaign in set(campaigns)}
    frame["action"] = [names[campaign] for campaign in campaigns]
    frame = frame[frame["action"].notna()].reset_index(drop=True)
    frame = typed_features(frame)
    frame = pd.concat([frame, action_features(frame["action"])], axis=1)
    for column in ("treatment", "is_converted"):
        frame[column] = frame[column].astype("int64")
    frame["margin"] = frame["margin"].astype("float64")
    return frame


def _warn_unplaced_campaigns(warehouse: WarehouseLike, schema: str) -> None:
    """Say which campaigns without a cycle_id start before every feature snapshot: the learner cannot use them."""
    dates = as_of_dates(warehouse, schema)
    early = [("starts_at", "<", dates[0])] if dates else []
    sends = read(warehouse, "fct_action_sends", ["campaign_id", "cycle_id", "starts_at"], schema, early)
    sends = sends[sends["cycle_id"].isna()]
    unplaced = (sends.groupby("campaign_id").agg(starts_at=("starts_at", "min"), sends=("starts_at", "size"))
                .reset_index().sort_values("campaign_id"))
    if len(unplaced):
        shown = ", ".join(f"{r.campaign_id} ({r.sends} sends from {r.starts_at:%Y-%m-%d})"
                          for r in unplaced.head(5).itertuples())
        logging.getLogger(__name__).warning(
            "%d campaign(s) without cycle_id start before the first feature snapshot and are left out of the "
            "uplift frame: %s", len(unplaced), shown)


SCORING_COLUMNS: tuple[str, ...] = (
    *KEYS, "member_id", *(c for c in FEATURES if c != "is_member"), *ENGAGEMENT_COLUMNS, "is_member", "segment",
    "contacts_last_30d", "unsubscribed_recently", *BOUNCED_COLUMNS,
)


def scoring_frame(warehouse_path: WarehouseLike, *, schema: str = DEFAULT_SCHEMA, as_of: date | None = None) -> pd.DataFrame:
    """Features as of the newest as-of date (or ``as_of``) with the columns ml/decide/ reads besides
    the model outputs: consent flags, ``contacts_last_30d`` and ``unsubscribed_recently`` (sends of the
    30 days before the date), ``bounced_<channel>`` (the customer's newest send on the channel before the
    date bounced), ``segment`` (the RFM segment) and ``margin_rate`` (the customer's historical margin over
    revenue, the population's where the customer has no revenue yet).
    """
    if as_of is None:
        dates = as_of_dates(warehouse_path, schema)
        if not dates:
            raise ValueError(f"{schema}.fct_customer_features is empty")
        as_of = dates[-1]
    frame = read(warehouse_path, "fct_scoring_rows", SCORING_COLUMNS, schema, [("as_of_date", "=", as_of)])
    frame = typed_features(frame.sort_values("customer_id", ignore_index=True))
    revenue, margin = frame["revenue_total"], frame["margin_total"]
    population_rate = float(margin.sum() / revenue.sum()) if revenue.sum() > 0 else 0.0
    frame["margin_rate"] = np.where(revenue > 0, margin / revenue.where(revenue > 0), population_rate)
    frame["contacts_last_30d"] = frame["contacts_last_30d"].astype("int64")
    frame["unsubscribed_recently"] = frame["unsubscribed_recently"].astype(bool)
    for column in (*CONSENT_COLUMNS, *BOUNCED_COLUMNS):
        frame[column] = frame[column].astype(bool)
    frame["segment"] = frame["segment"].astype(str)
    return frame


def transactions(warehouse_path: WarehouseLike, before: date, *, schema: str = DEFAULT_SCHEMA) -> pd.DataFrame:
    """Revenue orders of resolved customers placed strictly before ``before``: customer_id, date, amount."""
    where = [("is_revenue", "=", True), ("ordered_at", "<", before)]
    orders = read(warehouse_path, "fct_orders", ["customer_id", "ordered_at", "total_amount"], schema, where)
    orders = orders[orders["customer_id"].notna()].sort_values("ordered_at", kind="stable", ignore_index=True)
    return pd.DataFrame({"customer_id": orders["customer_id"], "date": orders["ordered_at"],
                         "amount": orders["total_amount"].astype("float64")})


def evaluation_mask(customer_ids: pd.Series, share: float = 0.2, salt: str = "campaign-loop-holdout") -> np.ndarray:
    """True for the customers of the models' evaluation set: a fixed hash of the ID, the same every cycle.

    Fixed so that no champion trained in an earlier cycle has ever seen an evaluation customer, which keeps
    the champion-vs-challenger comparison on the same rows fair. (Not a campaign's randomised holdout,
    ``holdout_share``: these customers are still contacted; the models only never train on them.)
    """
    # Frames repeat each customer once per as-of date: hash every distinct ID once.
    codes, ids = pd.factorize(customer_ids.astype(str))
    bucket = np.array([zlib.crc32(f"{salt}:{c}".encode()) % 10_000 for c in ids], dtype=np.int64)
    return bucket[codes] < int(round(share * 10_000))
