"""The DAG's manifest is parsed again exactly when what it is parsed from changed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from campaign_loop import dbt
from campaign_loop.config import Settings


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[tuple[str, ...]]]:
    """A project of two files and a fake `dbt parse` that writes a manifest and records each call."""
    project_dir = tmp_path / "dbt_project"
    (project_dir / "models").mkdir(parents=True)
    (project_dir / "dbt_project.yml").write_text("name: p\n")
    (project_dir / "models" / "a.sql").write_text("select 1 as a\n")
    calls: list[tuple[str, ...]] = []

    def fake_run_dbt(settings: Settings, *args: str, **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        target = settings.root / "dbt" / "target"
        target.mkdir(parents=True, exist_ok=True)
        (target / "manifest.json").write_text(f'{{"parse": {len(calls)}}}')
        (project_dir / "target").mkdir(exist_ok=True)
        (project_dir / "target" / "partial_parse.msgpack").write_bytes(b"dbt's own output")
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    monkeypatch.setattr(dbt, "PROJECT_DIR", project_dir)
    monkeypatch.setattr(dbt, "MANIFEST_PATH", project_dir / "target" / "manifest.json")
    monkeypatch.setattr(dbt, "run_dbt", fake_run_dbt)
    return project_dir, calls


def test_an_unchanged_project_is_not_parsed_again(project, tmp_path: Path) -> None:
    project_dir, calls = project
    manifest = dbt.parse_project(Settings(home=tmp_path / "one"))
    assert dbt.parse_project(Settings(home=tmp_path / "another")) == manifest  # the graph is the same per home
    assert len(calls) == 1
    assert manifest.read_text() == '{"parse": 1}'


def test_a_changed_model_or_setting_is_parsed_again(project, tmp_path: Path) -> None:
    project_dir, calls = project
    home = tmp_path / "home"
    dbt.parse_project(Settings(home=home))
    (project_dir / "models" / "a.sql").write_text("select 2 as a\n")
    dbt.parse_project(Settings(home=home))
    dbt.parse_project(Settings(home=home, cycle_days=14))
    assert len(calls) == 3
    assert dbt.MANIFEST_PATH.read_text() == '{"parse": 3}'


def test_a_deleted_manifest_is_parsed_again(project, tmp_path: Path) -> None:
    _, calls = project
    dbt.parse_project(Settings(home=tmp_path))
    dbt.MANIFEST_PATH.unlink()
    dbt.parse_project(Settings(home=tmp_path))
    assert len(calls) == 2


def test_the_parse_uses_the_profile_and_target_the_dags_tasks_pass(project, tmp_path: Path) -> None:
    """dbt keeps a partial-parse state only for the same profile and target: else every task parses in full."""
    _, calls = project
    dbt.parse_project(Settings(home=tmp_path))
    assert calls == [("parse", "--profile", dbt.PROFILE_NAME, "--target", dbt.DAG_TARGET)]


def _state(directory: Path, content: bytes, mtime: float) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("partial_parse.msgpack", "manifest.json"):
        (directory / name).write_bytes(content)
        os.utime(directory / name, (mtime, mtime))


def test_the_homes_parse_state_seeds_its_own_cosmos_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    settings = Settings(home=tmp_path / "home")
    cached = dbt.cosmos_cache_dir(settings) / f"the_dag__{dbt.DBT_TASK_GROUP}" / "target"
    _state(settings.root / "dbt" / "target", b"parsed", 1_000)
    dbt.seed_partial_parse(settings, "the_dag")
    assert (cached / "partial_parse.msgpack").read_bytes() == (cached / "manifest.json").read_bytes() == b"parsed"

    _state(cached, b"a later task's state", 2_000)  # Cosmos writes back what its tasks parsed since
    dbt.seed_partial_parse(settings, "the_dag")
    assert (cached / "partial_parse.msgpack").read_bytes() == b"a later task's state"

    _state(settings.root / "dbt" / "target", b"parsed again", 3_000)
    dbt.seed_partial_parse(settings, "the_dag")
    assert (cached / "partial_parse.msgpack").read_bytes() == b"parsed again"


def test_each_home_has_its_own_cosmos_cache(tmp_path: Path) -> None:
    """The state holds the home's warehouse path: a cache shared by two homes is a full parse per switch."""
    from campaign_loop.runner import airflow_env

    one, another = (airflow_env(Settings(home=tmp_path / name))["AIRFLOW__COSMOS__CACHE_DIR"] for name in "ab")
    assert one == str(tmp_path / "a" / "dbt" / "cosmos")
    assert another == str(tmp_path / "b" / "dbt" / "cosmos")
