"""bench/loop_value.py over a family of worlds and seeds (issue 24): the rows name their world and seed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("loop_value_bench", ROOT / "bench" / "loop_value.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeds_are_a_count_from_1001_or_a_list() -> None:
    bench = _bench()
    assert bench.seeds_from("3") == [1001, 1002, 1003]
    assert bench.seeds_from("7,42") == [7, 42]
    assert bench.seeds_from("2024") == [2024]


@pytest.mark.timeout(180)
def test_a_family_run_writes_a_row_per_world_seed_policy_and_cycle(tmp_path: Path, capsys) -> None:
    out = tmp_path / "family.json"
    code = _bench().cli(["--worlds", "a,c", "--seeds", "2024", "--customers", "300", "--cycles", "1",
                         "--policies", "random,oracle", "--jobs", "1", "--out", str(tmp_path / "w"), "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert {(r["world"], r["seed"], r["policy"], r["cycle"]) for r in rows} == {
        (w, 2024, p, 1) for w in ("a", "c") for p in ("random", "oracle")}
    for row in rows:
        assert {"incremental_profit", "ratio_to_oracle"} <= set(row)
    # Each run really is in its world: the same seed's oracle earns differently in a and c.
    oracle = {(r["world"], r["seed"]): r["incremental_profit"] for r in rows if r["policy"] == "oracle"}
    assert oracle[("a", 2024)] != oracle[("c", 2024)]
    assert "| world | seeds |" in capsys.readouterr().out
