"""DAG integrity: the DAG folder imports cleanly, cheaply, and the loop's DAG is wired as designed."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from campaign_loop.config import Settings
    from campaign_loop.dbt import parse_project

    parse_project(Settings())  # the manifest Cosmos renders the dbt tasks from
    # Airflow 3.3 moved DagBag here and dropped include_examples.
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert "campaign_feedback_loop" in dagbag.dags


def test_loop_dag_is_weekly_single_run_owned_and_retried(dagbag) -> None:
    dag = dagbag.dags["campaign_feedback_loop"]
    assert dag.max_active_runs == 1
    assert "campaign-loop" in dag.tags
    assert dag.doc_md and "Campaign feedback loop" in dag.doc_md
    for t in dag.tasks:
        assert t.owner == "campaign-loop"
        assert t.retries >= 1


def test_loop_dag_audits_before_it_publishes_learns_and_decides(dagbag) -> None:
    dag = dagbag.dags["campaign_feedback_loop"]
    assert dag.get_task("simulate").downstream_task_ids == {"ingest"}
    assert dag.get_task("ingest").downstream_task_ids == {"validate_raw"}
    dbt_tasks = {t for t in dag.task_ids if t.startswith("dbt.")}
    assert "dbt.dbt_producer_watcher" in dbt_tasks
    assert "dbt.dim_customers.run" in dbt_tasks, "one watcher task per model"
    assert dag.get_task("validate_raw").downstream_task_ids <= dbt_tasks
    assert dag.get_task("validate_marts").upstream_task_ids <= dbt_tasks
    # Everything that changes what users and the next campaign see sits behind the marts audit.
    behind_audit = dag.get_task("validate_marts").get_flat_relative_ids(upstream=False)
    assert {"publish", "train", "media_mix", "design", "measure", "report"} <= behind_audit
    assert dag.get_task("design").upstream_task_ids == {"train", "media_mix"}
    assert dag.get_task("media_mix").upstream_task_ids == {"publish"}
    # Raw PII retention writes the warehouse: last, when no other task of the cycle reads it.
    assert dag.get_task("retain_raw_pii").upstream_task_ids == {"report"}
    assert not dag.get_task("retain_raw_pii").downstream_task_ids


@pytest.mark.parametrize("runner", ["dags_test", "scheduler"])
def test_every_runner_runs_the_projects_data_tests_before_the_marts_audit(
        runner: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendered with test behaviour NONE, Cosmos drops the tests from the producer's `dbt build` and no data test
    ran in an `airflow dags test` cycle: the tests run either in the producer's build or in a task of their own."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CAMPAIGN_LOOP_AIRFLOW_RUNNER", runner)
    dag = DagBag(dag_folder=str(DAGS)).dags["campaign_feedback_loop"]
    flags = list(dag.get_task("dbt.dbt_producer_watcher").dbt_cmd_flags or [])
    kinds = {flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == "--resource-type"}
    if kinds and "test" not in kinds:  # the producer builds the models only: a `dbt test` task must follow them
        [tests] = [t for t in dag.tasks if t.task_id.startswith("dbt.") and getattr(t, "base_cmd", None) == ["test"]]
        assert tests.selector == "cycle" and not tests.select and not tests.exclude, (runner, tests.task_id)
        assert "validate_marts" in tests.downstream_task_ids
        # By command, not by id: Cosmos names a model's task `dbt.<model>_run` here, `dbt.<model>.run` under
        # the scheduler.
        models = {t.task_id for t in dag.tasks if getattr(t, "base_cmd", None) == ["run"]}
        assert len(models) >= 50, (runner, len(models))
        assert models <= tests.get_flat_relative_ids(upstream=True), "the tests run after every model"
    else:
        assert any(t.task_id.endswith(".test") for t in dag.tasks), runner


def test_params_validate_marketer_input(dagbag) -> None:
    dag = dagbag.dags["campaign_feedback_loop"]
    from airflow.sdk.exceptions import ParamValidationError

    from campaign_loop.config import Settings
    from campaign_loop.pipeline import RUN_PARAMS

    # One name for one knob: each trigger-form field is the Settings key the run reads, with its default.
    assert set(dag.params.keys()) == set(RUN_PARAMS)
    defaults = Settings()
    for key in RUN_PARAMS:
        value = getattr(defaults, key)
        assert dag.params[key] == (list(value) if isinstance(value, tuple) else value), key
    assert dag.params.get_param("holdout_share").resolve(0.2) == 0.2
    with pytest.raises(ParamValidationError):
        dag.params.get_param("exploration").resolve("greedy")
    with pytest.raises(ParamValidationError):
        dag.params.get_param("epsilon").resolve(1.0)  # as Settings: below 1
    with pytest.raises(ParamValidationError):
        dag.params.get_param("holdout_share").resolve(0.9)
    with pytest.raises(ParamValidationError):
        dag.params.get_param("customers").resolve(10)


def test_dag_file_imports_nothing_heavy_at_parse_time() -> None:
    # Parsing happens every few seconds in the dag-processor: heavy libraries load inside tasks.
    import subprocess
    import sys

    code = (
        "import runpy; "
        f"runpy.run_path({str(DAGS / 'campaign_feedback_loop.py')!r}); "
        f"runpy.run_path({str(DAGS / 'trigger_journeys.py')!r}); "
        "import sys; heavy=[m for m in ('pandas','duckdb','sklearn','mlflow','dbt') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_report_task_carries_the_cycle_report_link(dagbag) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from campaign_loop.airflow_links import CycleReportLink

    dag = dagbag.dags["campaign_feedback_loop"]
    links = {type(link) for link in dag.get_task("report").operator_extra_links}
    assert CycleReportLink in links
    assert not any(CycleReportLink in {type(x) for x in t.operator_extra_links}
                   for t in dag.tasks if t.task_id != "report"), "only the report task has a report to open"
    # What the api-server sees: the serialized DAG names the link and the XCom key the worker stores it under,
    # and the deserialized task offers the button.
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert restored.get_task("report").extra_links == [CycleReportLink.name]
    assert {link.xcom_key for link in restored.get_task("report").operator_extra_links} == {CycleReportLink().xcom_key}


def test_cycle_report_link_reads_the_url_the_report_task_returned(monkeypatch) -> None:
    from airflow.sdk.execution_time import xcom

    from campaign_loop.airflow_links import REPORT_URL_KEY, CycleReportLink
    from campaign_loop.ui import SITE_URL_ENV, report_url

    monkeypatch.setenv(SITE_URL_ENV, "http://127.0.0.1:18090/")
    url = report_url("2026-01-12")
    assert url == "http://127.0.0.1:18090/reports/2026-01-12/index.html"
    returned = {"cycle_id": "2026-01-12", REPORT_URL_KEY: url}
    asked: list[str] = []

    def get_value(*, ti_key: object, key: str) -> object:
        asked.append(key)
        return returned

    monkeypatch.setattr(xcom.XCom, "get_value", get_value)
    assert CycleReportLink().get_link(None, ti_key=object()) == url  # type: ignore[arg-type]
    assert asked == ["return_value"]
    returned = None
    assert CycleReportLink().get_link(None, ti_key=object()) == ""  # type: ignore[arg-type]


def test_the_calendar_comes_from_the_homes_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retailer's start_date (in its home's settings file) decides the DAG's first run: none is hard-coded."""
    from datetime import UTC, datetime

    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "campaign-loop.env").write_text("CAMPAIGN_LOOP_START_DATE=2010-08-30\n")
    monkeypatch.setenv("CAMPAIGN_LOOP_HOME", str(tmp_path))
    monkeypatch.delenv("CAMPAIGN_LOOP_START_DATE", raising=False)
    dag = DagBag(dag_folder=str(DAGS)).dags["campaign_feedback_loop"]
    assert dag.start_date == datetime(2010, 9, 6, 6, tzinfo=UTC)  # cycle 1's start: the run after cycle 0


def test_trigger_journeys_run_every_quarter_hour_and_on_each_new_weekly_plan(dagbag) -> None:
    from airflow.timetables.assets import AssetOrTimeSchedule

    from campaign_loop.trigger_journeys import PLAN_ASSET_URI

    dag = dagbag.dags["trigger_journeys"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.max_active_runs == 1 and "campaign-loop" in dag.tags
    assert dag.get_task("plan").downstream_task_ids == {"measure"}
    assert all(t.owner == "campaign-loop" and t.retries >= 1 for t in dag.tasks)
    weekly = dagbag.dags["campaign_feedback_loop"].get_task("design")
    assert [o.uri for o in weekly.outlets] == [PLAN_ASSET_URI]
