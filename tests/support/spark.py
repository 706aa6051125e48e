"""A local Spark warehouse for tests and benchmarks: the dbt profile's spark target, and its raw layer.

The profile's spark target (dbt_project/profiles.yml) runs a pyspark session inside dbt with an embedded
Derby metastore and a parquet warehouse, both under CAMPAIGN_LOOP_HOME/spark. ``copy_raw`` gives that
warehouse a DuckDB warehouse's raw tables (parquet written by DuckDB, registered by Spark), so a test can
build the same marts on Spark. Derby admits one JVM at a time: close the session before dbt runs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

JAVA_INSTALL = "apt-get install -y openjdk-17-jre-headless"


def java_available() -> bool:
    return shutil.which("java") is not None


def spark_dir(home: Path) -> Path:
    return Path(home) / "spark"


def session_conf(home: Path) -> dict[str, str]:
    """The settings of profiles.yml's spark target (server_side_parameters), for a session outside dbt."""
    root = spark_dir(home).resolve()
    return {
        "spark.master": "local[2]",
        "spark.app.name": "campaign-loop",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "2",
        "spark.ui.enabled": "false",
        "spark.sql.ansi.enabled": "false",
    }


@contextlib.contextmanager
def spark_session(home: Path) -> Iterator[Any]:
    """A Hive-enabled session on the home's Spark warehouse, stopped (and its JVM with it) on exit."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_conf(home).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        yield session
    finally:
        session.stop()
        from pyspark import SparkContext

        # Derby's lock lives as long as the JVM: a later dbt process could not open the metastore.
        gateway = SparkContext._gateway
        if gateway is not None:
            gateway.shutdown()
            SparkContext._gateway = None
            SparkContext._jvm = None


def raw_tables(con: Any) -> list[str]:
    """The DuckDB warehouse's raw tables, not the underscored load logs (as PostgreSQL's copy_raw)."""
    return [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'raw' "
        "and table_name not like '\\_%' escape '\\' order by table_name"
    ).fetchall()]


def export_raw(warehouse: Path, out: Path) -> list[str]:
    """Write each raw table of the DuckDB warehouse to ``out/<table>.parquet``; returns the tables."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = raw_tables(con)
        for table in tables:
            con.execute(f"copy raw.\"{table}\" to '{out / (table + '.parquet')}' (format parquet)")
    return tables


def copy_raw(warehouse: Path, home: Path) -> list[str]:
    """Replace the Spark warehouse's raw database with the DuckDB warehouse's raw tables.

    DuckDB's TIMESTAMP has no time zone; Spark reads it from parquet as TIMESTAMP_NTZ, which the models'
    timestamp arithmetic (unix_timestamp, intervals) treats apart from TIMESTAMP: the copy stores
    TIMESTAMP, exact under the session's UTC time zone.
    """
    staged = spark_dir(home) / "raw_parquet"
    shutil.rmtree(staged, ignore_errors=True)
    tables = export_raw(warehouse, staged)
    with spark_session(home) as spark:
        spark.sql("drop database if exists raw cascade")
        spark.sql("create database raw")
        for table in tables:
            frame = spark.read.parquet(str(staged / f"{table}.parquet"))
            columns = [
                f"cast(`{f.name}` as timestamp) as `{f.name}`" if f.dataType.typeName() == "timestamp_ntz"
                else f"`{f.name}`"
                for f in frame.schema.fields
            ]
            frame.selectExpr(*columns).write.format("parquet").saveAsTable(f"raw.`{table}`")
    shutil.rmtree(staged, ignore_errors=True)
    return tables


def table_files(home: Path, schema: str, table: str) -> str:
    """The parquet files of a Spark managed table, as a DuckDB read_parquet glob."""
    return str(spark_dir(home) / "warehouse" / f"{schema}.db" / table / "*.parquet")


if __name__ == "__main__":
    # A process of its own: the JVM (and Derby's lock on the metastore) ends with it, before dbt starts one.
    import sys

    copy_raw(Path(sys.argv[1]), Path(sys.argv[2]))
