"""kpi_attribution_vs_incrementality as publish writes it, on a hand-built warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from campaign_loop.attribution import COLUMNS, TABLE, write_attribution_table
from campaign_loop.config import Settings

YAML = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "marts" / "lift" / f"{TABLE}.yml"


def test_the_yaml_names_the_columns_publish_writes() -> None:
    [table] = yaml.safe_load(YAML.read_text())["sources"][0]["tables"]
    assert {c["name"]: c["data_type"] for c in table["columns"]} == COLUMNS
    assert all(c.get("description") for c in table["columns"])


def test_publish_writes_each_channels_attribution_beside_its_holdouts(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    settings.warehouse_path.parent.mkdir(parents=True)
    assert write_attribution_table(settings) is None  # no journeys mart yet: nothing written
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema marts; create schema staging")
        # The hand fixture of tests/ml/test_attribution.py: Markov credits email 2/3 and sms 4/3 conversions.
        con.execute("""create table marts.fct_marketing_journeys as select * from (values
            ('c1:0', 'email>sms', true, 30.0), ('c2:0', 'email', false, 0.0), ('c3:0', 'sms', true, 10.0))
            t(journey_key, path, converted, revenue)""")
        con.execute("""create table marts.kpi_campaign_lift as select * from (values
            ('k1', 'converted', 0.01, 0.005, 0.015, 1000), ('k1', 'revenue', 5.0, 1.0, 9.0, 1000),
            ('k2', 'converted', 0.02, -0.01, 0.05, 100))
            t(campaign_id, metric, lift, lift_ci_low, lift_ci_high, n_arm)""")
        con.execute("""create view staging.stg_marketing__campaigns as select * from (values
            ('k1', 'email'), ('k2', 'push')) t(campaign_id, channel)""")
    assert write_attribution_table(settings) == 3
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frame = con.execute(f"select * from marts.{TABLE} order by channel").df().set_index("channel")
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = ?", [TABLE]).fetchall())
    assert list(frame.index) == ["email", "push", "sms"]
    assert frame.loc["email", "markov_conversions"] == pytest.approx(2 / 3)
    assert frame.loc["email", "incremental_conversions"] == pytest.approx(10.0)
    assert frame.loc["email", "markov_to_incremental"] == pytest.approx(2 / 30)
    assert frame.loc["email", "journeys"] == 2 and frame.loc["email", "converting_journeys"] == 1
    assert frame.loc["sms", "removal_effect"] == pytest.approx(1.0) and frame.isna().loc["sms", "experiments"]
    assert frame.isna().loc["push", "markov_conversions"] and frame.loc["push", "experiments"] == 1
    assert types["journeys"] == "INTEGER" and types["markov_within_incremental_ci"] == "BOOLEAN"
