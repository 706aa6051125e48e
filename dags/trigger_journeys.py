"""
### Trigger journeys

Cart and browse abandonment, post-purchase cross-sell, win-back at predicted churn and membership
anniversaries (`campaign_loop.actions.TRIGGERS`, switched on by the `triggers` setting), beside the weekly
campaign and under its consent and contact cap. Runs every 15 minutes, and at once when the weekly
`campaign_feedback_loop` publishes a new plan (the asset `campaign_loop://exports/plans`): each run
evaluates the rules at its own moment, so a message goes out a rule's delay after the event, as soon as the
event is in the published warehouse.

**Tasks**
1. `plan`: the sends due now, each trigger with its own randomised holdout (a fixed share per member and
   trigger, `trigger_holdout_share`), exported to `exports/triggers/<cycle_id>/` and the senders' files
   `exports/send/<cycle_id>/triggers-<time>/<channel>.csv`.
2. `measure`: every trigger's lift against its holdout, pooled over its cycles from the published
   `kpi_campaign_arms` (the sends land in `raw.campaign_sends` as `trigger-<name>-<cycle_id>` campaigns),
   and the delay from each event to its send.

How a marketer configures a trigger: docs/decisioning.md, "Trigger journeys".
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from campaign_loop import trigger_journeys as steps
from campaign_loop.config import load_settings
from campaign_loop.trigger_journeys import PLAN_ASSET_URI

_defaults = load_settings()  # environment and the home's settings file: no database, no network


def _moment() -> datetime:
    """The run's moment, naive UTC: its logical date, or when it was queued for a run the asset triggered."""
    context = get_current_context()
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(UTC).replace(tzinfo=None)


@dag(
    dag_id="trigger_journeys",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
                                 assets=[Asset(PLAN_ASSET_URI)]),
    start_date=pendulum.instance(datetime.combine(_defaults.cycle_start(1), time(), tzinfo=UTC)),
    catchup=False,
    max_active_runs=1,
    tags=["campaign-loop", "marketing", "triggers"],
    default_args={"owner": "campaign-loop", "retries": 1, "retry_delay": pendulum.duration(minutes=1)},
)
def trigger_journeys() -> None:
    @task
    def plan() -> dict[str, Any]:
        return steps.plan(load_settings(), _moment())

    @task
    def measure(planned: dict[str, Any]) -> dict[str, Any]:
        return steps.measure(load_settings())

    measure(plan())


trigger_journeys()
