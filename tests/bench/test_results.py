"""bench/RESULTS.md holds one current table per benchmark: a rerun replaces its section, never stacks a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import results

BEFORE = """# Benchmark results

## Speed (issue 1)

Command: old
| a |
|---|
| 1 |

### Per size (written by another benchmark)

| size | s |
|---|---|
| 10 | 2 |

## Quality (issue 2)

| q |
|---|
| 0.9 |
"""


@pytest.fixture
def file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    monkeypatch.setattr(results, "RESULTS", path)
    return path


def test_a_rerun_replaces_its_section_and_keeps_the_subsections_under_it(file: Path) -> None:
    results.write_section("## Speed (issue 1)\n\nCommand: new\n| a |\n|---|\n| 2 |\n")
    results.write_section("## Speed (issue 1)\n\nCommand: newer\n| a |\n|---|\n| 3 |\n")
    text = file.read_text()
    assert text == BEFORE.replace("Command: old\n| a |\n|---|\n| 1 |", "Command: newer\n| a |\n|---|\n| 3 |")


def test_a_subsection_is_replaced_alone(file: Path) -> None:
    results.write_section("| size | s |\n|---|---|\n| 100 | 9 |", "### Per size (written by another benchmark)",
                          within="## Speed (issue 1)")
    assert file.read_text() == BEFORE.replace("| 10 | 2 |", "| 100 | 9 |")


def test_a_new_subsection_goes_at_the_end_of_its_section_and_a_new_section_at_the_end(file: Path) -> None:
    results.write_section("x", "### Memory", within="## Speed (issue 1)")
    results.write_section("y", "## Scale (issue 3)")
    text = file.read_text()
    assert "| 10 | 2 |\n\n### Memory\n\nx\n\n## Quality (issue 2)" in text
    assert text.endswith("| 0.9 |\n\n## Scale (issue 3)\n\ny\n")
    results.write_section("z", "### Memory", within="## Speed (issue 1)")
    assert file.read_text() == text.replace("### Memory\n\nx\n", "### Memory\n\nz\n")


def test_a_text_without_a_heading_or_an_unknown_parent_is_an_error(file: Path) -> None:
    with pytest.raises(ValueError, match="needs a heading"):
        results.write_section("| a |")
    with pytest.raises(ValueError, match="no section '## Nowhere'"):
        results.write_section("x", "### Memory", within="## Nowhere")
    assert file.read_text() == BEFORE
