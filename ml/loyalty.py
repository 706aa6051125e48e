"""Value tiers beside the scores: ``marts.dim_loyalty_tiers`` (dbt) read into the decisioning input, so that the
plan reports what it spends per tier (``budget.by_tier`` of its summary).

The tiers come from realised value and behaviour in the warehouse; the scored CLV (``clv_52w``) and churn
probability (``p_churn``) are what the LTV-based allocation values (``ml.decide.economics.retained_value``).
docs/decisions/0020-loyalty-tiers-and-ltv-budget.md says why the two are kept apart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ml import features

log = logging.getLogger(__name__)


def value_tiers(warehouse_path: Path | str, schema: str = features.DEFAULT_SCHEMA) -> pd.DataFrame | None:
    """``customer_id`` and ``value_tier`` of ``<schema>.dim_loyalty_tiers``; None when the schema has no such
    table (a warehouse built before the tiers existed, or the model tests' synthetic marts)."""
    warehouse = features.warehouse_of(warehouse_path)
    if "dim_loyalty_tiers" not in warehouse.tables(schema):
        log.warning("%s.dim_loyalty_tiers is absent: the plan reports no budget per value tier", schema)
        return None
    return features.read(warehouse, "dim_loyalty_tiers", ["customer_id", "value_tier"], schema)


def attach_value_tiers(scores: pd.DataFrame, tiers: pd.DataFrame | None) -> pd.DataFrame:
    """``scores`` with ``value_tier`` (missing where the tiers do not list the customer); unchanged without tiers."""
    if tiers is None:
        return scores
    if (repeated := tiers["customer_id"].duplicated()).any():
        raise ValueError(f"dim_loyalty_tiers lists customer_id {tiers.loc[repeated, 'customer_id'].iloc[0]!r} twice")
    by_customer = tiers.set_index("customer_id")["value_tier"]
    return scores.assign(value_tier=scores["customer_id"].map(by_customer))
