"""The command line: flags share the settings' names, bad input exits non-zero with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from campaign_loop.cli import build_parser, main
from campaign_loop.config import Settings
from tests.support.telemetry import outside_ci, telemetry_on


def test_every_settings_key_is_a_flag_of_the_same_name() -> None:
    parser = build_parser()
    simulate = parser._subparsers._group_actions[0].choices["simulate"]  # type: ignore[union-attr]
    flags = {opt for action in simulate._actions for opt in action.option_strings}
    for key in Settings.model_fields:
        assert f"--{key}" in flags


def test_every_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse formats help texts with %: a setting whose description holds a % once made --help crash.
    for command in ([], ["simulate"], ["ingest"], ["demo"], ["ui"], ["bench", "loop-value"]):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0, command
    assert "80 % power" in " ".join(capsys.readouterr().out.split())


def test_a_command_s_own_process_does_not_phone_home() -> None:
    # Given the command line run outside any test or CI, without a telemetry switch in its environment
    run_a_command = ("import contextlib\nfrom campaign_loop.cli import main\n"
                     "with contextlib.suppress(SystemExit): main(['bench', 'loop-value', '--help'])")
    # When a command has started and MLflow is imported in its process, then MLflow starts no telemetry client
    assert not telemetry_on(outside_ci(), before=run_a_command)
    assert telemetry_on(outside_ci()), "the probe cannot tell: MLflow started no client without the switches"


def test_simulate_then_ingest_loads_the_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--home", str(tmp_path), "--customers", "300", "--history_weeks", "2"]
    assert main(["simulate", "--cycle", "0", *common]) == 0
    assert "cycle 0 (2026-01-05)" in capsys.readouterr().out
    assert main(["ingest", *common]) == 0
    out = capsys.readouterr().out
    assert "orders" in out and "2026-01-05" in out
    with duckdb.connect(str(tmp_path / "warehouse" / "campaign_loop.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] > 0


def test_a_missing_landing_folder_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(tmp_path / "landing") in err


def test_an_invalid_setting_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--home", str(tmp_path), "--holdout_share", "0.9"]) == 2
    assert "holdout_share" in capsys.readouterr().err


def test_ui_passes_its_ports_and_the_settings_to_run_ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from campaign_loop import ui

    calls = []
    monkeypatch.setattr(ui, "run_ui", lambda settings, *ports, docs: calls.append((settings.root, ports, docs)) or 0)
    assert main(["ui", "--home", str(tmp_path), "--site-port", "9999", "--no-docs"]) == 0
    assert calls == [(tmp_path, (ui.DEFAULT_AIRFLOW_PORT, ui.DEFAULT_MLFLOW_PORT, 9999), False)]


def test_bench_loop_value_runs_policies_in_child_processes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    json_path = tmp_path / "rows.json"
    assert main(["bench", "loop-value", "--home", str(tmp_path / "home"), "--customers", "300", "--history_weeks", "4",
                 "--cycles", "2", "--policies", "random,oracle", "--jobs", "2", "--json", str(json_path)]) == 0
    rows = json.loads(json_path.read_text())
    # Rows come in the order the policies were asked for, whichever child finished first.
    assert [(r["policy"], r["cycle"]) for r in rows] == [("random", 1), ("random", 2), ("oracle", 1), ("oracle", 2)]
    assert all(r["ratio_to_oracle"] == 1.0 for r in rows if r["policy"] == "oracle")
    assert (tmp_path / "home" / "bench" / "loop_value" / "random").is_dir()
    assert "| cycle | random | oracle |" in capsys.readouterr().out


def test_bench_loop_value_defaults_to_the_100k_world() -> None:
    args = build_parser().parse_args(["bench", "loop-value"])
    assert (args.customers, args.budget_per_customer, args.jobs) == (100_000, 0.05, 2)
    assert build_parser().parse_args(["simulate"]).customers is None  # other commands keep the settings' default


# What the commands import before runner.airflow_session points Airflow at their home: Airflow reads its home and
# configuration once, at import, so none of these may import it (the bare log's backfill failed when the steps'
# module imported the DAG's link class at its top).
BEFORE_AIRFLOW = ("campaign_loop.cli", "campaign_loop.pipeline", "campaign_loop.runner", "campaign_loop.own_data",
                  "campaign_loop.demo", "campaign_loop.ui", "campaign_loop.deploy", "ml.policies", "ingest.lock")


@pytest.mark.parametrize(("modules", "imports_airflow"), [(BEFORE_AIRFLOW, False),
                                                           (("campaign_loop.airflow_links",), True)])
def test_the_commands_modules_leave_airflow_unimported(modules: tuple[str, ...], imports_airflow: bool) -> None:
    probe = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('airflow' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(imports_airflow), f"{modules}: Airflow imported is {run.stdout.strip()}"
