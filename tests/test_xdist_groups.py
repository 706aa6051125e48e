"""The suite's xdist grouping holds: a file's tests run on one worker, so a world it builds is built once.

When grouping silently stops (pytest 9.2 with xdist 3.8 dropped the group suffix), nothing fails: every
module and session world is built on each worker and `make test` takes twice as long.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

TESTS = '''
import json, os
from pathlib import Path

import pytest

@pytest.mark.parametrize("i", range(4))
def test_where(i):
    out = Path(os.environ["GROUPS_OUT"]) / f"{__name__}-{i}.json"
    out.write_text(json.dumps({"file": __name__, "worker": os.environ["PYTEST_XDIST_WORKER"]}))
'''


def test_a_files_tests_run_on_one_worker(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    # The project's own grouping hook, as tests/conftest.py applies it to the real suite.
    (suite / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    for name in ("test_one.py", "test_two.py", "test_three.py"):
        (suite / name).write_text(TESTS)
    out = tmp_path / "out"
    out.mkdir()
    env = os.environ | {"GROUPS_OUT": str(out), "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-q", str(suite)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen: dict[str, set[str]] = {}
    for path in out.glob("*.json"):
        row = json.loads(path.read_text())
        seen.setdefault(row["file"], set()).add(row["worker"])
    assert len(list(out.glob("*.json"))) == 12
    assert {file: len(workers) for file, workers in seen.items()} == {"test_one": 1, "test_two": 1, "test_three": 1}
