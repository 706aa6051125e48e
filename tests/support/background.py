"""Scenarios that mostly wait, run beside the suite instead of inside a worker.

The deploy profile's test spends most of its minutes waiting on a distributed stack (heartbeats, retries,
each task's start-up in a fresh process): in a worker it held one of two xdist workers for 280-300 s while
using the CPU for 120-130 s of them (bench/RESULTS.md, "make test on a fresh clone"). So pytest's main
process (xdist's controller, or the only process without xdist) starts the scenario as a subprocess as
soon as collection shows its test was selected, and the test, which tests/conftest.py orders last, reads
the outcome the scenario wrote, waiting for it if need be. A test run without the controller having
started it (pytest run some other way) starts it itself, so the check never depends on the hook.

A scenario is a module run as ``python -m <module> <outcome.json>``: it writes a JSON object to the outcome
file when it ends, ``{"error": ...}`` when it failed, and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
# The test file whose selection starts the scenario, and the scenario's module.
SCENARIOS = {"tests/deploy/test_celery_stack.py": "tests.deploy.celery_stack"}
# Set by the main process for its workers (they inherit its environment): where outcomes and logs go.
DIRECTORY_ENV = "CAMPAIGN_LOOP_TEST_BACKGROUND"
POLL_S = 1.0

_started: dict[str, subprocess.Popen[bytes]] = {}


def directory() -> Path:
    """This session's directory, made by the main process (``configure``), or a new one for a lone process."""
    if not os.environ.get(DIRECTORY_ENV):
        os.environ[DIRECTORY_ENV] = tempfile.mkdtemp(prefix="campaign-loop-background-")
    return Path(os.environ[DIRECTORY_ENV])


def configure(path: Path) -> None:
    """In the main process, before xdist starts the workers: the directory they all share (under pytest's
    base temporary directory, which keeps the last three sessions' as it does tests' ``tmp_path``)."""
    path.mkdir(parents=True, exist_ok=True)
    os.environ[DIRECTORY_ENV] = str(path)


def paths(module: str) -> tuple[Path, Path, Path]:
    """The scenario's outcome, log and pid files."""
    base = directory() / module.rsplit(".", 1)[-1]
    return base.with_suffix(".json"), base.with_suffix(".log"), base.with_suffix(".pid")


def start_selected(nodeids: list[str]) -> None:
    """Start every scenario whose test file is among ``nodeids`` (once per session)."""
    for file, module in SCENARIOS.items():
        if module not in _started and any(n.split("::", 1)[0] == file for n in nodeids):
            _started[module] = _start(module)


def _start(module: str) -> subprocess.Popen[bytes]:
    outcome, log, pid = paths(module)
    with log.open("ab") as out:
        # Its own session: stop() signals the scenario's group, which stops the services it started.
        process = subprocess.Popen([sys.executable, "-m", module, str(outcome)], cwd=REPO_ROOT,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid.write_text(str(process.pid))
    return process


def stop() -> None:
    """At the session's end: a scenario still running (its test deselected by a failure or -x) is stopped."""
    for process in _started.values():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # the scenario's handler stops its services
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def outcome(module: str, timeout_s: float) -> dict[str, Any]:
    """The scenario's outcome: started here if the main process did not, waited for up to ``timeout_s``.

    Raises AssertionError naming the log when the scenario ended without an outcome or did not end in time.
    """
    result, log, pid_file = paths(module)
    if not pid_file.exists():
        _started[module] = _start(module)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + timeout_s
    while not result.exists():
        if not _alive(pid):
            if result.exists():  # written between the two checks
                break
            raise AssertionError(f"the scenario {module} (pid {pid}) ended without an outcome; its log {log}:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the scenario {module} (pid {pid}) not done within {timeout_s:.0f} s; its log "
                                 f"{log}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(POLL_S)
    return dict(json.loads(result.read_text()))


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # the main process reaps it only at the end
    except psutil.NoSuchProcess:
        return False


def write_outcome(path: Path, outcome: dict[str, Any]) -> None:
    """Written whole or not at all: the test polls for the file."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(outcome, indent=2, default=str))
    partial.replace(path)
