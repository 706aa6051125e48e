"""Given the same raw data in DuckDB and Spark, when dbt builds both, then every mart agrees.

The raw tables of the dbt tests' small world are copied into a local Spark warehouse under the world's
home (tests/support/spark.py, a process of its own), and dbt builds the project there on the profile's
spark target (a pyspark session, local[2]). Spark's tables are parquet files: DuckDB reads them, so the
comparison needs no second JVM. Each mart (and the identity resolution) is compared column by column:
row count, non-null count and distinct count, min and max, sums of numbers to a relative 1e-6
(DuckDB's dbt type_float is a 4-byte float, Spark's an 8-byte one), and a checksum of every value of
every column but floats, one per column and one per row: so the keyed hashes of PII (Spark's hmac()) and
the customer IDs built from them must be equal value for value, not merely as many.
Spark rebuilds incremental models in full; the DuckDB world was built in two incremental steps, so
this also checks that incremental builds give what a full build gives. The Spark build runs the models
(contracts enforced), the unit tests and the project's other data tests; the generic not-null, unique,
accepted-values and relationships tests run on DuckDB only (see docs/warehouse.md#spark).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.dbt.conftest import REPO, BuiltWorld, run_dbt
from tests.support.spark import JAVA_INSTALL, java_available, table_files

pytestmark = pytest.mark.slow

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "DECIMAL")
FLOATS = ("DOUBLE", "FLOAT")
# Run on DuckDB only, for time (a Spark job of a second or more each): the fingerprint below compares every
# column's non-null count with DuckDB's, where not_null_columns runs, so a null Spark alone made still shows.
DUCKDB_ONLY_TESTS = ["test_name:not_null_columns", "test_name:unique", "test_name:accepted_values",
                     "test_name:relationships"]
# The identity resolution is intermediate, but its customer IDs are what every mart joins on.
EXTRA_TABLES = [("intermediate", "int_identity_resolved")]


def _tables(world: BuiltWorld) -> list[tuple[str, str]]:
    """Every table-materialised mart of the project, from the DuckDB build's manifest."""
    nodes = json.loads((world.target_dir / "manifest.json").read_text())["nodes"].values()
    marts = sorted(
        (n["schema"], n["alias"]) for n in nodes
        if n["resource_type"] == "model" and n["schema"] == "marts"
        and n["config"]["materialized"] in ("table", "incremental")
    )
    return marts + EXTRA_TABLES


def _checksum(texts: list[str]) -> str:
    """An order-free checksum of values (as text, so an INTEGER and a BIGINT 7 agree): a sum of hashes,
    DuckDB's hash() on both sides (it hashes a null too)."""
    return f"coalesce(sum(hash({', '.join(texts)})), 0)"


def _fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, tuple]:
    columns = con.execute(f"describe select * from {relation}").fetchall()
    parts, names, exact = ["count(*)"], ["rows"], []
    for name, column_type, *_ in columns:
        quoted = f'"{name}"'
        text = f"cast({quoted} as varchar)"
        base = column_type.split("(")[0]
        # A float's distinct count and exact values are not compared (its sum is, to 1e-6): DuckDB's dbt
        # type_float is 4 bytes, Spark's 8.
        parts += [f"count({quoted})", "0" if base in FLOATS else f"count(distinct {quoted})"]
        if base in NUMERIC:
            parts.append(f"sum(cast({quoted} as double))")
        elif column_type == "BOOLEAN":
            parts.append(f"count_if({quoted})")
        else:
            parts.append(f"min({text}) || ' .. ' || max({text})")
        parts.append("0" if base in FLOATS else _checksum([text]))
        if base not in FLOATS:
            exact.append(text)
        names.append(name)
    parts.append(_checksum(exact))
    row = con.execute(f"select {', '.join(parts)} from {relation}").fetchone()
    out = {"rows": (row[0],), "(every row but floats)": (row[-1],)}
    for i, name in enumerate(names[1:]):
        out[name] = tuple(row[1 + 4 * i: 5 + 4 * i])
    return out


def _same(a: tuple, b: tuple) -> bool:
    return all(
        math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) if isinstance(x, float) and isinstance(y, float) else x == y
        for x, y in zip(a, b, strict=True)
    )


@pytest.fixture(scope="module")
def spark_home(built_world: BuiltWorld) -> Path:
    if not java_available():
        pytest.skip(f"Java is missing (Spark runs on it): {JAVA_INSTALL}")
    load = subprocess.run([sys.executable, "-m", "tests.support.spark", str(built_world.warehouse),
                           str(built_world.home)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert load.returncode == 0, f"copying raw into Spark failed:\n{load.stderr[-4000:]}"
    # Models (contracts enforced), unit tests and the project's other data tests: the generic tests of
    # DUCKDB_ONLY_TESTS (~130 of ~250) check the same data on DuckDB.
    result = run_dbt(built_world.home, "build", "--target", "spark", "--target-path",
                     str(built_world.home / "dbt" / "target-spark"), "--exclude", *DUCKDB_ONLY_TESTS,
                     timeout=1800)  # ~5 min on 2 busy cores; a JVM on a loaded CI runner can take much longer
    assert result.returncode == 0, result.stdout[-6000:]
    return built_world.home


def test_spark_build_matches_duckdb_on_every_mart(built_world: BuiltWorld, spark_home: Path) -> None:
    tables = _tables(built_world)
    assert len(tables) > 20, tables
    with duckdb.connect(str(built_world.warehouse), read_only=True) as con:
        for schema, table in tables:
            files = table_files(spark_home, schema, table)
            assert list(Path(files).parent.glob("*.parquet")), f"Spark built no {schema}.{table} ({files})"
            expected = _fingerprint(con, f"{schema}.{table}")
            # An empty table compares nothing: the world must give every mart rows.
            assert expected["rows"][0] > 0, f"{schema}.{table} is empty in the test world"
            actual = _fingerprint(con, f"read_parquet('{files}')")
            assert set(actual) == set(expected), f"{schema}.{table}: columns differ"
            wrong = {c: (expected[c], actual[c]) for c in expected if not _same(expected[c], actual[c])}
            assert not wrong, f"{schema}.{table} differs on Spark (DuckDB, Spark): {wrong}"
