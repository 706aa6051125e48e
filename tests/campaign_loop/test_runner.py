"""campaign_loop.runner: a failed run is reported with its own reason, never an earlier run's from the same log."""

from __future__ import annotations

from pathlib import Path

from campaign_loop.runner import failure_reason, log_size

EARLIER_RUN = (
    "$ airflow dags test campaign_feedback_loop 2011-01-17T06:00:00+00:00\n"
    "airflow.sdk.exceptions.AirflowFailException: validation gate raw 2011-01-10: FAILED - quarantine_rate\n"
    "DagRun failed\n"
)


def test_a_failure_is_read_from_this_runs_part_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "cycles.log"
    log.write_text(EARLIER_RUN)
    since = log_size(log)
    with log.open("a") as out:  # the next run of the same cycle: the gate passes, train raises
        out.write("$ airflow dags test campaign_feedback_loop 2011-01-17T06:00:00+00:00\n"
                  "Traceback (most recent call last):\n"
                  "mlflow.exceptions.MlflowException: No such artifact: ''\n"
                  "DagRun failed\n")

    assert failure_reason(log, since) == "mlflow.exceptions.MlflowException: No such artifact: ''"
    assert "quarantine_rate" in failure_reason(log)  # the whole log names the earlier run's gate


def test_without_an_exception_the_reason_is_the_tail_of_this_run(tmp_path: Path) -> None:
    log = tmp_path / "cycles.log"
    log.write_text(EARLIER_RUN)
    since = log_size(log)
    with log.open("a") as out:
        out.write("$ airflow dags test campaign_feedback_loop 2011-01-24T06:00:00+00:00\nDagRun failed\n")

    reason = failure_reason(log, since)

    assert reason.startswith("the last lines of the log:") and "2011-01-24" in reason
    assert "2011-01-17" not in reason and "quarantine_rate" not in reason
    assert log_size(tmp_path / "absent.log") == 0
