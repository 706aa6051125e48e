"""bench/ci_timeline.py: per worker, busy time and the idle tail; per group, the summed span."""

from __future__ import annotations

import json
from pathlib import Path

from bench import ci_timeline


def test_the_report_counts_busy_time_the_idle_tail_and_groups(tmp_path: Path) -> None:
    spans = [
        {"worker": "gw0", "group": "tests/a.py", "test": "tests/a.py::one", "start": 100.0, "end": 160.0,
         "cpu": 50.0},
        {"worker": "gw0", "group": "tests/a.py", "test": "tests/a.py::two", "start": 160.0, "end": 200.0},
        {"worker": "gw1", "group": "tests/b.py", "test": "tests/b.py::one", "start": 100.0, "end": 130.0},
        {"worker": "gw1", "group": "tests/c.py", "test": "tests/c.py::one", "start": 140.0, "end": 150.0},
    ]
    for worker in ("gw0", "gw1"):
        (tmp_path / f"{worker}.jsonl").write_text(
            "".join(json.dumps(s) + "\n" for s in spans if s["worker"] == worker))

    text = ci_timeline.report(ci_timeline.load(tmp_path))

    assert "4 tests, first start to last end 100 s" in text
    assert "| gw0 | 2 | 100 | 50 | 0 | 0 |" in text  # CPU only where recorded
    assert "| gw1 | 2 | 40 | 0 | 10 | 50 |" in text  # busy 40 of the 50 s it ran; 50 s idle while gw0 finished
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0] == "| `tests/a.py` | gw0 | 2 | 100 | 50 | 0 |" and rows[-1] == "| `tests/c.py` | gw1 | 1 | 10 | 0 | 40 |"
