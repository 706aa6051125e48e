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


def _rows(world: str, seed: int, policy: str, profits: list[float], ratios: list[float],
          spearman: float | None = None) -> list[dict]:
    return [{"world": world, "seed": seed, "policy": policy, "cycle": c, "incremental_profit": p,
             "ratio_to_oracle": r, "uplift_spearman_true": spearman}
            for c, (p, r) in enumerate(zip(profits, ratios, strict=True), start=1)]


def test_combine_summarises_seeds_with_t_intervals_and_the_targets(tmp_path: Path) -> None:
    bench = _bench()
    cycles = 6
    rows = (_rows("b", 1, "platform", [1.0] * 5 + [5.0], [0.5] * 3 + [0.7, 0.8, 0.9], 0.3)
            + _rows("b", 2, "platform", [2.0] * 5 + [10.0], [0.5] * 3 + [0.4, 0.5, 0.6], 0.1)
            + _rows("b", 1, "tlearner_gbm", [1.0] * cycles, [0.1] * cycles)
            + _rows("b", 2, "tlearner_gbm", [1.0] * cycles, [0.1] * cycles)
            + _rows("b", 1, "best_action", [-5.0] * cycles, [-0.1] * cycles)
            + _rows("b", 2, "best_action", [-5.0] * cycles, [-0.1] * cycles)
            + _rows("b", 3, "platform", [9.0] * cycles, [0.9] * cycles))  # no baseline ran at seed 3
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(rows))
    text = bench.seeds_summary(bench.combine([path]))
    # Profit 10 and 20 over the two complete seeds: mean 15, half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 5.
    assert "World b, seeds 1, 2 (left out, not every policy ran: 3)" in text
    assert "| platform | 15 ± 64 | 0.65 ± 1.91 | 0.20 ± 1.27 |" in text
    # The best baseline earns 6 a seed; the platform's 15 is 2.5 times that.
    assert "ratio at cycles 4-6 0.65 (met" in text
    assert "2.50x tlearner_gbm (met)" in text and "(per seed: 1 1.67x, 2 3.33x)" in text
    assert "uplift Spearman 0.20 (met" in text


def test_a_baseline_that_loses_money_counts_as_zero(tmp_path: Path) -> None:
    bench = _bench()
    rows = (_rows("c", 1, "platform", [-1.0] * 6, [-0.1] * 6, 0.1)
            + _rows("c", 1, "best_action", [-2.0] * 6, [-0.2] * 6))
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(rows))
    text = bench.seeds_summary(bench.combine([path]))
    assert "every baseline loses money (not met: the platform's mean is -6)" in text
    assert "(per seed: 1 -6 against no baseline profit)" in text
    assert "ratio at cycles 4-6 -0.10 (not met" in text and "uplift Spearman 0.10 (not met" in text


def test_combine_refuses_a_run_with_missing_cycles_or_a_foreign_file(tmp_path: Path) -> None:
    bench = _bench()
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(_rows("a", 1, "platform", [1.0] * 6, [0.5] * 6)
                               + _rows("a", 2, "platform", [1.0] * 5, [0.5] * 5)))
    with pytest.raises(ValueError, match="world a, seed 2, platform: cycles"):
        bench.seeds_summary(bench.combine([path]))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="other.json: expected a list of rows"):
        bench.combine([other])


def test_provenance_names_each_policy_s_commit_when_they_differ() -> None:
    bench = _bench()
    rows = ([{**r, "commit": "aaa"} for r in _rows("a", 5, "platform", [1.0], [0.1])]
            + [{**r, "commit": "bbb"} for r in _rows("a", 5, "best_action", [1.0], [0.1])]
            + [{**r, "commit": "ccc", "source": "transcribed"} for r in _rows("b", 5, "platform", [1.0], [0.1])])
    assert bench.provenance(rows).splitlines() == ["- a 5: platform at aaa; best_action at bbb",
                                                   "- b 5: commit ccc; transcribed"]
