"""The DAG's manifest is parsed again exactly when what it is parsed from changed."""

from __future__ import annotations

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
