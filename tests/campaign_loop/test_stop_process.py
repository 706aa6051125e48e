"""`ui.stop_process` stops a service's whole process tree, including what left its process group, as an
Airflow task process does (it runs in a session of its own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from campaign_loop.ui import _spawn, stop_process

# A service that starts a worker in a new session (setsid), as Airflow's supervisor starts a task, and writes
# the worker's pid. With "ignore", the worker ignores SIGTERM, as a task stuck in DuckDB would not answer it.
SERVICE = """
import signal, subprocess, sys, time
worker = "import signal, time\\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n" if sys.argv[2] == "ignore" else "") + "time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", worker], start_new_session=True)
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() == psutil.STATUS_ZOMBIE  # exited; only its reaping is left to init
    except psutil.NoSuchProcess:
        return True


def _service_and_worker(tmp_path: Path, worker: str) -> tuple[subprocess.Popen[bytes], int]:
    pid_file = tmp_path / "worker.pid"
    service = _spawn("service", [sys.executable, "-c", SERVICE, str(pid_file), worker], None, tmp_path)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, f"the service wrote no worker pid; see {tmp_path / 'service.log'}"
        time.sleep(0.05)
    worker_pid = int(pid_file.read_text())
    assert os.getsid(worker_pid) != os.getsid(service.pid), "the worker is to be outside the service's session"
    return service, worker_pid


@pytest.mark.parametrize("worker", ["answers", "ignore"])
def test_stopping_a_service_stops_the_worker_it_started_in_its_own_session(tmp_path: Path, worker: str) -> None:
    service, worker_pid = _service_and_worker(tmp_path, worker)
    try:
        stop_process(service, timeout_s=2)
        assert service.poll() is not None, "the service still runs"
        assert _gone(worker_pid), f"the worker {worker_pid} the service started in its own session still runs"
    finally:
        if not _gone(worker_pid):  # not left behind for the rest of the suite
            os.kill(worker_pid, signal.SIGKILL)


def test_stopping_a_service_that_already_exited_is_quiet(tmp_path: Path) -> None:
    service = _spawn("service", [sys.executable, "-c", "pass"], None, tmp_path)
    service.wait(timeout=30)
    stop_process(service, timeout_s=2)  # its pid may be another process's by now: nothing is walked or signalled
    assert service.returncode == 0
