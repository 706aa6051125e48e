"""Model inputs read from the warehouse marts: one feature list, typed frames, nothing written.

Every frame is keyed by ``customer_id`` and ``as_of_date`` and carries :data:`FEATURES` exactly as
the models consume them (floats, NaN where a value is undefined, e.g. recency before a first order).
Reads go through a read-only DuckDB connection so training can run while nobody writes, and the
schema is a parameter (``marts`` today, ``published`` once the lead publishes validated snapshots).

Frames:

* :func:`classifier_frame`: features as of each date joined with the labels of
  ``marts.fct_customer_labels``; only rows whose label window is fully observed.
* :func:`uplift_frame`: one row per campaign assignment (treatment or control) of a known action,
  with the features as of the campaign's cycle start. A customer never assigned to an action is no
  evidence about it, so each action only sees its own treatment and control rows.
* :func:`scoring_frame`: features as of the newest as-of date, plus what ``ml/decide/`` needs
  besides model outputs (consent, recent contacts and unsubscribes, segment, margin rate).
* :func:`transactions`: the order log up to a date, for the CLV models.

The uplift and scoring frames also carry :data:`ENGAGEMENT_COLUMNS` (sends and opens per channel), which
no model reads: ``ml/engagement.py`` turns them into each customer's channel preference.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from campaign_loop.actions import OFFERS
from campaign_loop.config import CHANNELS
from ml.engagement import opens_column, sends_column

if TYPE_CHECKING:
    import duckdb

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


@contextmanager
def connect(warehouse_path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection: training must never take the writer's lock or change the marts."""
    import duckdb

    connection = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def _query(warehouse_path: Path | str, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
    with connect(warehouse_path) as connection:
        return connection.execute(sql, list(params)).df()


def _feature_select(alias: str = "f", extra: tuple[str, ...] = ()) -> str:
    columns = [*(c for c in FEATURES if c != "is_member"), *extra]
    return ", ".join(f"{alias}.{c}" for c in columns) + f", {alias}.member_id is not null as is_member"


def typed_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast :data:`FEATURES` and :data:`ENGAGEMENT_COLUMNS` to float64 in place of DuckDB's decimals,
    booleans and nullable ints."""
    out = frame.copy()
    for column in (*FEATURES, *(c for c in ENGAGEMENT_COLUMNS if c in frame)):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    return out


def as_of_dates(warehouse_path: Path | str, schema: str = DEFAULT_SCHEMA) -> list[date]:
    frame = _query(warehouse_path, f"select distinct as_of_date from {schema}.fct_customer_features order by 1")
    return [pd.Timestamp(d).date() for d in frame["as_of_date"]]


def classifier_frame(
    warehouse_path: Path | str,
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
    warehouse_path: Path | str,
    labels: Sequence[Label],
    *,
    schema: str = DEFAULT_SCHEMA,
    max_as_of: date | None = None,
    min_as_of: date | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`classifier_frame` of each of ``labels`` from one read: the labels share their feature rows."""
    if unknown := [label for label in labels if label not in LABEL_COMPLETE]:
        raise ValueError(f"unknown label {unknown[0]!r}; expected one of {sorted(LABEL_COMPLETE)}")
    where = ["(" + " or ".join(f"l.{LABEL_COMPLETE[label]}" for label in labels) + ")"]
    params: list[object] = []
    if max_as_of is not None:
        where.append("f.as_of_date <= ?")
        params.append(max_as_of)
    if min_as_of is not None:
        where.append("f.as_of_date >= ?")
        params.append(min_as_of)
    label_columns = ", ".join(
        f"cast(l.{label} as integer) as label__{label}, l.{LABEL_COMPLETE[label]} as complete__{label}" for label in labels
    )
    sql = f"""
        select f.customer_id, f.as_of_date, {_feature_select()}, {label_columns}
        from {schema}.fct_customer_features as f
        inner join {schema}.fct_customer_labels as l
            on l.customer_id = f.customer_id and l.as_of_date = f.as_of_date
        where {' and '.join(where)}
        order by f.as_of_date, f.customer_id
    """
    frame = typed_features(_query(warehouse_path, sql, params))
    helpers = [c for label in labels for c in (f"label__{label}", f"complete__{label}")]
    frames: dict[str, pd.DataFrame] = {}
    for label in labels:
        complete = frame[f"complete__{label}"].fillna(False).to_numpy(bool)
        part = frame.loc[complete, [c for c in frame.columns if c not in helpers]].reset_index(drop=True)
        part["label"] = frame.loc[complete, f"label__{label}"].astype("int64").to_numpy()
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


def uplift_frame(
    warehouse_path: Path | str,
    *,
    schema: str = DEFAULT_SCHEMA,
    max_as_of: date | None = None,
) -> pd.DataFrame:
    """One row per assignment of a catalogue action: features as of the campaign's cycle start,
    ``action``, ``treatment`` (0/1), outcomes ``is_converted`` (0/1) and ``margin``.

    Only assignments whose campaign window has ended by the newest loaded data and whose member resolved
    to a customer with a feature row are kept; the inner join to the features makes that explicit.
    A campaign imported without a ``cycle_id`` belongs to the cycle its ``starts_at`` falls in: its
    features are the newest snapshot at or before it starts (snapshots are taken at cycle starts).
    """
    where, params = ["s.ends_at < l.data_end_at"], []
    if max_as_of is not None:
        where.append("s.as_of_date <= ?")
        params.append(max_as_of)
    sql = f"""
        with data_end as (select max(data_end_at) as data_end_at from {schema}.fct_customer_labels),
        snapshots as (
            select distinct as_of_date, cast(as_of_date as timestamp) as snapshot_at
            from {schema}.fct_customer_features
        ),
        sends as (
            select a.* exclude (as_of_date), coalesce(a.as_of_date, d.as_of_date) as as_of_date
            from {schema}.fct_action_sends as a
            asof left join snapshots as d on a.starts_at >= d.snapshot_at
        )
        select
            f.customer_id, f.as_of_date, {_feature_select(extra=ENGAGEMENT_COLUMNS)},
            s.campaign_id, s.member_id as send_member_id, s.channel, s.offer_type, s.offer_value,
            cast(s.is_treatment as integer) as treatment, s.assignment_probability,
            cast(s.is_converted as integer) as is_converted, cast(s.margin as double) as margin
        from sends as s
        cross join data_end as l
        inner join {schema}.fct_customer_features as f
            on f.customer_id = s.customer_id and f.as_of_date = s.as_of_date
        where {' and '.join(where)}
        order by s.as_of_date, s.campaign_id, f.customer_id
    """
    frame = _query(warehouse_path, sql, params)
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


def _warn_unplaced_campaigns(warehouse_path: Path | str, schema: str) -> None:
    """Say which campaigns without a cycle_id start before every feature snapshot: the learner cannot use them."""
    sql = f"""
        select campaign_id, min(starts_at) as starts_at, count(*) as sends
        from {schema}.fct_action_sends
        where cycle_id is null
          and not exists (select 1 from {schema}.fct_customer_features as f where f.as_of_date <= starts_at)
        group by campaign_id order by campaign_id
    """
    unplaced = _query(warehouse_path, sql)
    if len(unplaced):
        shown = ", ".join(f"{r.campaign_id} ({r.sends} sends from {r.starts_at:%Y-%m-%d})"
                          for r in unplaced.head(5).itertuples())
        logging.getLogger(__name__).warning(
            "%d campaign(s) without cycle_id start before the first feature snapshot and are left out of the "
            "uplift frame: %s", len(unplaced), shown)


def scoring_frame(warehouse_path: Path | str, *, schema: str = DEFAULT_SCHEMA, as_of: date | None = None) -> pd.DataFrame:
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
    sql = f"""
        with recent as (
            select
                customer_id,
                count(sent_at) as contacts_last_30d,
                bool_or(is_unsubscribed) as unsubscribed_recently
            from {schema}.fct_campaign_sends
            where customer_id is not null
                and coalesce(sent_at, starts_at) < cast(? as timestamp)
                and coalesce(sent_at, starts_at) >= cast(? as timestamp) - interval 30 day
            group by customer_id
        ),
        bounced as (
            -- A hard bounce closes the channel until a later send on it is delivered (a new address).
            select
                customer_id,
                {", ".join(f"coalesce(arg_max(is_bounced, sent_at) filter (where channel = '{c}'), false) as bounced_{c}"
                           for c in CHANNELS)}
            from {schema}.fct_campaign_sends
            where customer_id is not null and sent_at < cast(? as timestamp)
            group by customer_id
        )
        select
            f.customer_id, f.as_of_date, f.member_id, {_feature_select(extra=ENGAGEMENT_COLUMNS)}, f.rfm_segment as segment,
            coalesce(r.contacts_last_30d, 0) as contacts_last_30d,
            coalesce(r.unsubscribed_recently, false) as unsubscribed_recently,
            {", ".join(f"coalesce(b.bounced_{c}, false) as bounced_{c}" for c in CHANNELS)}
        from {schema}.fct_customer_features as f
        left join recent as r on r.customer_id = f.customer_id
        left join bounced as b on b.customer_id = f.customer_id
        where f.as_of_date = ?
        order by f.customer_id
    """
    frame = typed_features(_query(warehouse_path, sql, [as_of, as_of, as_of, as_of]))
    revenue, margin = frame["revenue_total"], frame["margin_total"]
    population_rate = float(margin.sum() / revenue.sum()) if revenue.sum() > 0 else 0.0
    frame["margin_rate"] = np.where(revenue > 0, margin / revenue.where(revenue > 0), population_rate)
    frame["contacts_last_30d"] = frame["contacts_last_30d"].astype("int64")
    frame["unsubscribed_recently"] = frame["unsubscribed_recently"].astype(bool)
    for column in (*CONSENT_COLUMNS, *BOUNCED_COLUMNS):
        frame[column] = frame[column].astype(bool)
    frame["segment"] = frame["segment"].astype(str)
    return frame


def transactions(warehouse_path: Path | str, before: date, *, schema: str = DEFAULT_SCHEMA) -> pd.DataFrame:
    """Revenue orders of resolved customers placed strictly before ``before``: customer_id, date, amount."""
    sql = f"""
        select customer_id, ordered_at as date, cast(total_amount as double) as amount
        from {schema}.fct_orders
        where is_revenue and customer_id is not null and ordered_at < cast(? as timestamp)
        order by ordered_at
    """
    return _query(warehouse_path, sql, [before])


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
