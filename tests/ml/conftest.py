"""Fixtures of the model tests: an MLflow store under tmp_path and a small synthetic warehouse.

The synthetic warehouse has the marts ``ml/`` reads (features, labels, action sends, campaign sends,
orders) with a known structure: purchases depend on engagement, and sending ``pct20`` to a customer
with e-mail consent raises conversion by :data:`TRUE_UPLIFT` while every other (customer, action)
has no effect. Building it takes a second, where a simulated world plus dbt takes half a minute;
the dbt models themselves are tested on a real simulated world in ``test_features.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_loop.config import CHANNELS
from tests.conftest import MLFLOW_URI_VARIABLES, restore_environ

START = date(2026, 1, 5)
TRUE_UPLIFT = 0.25
UPLIFT_ACTION = "pct20__email"


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sqlite:///<tmp>/mlflow.db`` as this process's tracking and registry URI, for one test module
    (creating the tables takes ~10 s, so the module shares them)."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    environ = {k: os.environ.get(k) for k in MLFLOW_URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    if previous is not None:
        mlflow.set_tracking_uri(previous)
    else:
        mlflow.set_tracking_uri("")
    mlflow.set_registry_uri("")
    restore_environ(environ)


def synthetic_marts(path: Path, *, customers: int = 2000, dates: int = 8, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Write the synthetic marts to a DuckDB file at ``path`` and return the frames."""
    import duckdb

    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:06d}" for i in range(customers)])
    members = np.array([f"M{i:06d}" if i % 10 else None for i in range(customers)], dtype=object)
    rate = rng.gamma(1.0, 0.08, customers)  # weekly purchase rate
    consent = {c: rng.random(customers) < share for c, share in zip(CHANNELS, (0.7, 0.4, 0.5, 0.6), strict=True)}
    as_of = [START + timedelta(weeks=k) for k in range(dates)]
    history_start = START - timedelta(weeks=52)
    # Opens come from a stream of their own, so the rest of the marts stay as they were before them.
    engagement_rng = np.random.default_rng([seed, 1])
    open_rate = engagement_rng.beta(2.0, 8.0, customers)

    # Orders: a Poisson process per customer over the year of history and the cycles.
    order_rows = []
    weeks = 52 + dates
    for i in range(customers):
        n = rng.poisson(rate[i] * weeks)
        days = np.sort(rng.integers(0, weeks * 7, n))
        for d in days:
            amount = float(rng.gamma(4, 20))
            order_rows.append((ids[i], pd.Timestamp(history_start + timedelta(days=int(d))) + pd.Timedelta(hours=12), amount))
    orders = pd.DataFrame(order_rows, columns=["customer_id", "ordered_at", "total_amount"])
    orders["is_revenue"] = True
    orders["margin_amount"] = orders["total_amount"] * 0.4
    orders["order_date"] = orders["ordered_at"].dt.date
    data_end = pd.Timestamp(as_of[-1])  # the newest as-of date: nothing after it is loaded

    orders = orders[orders["ordered_at"] < data_end].reset_index(drop=True)
    feature_rows, label_rows = [], []
    for d in as_of:
        ts = pd.Timestamp(d)
        before = orders[orders["ordered_at"] < ts]
        g = before.groupby("customer_id")
        stats = pd.DataFrame({
            "orders_total": g.size(), "revenue_total": g["total_amount"].sum(),
            "first": g["ordered_at"].min(), "last": g["ordered_at"].max(),
            "orders_30d": before[before["ordered_at"] >= ts - pd.Timedelta(days=30)].groupby("customer_id").size(),
            "orders_90d": before[before["ordered_at"] >= ts - pd.Timedelta(days=90)].groupby("customer_id").size(),
        }).reindex(ids)
        f = pd.DataFrame({"customer_id": ids, "as_of_date": d, "member_id": members})
        f["orders_total"] = stats["orders_total"].fillna(0).to_numpy()
        f["revenue_total"] = stats["revenue_total"].fillna(0).to_numpy()
        f["margin_total"] = f["revenue_total"] * 0.4
        f["recency_days"] = (ts - stats["last"]).dt.days.to_numpy()
        f["frequency"] = np.maximum(f["orders_total"] - 1, 0)
        f["recency"] = (stats["last"] - stats["first"]).dt.days.fillna(0).to_numpy()
        f["t"] = (ts - stats["first"]).dt.days.to_numpy()
        f["monetary_value"] = np.where(f["orders_total"] > 0, f["revenue_total"] / f["orders_total"].clip(lower=1), 0.0)
        f["avg_order_value"] = f["revenue_total"] / f["orders_total"].where(f["orders_total"] > 0)
        f["online_order_share"] = 0.5
        f["orders_30d"] = stats["orders_30d"].fillna(0).to_numpy()
        f["orders_90d"] = stats["orders_90d"].fillna(0).to_numpy()
        f["orders_365d"] = f["orders_total"]
        f["revenue_90d"] = 0.0
        f["revenue_365d"] = f["revenue_total"]
        f["tenure_days"] = 400.0
        # Engagement is a noisy read of the purchase rate: what makes purchases predictable.
        f["sessions_30d"] = rng.poisson(rate * 40)
        for c in ("product_views_30d", "add_to_carts_30d", "sends_90d", "opens_90d", "clicks_90d"):
            f[c] = 0
        for c in CHANNELS:
            f[f"consent_{c}"] = consent[c]
            f[f"sends_{c}_365d"] = engagement_rng.poisson(3.0, customers) * consent[c]
            f[f"opens_{c}_365d"] = engagement_rng.binomial(f[f"sends_{c}_365d"], 0.0 if c == "sms" else open_rate)
        for c in ("r_score", "f_score", "m_score"):
            f[c] = np.nan
        f["rfm_segment"] = np.where(f["orders_total"] > 0, "loyal", "prospect")
        f["cycle_id"] = d.isoformat()
        feature_rows.append(f)
        window = orders[(orders["ordered_at"] >= ts) & (orders["ordered_at"] < ts + pd.Timedelta(days=7))]
        churn_window = orders[(orders["ordered_at"] >= ts) & (orders["ordered_at"] < ts + pd.Timedelta(days=28))]
        label_rows.append(pd.DataFrame({
            "customer_id": ids, "as_of_date": d,
            "purchased_next_cycle": np.isin(ids, window["customer_id"]),
            "churned": ~np.isin(ids, churn_window["customer_id"]),
            "label_complete_next_cycle": ts + pd.Timedelta(days=7) <= data_end,
            "label_complete_churn": ts + pd.Timedelta(days=28) <= data_end,
            "data_end_at": data_end,
        }))
    features = pd.concat(feature_rows, ignore_index=True)
    labels = pd.concat(label_rows, ignore_index=True)

    # Campaigns: each complete cycle randomises 30 % of members over the catalogue's actions, half held out.
    send_rows = []
    for d in as_of[:-1]:
        chosen = rng.random(customers) < 0.3
        offers = rng.choice(["message", "pct10", "pct20"], customers)
        channels = rng.choice(list(CHANNELS), customers)
        treated = rng.random(customers) < 0.5
        base = 1 - np.exp(-rate)
        effect = np.where((offers == "pct20") & (channels == "email") & consent["email"], TRUE_UPLIFT, 0.0)
        converted = rng.random(customers) < base + treated * effect
        for i in np.flatnonzero(chosen & (members != None)):  # noqa: E711 (object array comparison)
            send_rows.append({
                "campaign_id": f"{d.isoformat()}-{offers[i]}-{channels[i]}", "member_id": members[i],
                "customer_id": ids[i], "cycle_id": d.isoformat(), "as_of_date": d,
                "arm": "treatment" if treated[i] else "control", "is_treatment": bool(treated[i]),
                "channel": channels[i],
                "offer_type": "none" if offers[i] == "message" else "percent_off",
                "offer_value": {"message": 0.0, "pct10": 10.0, "pct20": 20.0}[offers[i]],
                "assignment_probability": 0.5,
                "starts_at": pd.Timestamp(d), "ends_at": pd.Timestamp(d) + pd.Timedelta(days=7) - pd.Timedelta(seconds=1),
                "is_converted": bool(converted[i]), "revenue": 80.0 * converted[i], "margin": 30.0 * converted[i],
                "is_unsubscribed": False, "is_bounced": False,
                "sent_at": pd.Timestamp(d) + pd.Timedelta(days=1) if treated[i] else pd.NaT,
                "true_uplift": effect[i],
            })
    sends = pd.DataFrame(send_rows)
    frames = {"fct_customer_features": features, "fct_customer_labels": labels, "fct_orders": orders,
              "fct_action_sends": sends.drop(columns=["true_uplift"]),
              "fct_campaign_sends": sends.drop(columns=["true_uplift", "offer_value", "as_of_date"])}
    frames |= model_frame_marts(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        for name, frame in frames.items():
            con.register("frame", frame)
            con.execute(f"create or replace table marts.{name} as select * from frame")
            con.unregister("frame")
    frames["sends_truth"] = sends
    return frames


def model_frame_marts(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The marts of models/marts/ml that ml/features.py reads, derived from the synthetic marts as dbt derives
    them (the dbt models are checked against the SQL they replaced by bench/frames_equivalence.py)."""
    features, labels = frames["fct_customer_features"], frames["fct_customer_labels"]
    features = features.assign(is_member=features["member_id"].notna())
    completes = ["label_complete_next_cycle", "label_complete_churn"]
    classifier = features.merge(labels[labels[completes].any(axis=1)].drop(columns=["data_end_at"]),
                                on=["customer_id", "as_of_date"])
    sends = frames["fct_action_sends"]
    sends = sends[sends["ends_at"] < labels["data_end_at"].max()]
    uplift = features.merge(sends[["customer_id", "as_of_date", "campaign_id", "member_id", "channel", "offer_type",
                                   "offer_value", "is_treatment", "assignment_probability", "is_converted", "margin"]]
                            .rename(columns={"member_id": "send_member_id"}), on=["customer_id", "as_of_date"])
    uplift = uplift.assign(treatment=uplift["is_treatment"].astype("int32"),
                           is_converted=uplift["is_converted"].astype("int32")).drop(columns=["is_treatment"])
    contacts = pd.concat([_contacts_as_of(frames["fct_campaign_sends"], d) for d in features["as_of_date"].unique()])
    scoring = features.rename(columns={"rfm_segment": "segment"}).merge(contacts, on=["customer_id", "as_of_date"], how="left")
    scoring["contacts_last_30d"] = scoring["contacts_last_30d"].fillna(0).astype("int32")
    for column in ("unsubscribed_recently", *(f"bounced_{c}" for c in CHANNELS)):
        scoring[column] = scoring[column].astype("boolean").fillna(False).astype(bool)
    return {"fct_classifier_rows": classifier, "fct_uplift_rows": uplift, "fct_scoring_rows": scoring,
            "fct_fatigue_rows": _fatigue_rows(frames["fct_action_sends"], frames["fct_campaign_sends"], features)}


def _fatigue_rows(action_sends: pd.DataFrame, campaign_sends: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """fct_fatigue_rows: each randomised send with the customer's assignments (and contacts) of the 30 days before it."""
    keys = ["campaign_id", "member_id"]
    sends = action_sends[action_sends["customer_id"].notna() & action_sends["arm"].notna()]
    planned = campaign_sends[campaign_sends["customer_id"].notna() & campaign_sends["arm"].notna()]
    planned = pd.DataFrame({"customer_id": planned["customer_id"], "sent_at": planned["sent_at"],
                            "planned_at": planned["sent_at"].fillna(planned["starts_at"])})
    pairs = sends[[*keys, "customer_id", "starts_at"]].merge(planned, on="customer_id")
    pairs = pairs[(pairs["planned_at"] < pairs["starts_at"]) & (pairs["planned_at"] >= pairs["starts_at"] - pd.Timedelta(days=30))]
    counts = pairs.groupby(keys).agg(planned_before=("planned_at", "count"), contacts_before=("sent_at", "count"))
    out = sends[[*keys, "customer_id", "as_of_date", "is_treatment", "is_converted"]].merge(counts, on=keys, how="left")
    out = out.merge(features[["customer_id", "as_of_date", "rfm_segment"]], on=["customer_id", "as_of_date"], how="left")
    return out.assign(segment=out["rfm_segment"].fillna("unknown"),
                      planned_before=out["planned_before"].fillna(0).astype("int32"),
                      contacts_before=out["contacts_before"].fillna(0).astype("int32")).drop(columns=["rfm_segment"])


def _contacts_as_of(sends: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """int_customer_contacts_asof of one date: sends of the 30 days before it, and each channel's newest send."""
    at = pd.Timestamp(as_of)
    sends = sends[sends["customer_id"].notna()]
    contacted_at = sends["sent_at"].fillna(sends["starts_at"])
    recent = sends[(contacted_at < at) & (contacted_at >= at - pd.Timedelta(days=30))].groupby("customer_id").agg(
        contacts_last_30d=("sent_at", "count"), unsubscribed_recently=("is_unsubscribed", "any"))
    sent = sends[sends["sent_at"] < at].sort_values("sent_at")
    newest = sent.groupby(["customer_id", "channel"])["is_bounced"].last().unstack("channel")
    bounced = newest.reindex(columns=list(CHANNELS)).add_prefix("bounced_")
    out = recent.join(bounced, how="outer").reset_index()
    return out.assign(as_of_date=as_of)


@pytest.fixture(scope="module")
def synthetic_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A Campaign Loop home whose warehouse holds the synthetic marts (8 weekly as-of dates)."""
    from campaign_loop.config import Settings

    home = tmp_path_factory.mktemp("home")
    frames = synthetic_marts(Settings(home=home).warehouse_path)
    return home, frames

