"""The deploy profile survives a lost worker: a killed worker's task is retried on the other worker and the
cycle's published marts equal those of an unkilled run (the scenario: tests/deploy/celery_stack.py).

The scenario runs beside the suite from the moment collection selects this test (tests/support/background.py);
this test, ordered last, checks what it wrote.
"""

from __future__ import annotations

import pytest

from tests.deploy import celery_stack
from tests.support import background

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.background,
    pytest.mark.skipif(celery_stack.available() is not None, reason=str(celery_stack.available())),
]
# Far past what the scenario took on a loaded 2-core machine (two cycles, ~10 minutes): only a hang reaches it.
OUTCOME_TIMEOUT_S = 2400


def test_a_killed_worker_s_task_is_retried_elsewhere_and_the_marts_match() -> None:
    outcome = background.outcome(celery_stack.__name__, OUTCOME_TIMEOUT_S)
    if "error" in outcome:
        pytest.fail(f"the deploy profile's scenario failed:\n{outcome['error']}", pytrace=False)
    assert "skipped" not in outcome, outcome  # this test is skipped first, by the same check
    victim, hosts = outcome["killed"], outcome["tries"]
    assert hosts.get("1") == victim and hosts.get("2") not in (None, victim), \
        f"{celery_stack.KILLED_TASK}'s tries ran on {hosts}; try 1 was to be on the killed {victim}, try 2 on the other worker"
    assert set(outcome["stack_marts"]) == set(celery_stack.MART_CHECKS)
    assert outcome["stack_marts"] == outcome["reference_marts"], \
        f"cycle {celery_stack.KILLED_CYCLE}'s published marts differ from those of its unkilled run"
    assert int(outcome["stack_marts"]["fct_orders"][0]) > 0, "the cycle published no orders"
