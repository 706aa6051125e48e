"""Whether MLflow starts its telemetry client in a process outside any test or CI (a retailer's machine).

Inside pytest MLflow switches telemetry off by itself (PYTEST_CURRENT_TEST), so a test has to ask a fresh
process whose environment carries none of the variables MLflow reads as "a test or CI".
"""

from __future__ import annotations

import os
import subprocess
import sys

# What MLflow 3 reads as "a test or CI" (mlflow.telemetry.utils).
CI_MARKERS = ("PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CI", "CIRCLECI", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
              "TF_BUILD", "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION",
              "CLOUD_RUN_EXECUTION", "RUNBOT_HOST_URL", "RUNBOT_BUILD_NAME", "RUNBOT_WORKER_ID")
SWITCHES = ("DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY")
PROBE = "import mlflow; from mlflow.telemetry.client import get_telemetry_client; print(get_telemetry_client())"


def outside_ci() -> dict[str, str]:
    """This process's environment without the CI markers and without any telemetry switch."""
    return {k: v for k, v in os.environ.items() if k not in CI_MARKERS and k not in SWITCHES}


def telemetry_on(env: dict[str, str], before: str = "") -> bool:
    """Whether MLflow, imported in a fresh process with ``env`` after running ``before``, starts a client."""
    probe = subprocess.run([sys.executable, "-c", f"{before}\n{PROBE}"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    return probe.stdout.strip().splitlines()[-1] != "None"
