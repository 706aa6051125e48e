"""The "Cycle report" button of the DAG's `report` task: from an Airflow run to the page of its cycle.

Airflow 3 evaluates an operator's extra links once, in the worker when the task finishes, and stores each
URL in XCom under the link's ``xcom_key``; the serialized DAG carries only ``{name: xcom_key}``, and the
api-server answers the UI from XCom with a generic link of that name and key
(``airflow.serialization.serialized_objects``, Airflow 3.3). So no plugin registers this class: a plugin's
``operator_extra_links`` entry bound to the task's operator class would take precedence over the stored
URL and run ``get_link`` in the api-server, which has no task context to read the cycle from.

Imported at DAG parse time: Airflow's SDK only, nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from campaign_loop.pipeline import REPORT_URL_KEY

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class CycleReportLink(BaseOperatorLink):
    """The URL the `report` task returned, i.e. where `campaign-loop ui` serves that cycle's report."""

    name = "Cycle report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        page = XCom.get_value(ti_key=ti_key, key="return_value")
        return str(page.get(REPORT_URL_KEY) or "") if isinstance(page, dict) else ""


def with_report_link(output: Any) -> Any:
    """Give the task behind a TaskFlow output the "Cycle report" button; returns the output for chaining.

    Set on the operator instance because ``@task`` builds its operator class itself and does not take
    ``operator_extra_links``; the worker and the serializer both read the instance's attribute.
    """
    operator = output.operator
    operator.operator_extra_links = (*operator.operator_extra_links, CycleReportLink())
    return output
