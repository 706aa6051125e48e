"""Pairwise precision and recall of "same person" of int_identity_resolved against the simulator's truth.

What is measured (docs/warehouse.md#identity-quality):

- The universe is the **observed identifiers**: every member ID, e-mail hash, phone hash, cookie and device
  that appears in a staging model (any ``staging.stg_*`` column named ``member_id``, ``email_hash``,
  ``phone_hash``, ``cookie_id`` or ``device_id``), i.e. in the data the warehouse loaded. An identifier of the
  truth never observed anywhere (a CRM-less guest's phone, a device never used) cannot be in any pair.
  The universe does not depend on the identity models: an observed identifier the resolver dropped counts
  as its own customer (a miss), not as absent.
- Household-shared devices (``shared`` in the truth: one device used by several people) are excluded
  from the truth pairs and from the predicted pairs: "same person" is undefined for them. They are
  reported as their own class (``shared_identifiers``).
- A true pair is two observed identifiers of the same person; a predicted pair is two observed
  identifiers with the same ``customer_id``. Precision = |true & predicted| / |predicted|,
  recall = |true & predicted| / |true|.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from campaign_loop.dbt_duckdb_plugin import hmac_hex, pii_key

# Mirrors the normalize_email / normalize_phone macros, so truth values hash to what staging stores.
JUNK = {"", "unknown", "null", "none", "nil", "n/a", "na", "nan", "0", "-", "undefined", "anonymous", "guest"}

# Staging column -> identifier type of int_identity_identifiers.
IDENTIFIER_COLUMNS = {
    "member_id": "member_id", "email_hash": "email", "phone_hash": "phone",
    "cookie_id": "cookie_id", "device_id": "device_id",
}


def normalize_email(value: str) -> str | None:
    text = value.strip().lower()
    return None if text in JUNK or not re.fullmatch(r".+@.+\..+", text) else text


def normalize_phone(value: str) -> str | None:
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) < 9 or not digits.strip("0"):
        return None
    return "0" + digits[2:] if digits.startswith("82") and len(digits) >= 11 else digits


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    true_pairs: int
    predicted_pairs: int
    identifiers: int  # observed, unshared identifiers of the truth: the universe of the pairs
    unobserved_identifiers: int  # identifiers of the truth never seen in the warehouse
    shared_identifiers: int  # observed household devices, excluded from the pairs
    missed_by_type: dict[str, int]  # observed identifiers not in their person's largest customer, by type


def _pairs(counts: pd.Series) -> int:
    return int((counts * (counts - 1) // 2).sum())


def truth_identifiers(truth_path: Path) -> pd.DataFrame:
    truth = pd.read_parquet(truth_path)
    shared = truth["shared"].astype(bool) if "shared" in truth else pd.Series(False, index=truth.index)
    key = pii_key()
    value = truth["identifier_value"].astype(str)
    kind = truth["identifier_type"]
    out = value.str.strip()
    out = out.where(kind != "email", value.map(lambda v: hmac_hex(key, normalize_email(v))))
    out = out.where(kind != "phone", value.map(lambda v: hmac_hex(key, normalize_phone(v))))
    return pd.DataFrame({
        "identifier_type": kind, "identifier_value": out, "person_id": truth["person_id"], "shared": shared,
    }).dropna(subset=["identifier_value"])


def observed_sql(con: duckdb.DuckDBPyConnection) -> str:
    columns = con.sql(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'staging' and table_name like 'stg\\_%' escape '\\' "
        f"and column_name in ({', '.join(repr(c) for c in IDENTIFIER_COLUMNS)})"
    ).fetchall()
    parts = [
        f"select '{IDENTIFIER_COLUMNS[column]}' as identifier_type, {column} as identifier_value "
        f"from staging.{table} where {column} is not null"
        for table, column in sorted(columns)
    ]
    return "\nunion\n".join(parts)


def pair_scores(warehouse: Path, truth_path: Path) -> PairScores:
    truth = truth_identifiers(truth_path)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        observed = con.sql(observed_sql(con)).df()
        resolved = con.sql(
            "select identifier_type, identifier_value, customer_id from intermediate.int_identity_resolved"
        ).df()
    seen = truth.merge(observed, on=["identifier_type", "identifier_value"], how="inner")
    unobserved = len(truth) - len(seen)
    shared = int(seen["shared"].sum())
    seen = seen[~seen["shared"]].merge(resolved, on=["identifier_type", "identifier_value"], how="left")
    # An observed identifier the resolver lost is a customer of its own.
    lost = seen["customer_id"].isna()
    seen.loc[lost, "customer_id"] = "lost:" + seen.loc[lost, "identifier_type"] + ":" + seen.loc[lost, "identifier_value"]
    tp = _pairs(seen.groupby(["person_id", "customer_id"]).size())
    true_pairs = _pairs(seen.groupby("person_id").size())
    predicted = _pairs(seen.groupby("customer_id").size())
    sizes = seen.groupby(["person_id", "customer_id"]).size().rename("n").reset_index()
    main = sizes.sort_values("n", ascending=False).drop_duplicates("person_id")
    stray = seen.merge(main, on=["person_id", "customer_id"], how="left")
    missed = stray[stray["n"].isna()].groupby("identifier_type").size()
    return PairScores(
        precision=tp / predicted if predicted else 1.0,
        recall=tp / true_pairs if true_pairs else 1.0,
        true_pairs=true_pairs,
        predicted_pairs=predicted,
        identifiers=len(seen),
        unobserved_identifiers=unobserved,
        shared_identifiers=shared,
        missed_by_type={str(k): int(v) for k, v in missed.items()},
    )
