"""Waiting for a local HTTP service to answer: the MLflow server (``ml.tracking``) and Airflow (``ui``).

A base module of its own because both layers need it: in ``ui`` it made ``ml.tracking`` import the app,
closing an import cycle through the pipeline.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request


def wait_for_http(url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None,
                  name: str = "service") -> None:
    """Until ``url`` answers with any HTTP status below 500; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{name} at {url} not ready after {timeout_s:.0f}s")
