"""ArviZ's daily import stamp: settled first, a racing writer cannot fail the import (ml/arviz_stamp.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from ml.arviz_stamp import settle_arviz_stamp, stamp_path

# ArviZ's own write, made to lose the race: its rename of daily_warning.tmp finds the file gone, as when
# another process renamed it first.
IMPORT_LOSING_THE_RACE = """
import pathlib, sys
def lost(self, target):
    raise FileNotFoundError(2, "No such file or directory", str(self))
pathlib.Path.replace = lost
if sys.argv[1] == "settled":
    from ml.arviz_stamp import settle_arviz_stamp
    settle_arviz_stamp()
import arviz
"""


def _import_arviz(cache: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run([sys.executable, "-c", IMPORT_LOSING_THE_RACE, mode], env=env, capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2], timeout=120)


def test_a_settled_stamp_leaves_arviz_nothing_to_write(tmp_path: Path) -> None:
    bare = _import_arviz(tmp_path / "bare", "bare")
    assert bare.returncode != 0 and "daily_warning" in bare.stderr  # the failure seen on 2026-12-07
    settled = _import_arviz(tmp_path / "settled", "settled")
    assert settled.returncode == 0, settled.stderr
    assert (tmp_path / "settled" / "arviz" / "daily_warning").read_text() == date.today().isoformat()


def test_concurrent_settlers_all_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delitem(sys.modules, "arviz", raising=False)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: settle_arviz_stamp(), range(64)))
    assert stamp_path() == tmp_path / "arviz" / "daily_warning"
    assert stamp_path().read_text() == date.today().isoformat()
    assert [p.name for p in stamp_path().parent.iterdir()] == ["daily_warning"]  # no temporary file left behind
