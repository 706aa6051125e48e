"""``kpi_attribution_vs_incrementality``: per channel, the conversions each attribution credits it beside the
conversions its randomised holdouts measured it to cause.

Run by ``publish`` right after ``kpi_campaign_lift`` (which it reads) and before the marts are copied to
``published``, as that table is: the Markov chain's removal effects need a linear solve, which is Python's
(ml/attribution.py), not SQL's. Its columns are documented and tested as a dbt source
(dbt_project/models/marts/lift/kpi_attribution_vs_incrementality.yml).
"""

from __future__ import annotations

import pandas as pd

from campaign_loop.config import Settings
from ingest.lock import connect_writer, writer_lock
from ml.attribution import (
    RULES,
    attribution_vs_incrementality,
    holdout_incrementality,
    markov_attribution,
    rule_attribution,
)

TABLE = "kpi_attribution_vs_incrementality"
COLUMNS: dict[str, str] = {
    "channel": "varchar", "journeys": "integer", "converting_journeys": "integer",
    **{f"{rule}_conversions": "double" for rule in RULES},
    "removal_effect": "double", "markov_share": "double", "markov_conversions": "double", "markov_revenue": "double",
    "experiments": "integer", "treated": "integer",
    "incremental_conversions": "double", "incremental_ci_low": "double", "incremental_ci_high": "double",
    **{f"{rule}_to_incremental": "double" for rule in (*RULES, "markov")},
    "markov_within_incremental_ci": "boolean",
}  # the YAML beside the source documents the same


def _tables(con: object, schema: str) -> set[str]:
    return {name for (name,) in con.execute(  # type: ignore[attr-defined]
        "select table_name from information_schema.tables where table_schema = ?", [schema]).fetchall()}


def comparison(journeys: pd.DataFrame, lift: pd.DataFrame | None, channels: pd.Series) -> pd.DataFrame:
    """The table's rows from the journeys, kpi_campaign_lift (None: no experiment yet) and each campaign's
    channel."""
    on_path = journeys.assign(channel=journeys["path"].str.split(">"),
                              converting=journeys["journey_key"].where(journeys["converted"].astype(bool)))
    counts = on_path.explode("channel").groupby("channel").agg(
        journeys=("journey_key", "nunique"), converting_journeys=("converting", "nunique")).reset_index()
    incrementality = (holdout_incrementality(lift, channels) if lift is not None and len(lift)
                      else pd.DataFrame(columns=["channel", "incremental_conversions", "experiments", "treated",
                                                 "incremental_ci_low", "incremental_ci_high"]))
    table = attribution_vs_incrementality(markov_attribution(journeys), rule_attribution(journeys), incrementality)
    table = counts.merge(table, on="channel", how="outer")
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    return table[list(COLUMNS)]


def write_attribution_table(settings: Settings, schema: str = "marts") -> int | None:
    """Replace ``<schema>.kpi_attribution_vs_incrementality``: its row count, None when dbt built no
    ``fct_marketing_journeys`` (nothing to attribute)."""
    with writer_lock(settings.warehouse_path, f"{TABLE} in {schema}"), connect_writer(settings.warehouse_path) as con:
        present = _tables(con, schema)
        if "fct_marketing_journeys" not in present:
            return None
        journeys = con.execute(f"select journey_key, path, converted, revenue from {schema}.fct_marketing_journeys").df()
        lift = (con.execute(f"select * from {schema}.kpi_campaign_lift").df()
                if "kpi_campaign_lift" in present else None)
        channels = con.execute("select distinct campaign_id, channel from staging.stg_marketing__campaigns").df()
        by_campaign = channels.drop_duplicates("campaign_id").set_index("campaign_id")["channel"]
        rows = comparison(journeys, lift, by_campaign)  # noqa: F841 -- read by DuckDB's replacement scan
        columns = ", ".join(f'cast("{name}" as {sql}) as "{name}"' for name, sql in COLUMNS.items())
        con.execute(f"create or replace table {schema}.{TABLE} as select {columns} from rows")
    return len(rows)
