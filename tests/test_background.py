"""A background scenario's test fails when the scenario does (tests/support/background.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import background


def test_a_scenario_that_ends_without_an_outcome_fails_naming_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a directory no main process started anything in, and a "scenario" that exits 1 without an
    # outcome (json.tool cannot read the outcome file it is handed)
    monkeypatch.setenv(background.DIRECTORY_ENV, str(tmp_path))
    monkeypatch.setattr(background, "_started", {})
    # When its test asks for the outcome, then it is started there and its death fails the test with its log
    with pytest.raises(AssertionError, match=r"(?s)ended without an outcome; its log .*tool\.log.*No such file"):
        background.outcome("json.tool", timeout_s=60)
    assert (tmp_path / "tool.pid").exists()


def test_an_outcome_is_read_as_the_scenario_wrote_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(background.DIRECTORY_ENV, str(tmp_path))
    outcome, _, pid = background.paths("tests.deploy.celery_stack")
    pid.write_text("1")  # started by the main process (pid 1 never ends here)
    background.write_outcome(outcome, {"error": "Traceback ... AssertionError: the stack did not start"})
    assert background.outcome("tests.deploy.celery_stack", timeout_s=5) == {
        "error": "Traceback ... AssertionError: the stack did not start"}
    assert not outcome.with_suffix(".partial").exists()
