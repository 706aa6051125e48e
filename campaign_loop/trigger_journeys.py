"""The trigger journeys' steps, as the DAG ``trigger_journeys`` and the tests call them.

``plan`` evaluates the enabled rules (the ``triggers`` setting) against the published warehouse at one moment
and exports the sends due then; ``measure`` measures every trigger against its own holdout from the published
``kpi_campaign_arms`` and reports the delay from each event to its send. Both return a small JSON-able summary.

Both DAG files load this module when they are parsed, so the steps import the decision and warehouse code
inside themselves.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from campaign_loop.actions import TRIGGER_PREFIX, TRIGGERS, cycle_of_trigger_campaign
from campaign_loop.config import CHANNELS, Settings

PUBLISHED = "published"  # expectations.publish.PUBLISHED_SCHEMA, the audited marts
TRIGGER_CAMPAIGNS = (("campaign_id", "like", f"{TRIGGER_PREFIX}%"),)  # the triggers' rows, kept by the engine
# The asset the weekly DAG's design updates and the trigger journeys' DAG is scheduled on.
PLAN_ASSET_URI = "campaign_loop://exports/plans"


def cycle_of(settings: Settings, as_of: datetime) -> int:
    """The cycle a moment falls in (its sends belong to that cycle's campaigns)."""
    return (as_of.date() - settings.start_date).days // settings.cycle_days


def plan(settings: Settings, as_of: datetime, schema: str = PUBLISHED) -> dict[str, Any]:
    """The sends the enabled trigger journeys owe at ``as_of`` (naive UTC), both arms, exported for the senders and
    the next simulated period; a no-op summary when no trigger is enabled."""
    from ml.export import write_trigger_plan
    from ml.triggers import TriggerConfig, choose_sends

    if not settings.triggers:
        return {"as_of": as_of.isoformat(), "note": "no trigger enabled (the triggers setting is empty)"}
    cycle = cycle_of(settings, as_of)
    if settings.demo and (late := _beyond_the_world(settings, cycle)):
        return {"as_of": as_of.isoformat(), "note": late}
    cycle_id = settings.cycle_key(cycle)
    config = TriggerConfig(
        as_of=as_of, cycle_id=cycle_id, rules=tuple(r for n, r in TRIGGERS.items() if n in settings.triggers),
        channels=settings.channels, contact_cap=settings.contact_cap,
        holdout_share=settings.trigger_holdout_share, seed=settings.seed,
    )
    inputs = _inputs(settings, schema, cycle_id, as_of)
    chosen = choose_sends(inputs["candidates"], inputs["reach"], config, p_churn=inputs["p_churn"],
                          history=inputs["history"], weekly_members=inputs["weekly_members"])
    chosen.summary["churn_scores_of"] = inputs["churn_scores_of"]
    paths = write_trigger_plan(chosen, settings)
    return {"as_of": as_of.isoformat(), "cycle_id": cycle_id, "sends": len(chosen.rows),
            "funnel": chosen.summary["funnel"], "notes": chosen.summary["notes"],
            "files": {k: str(v) for k, v in paths.items()}}


def _beyond_the_world(settings: Settings, cycle: int) -> str | None:
    """Why a demo run plans nothing: the simulated world will never live through its cycle (e.g. a scheduled
    run at today's date, months past the simulated weeks); None when it will."""
    from sim.world import WorldStore

    last = WorldStore(settings).last_cycle()
    if last is not None and cycle == last + 1:
        return None
    return (f"cycle {cycle} is not the simulated world's next one ({'none lived' if last is None else f'it lived through 0..{last}'}"
            "): nothing planned")


def _inputs(settings: Settings, schema: str, cycle_id: str, as_of: datetime) -> dict[str, Any]:
    """What the rules read: candidates, reach, churn scores, earlier trigger assignments, the weekly plan."""
    import pandas as pd

    from ml import features
    from ml.export import read_trigger_plans
    from ml.triggers import history_from_sends

    candidates = features.read(settings.warehouse_path, "fct_trigger_candidates", None, schema, [("event_at", "<=", as_of)])
    sends = features.read(settings.warehouse_path, "fct_campaign_sends",
                          ["campaign_id", "member_id", "arm", "sent_at", "starts_at"], schema, TRIGGER_CAMPAIGNS)
    sends = pd.DataFrame({"campaign_id": sends["campaign_id"], "member_id": sends["member_id"], "arm": sends["arm"],
                          "assigned_at": sends["sent_at"].fillna(sends["starts_at"])})
    reach_columns = ["member_id", *(f"{k}_{c}" for k in ("consent", "bounced") for c in CHANNELS),
                     "unsubscribed_recently", "contacts_last_30d"]
    reach = features.scoring_frame(settings.warehouse_path, schema=schema)
    reach = reach.loc[reach["member_id"].notna(), reach_columns]
    p_churn, churn_scores_of = churn_scores(settings, cycle_id)
    # This cycle's earlier runs: their sends have not landed in the warehouse yet, but count for caps.
    earlier = read_trigger_plans(settings, cycle_id, before=as_of.strftime("%Y%m%dT%H%M%S"))
    pending = pd.DataFrame({"member_id": earlier["member_id"].astype(str), "trigger": earlier["trigger"].astype(str),
                            "arm": earlier["arm"].astype(str), "assigned_at": pd.to_datetime(earlier["send_at"]),
                            "landed": False})
    history = pd.concat([history_from_sends(sends), pending], ignore_index=True)
    weekly_path = settings.plan_path(cycle_id)
    weekly = set(pd.read_parquet(weekly_path, columns=["member_id"])["member_id"].astype(str)) if weekly_path.exists() else set()
    return {"candidates": candidates, "reach": reach, "p_churn": p_churn, "churn_scores_of": churn_scores_of,
            "history": history, "weekly_members": weekly}


def churn_scores(settings: Settings, cycle_id: str) -> tuple[Any, str | None]:
    """The churn model's ``p_churn`` per customer ID from the newest scores export at or before ``cycle_id`` that
    holds any, and that export's cycle; (None, None) when none does.

    The cycle's own export is written by the weekly run's ``design``, hours into the cycle: the quarter-hourly
    runs before it would otherwise find no churn score and send no win-back, so they read last week's. A cycle
    scored without a churn champion (NaN) falls back the same way. Before the churn model's first champion
    (its 28-day label is complete four weekly cycles after the first feature date) no export holds any.
    """
    import pandas as pd

    folder = settings.exports_dir / "scores"
    for path in sorted(folder.glob("*.parquet"), reverse=True) if folder.exists() else []:
        if path.stem > cycle_id:
            continue
        scores = pd.read_parquet(path, columns=["customer_id", "p_churn"]).dropna(subset=["p_churn"])
        if len(scores):
            return scores.set_index("customer_id")["p_churn"], path.stem
    return None, None


def plan_at_cycle_start(settings: Settings, cycle: int, schema: str = PUBLISHED) -> dict[str, Any]:
    """``plan`` at the first moment of ``cycle``: what a weekly batch allows (its events arrive at the week's end)."""
    return plan(settings, datetime.combine(settings.cycle_start(cycle), time()), schema)


def measure(settings: Settings, schema: str = PUBLISHED) -> dict[str, Any]:
    """Every trigger's lift against its own holdout, pooled over its cycles, and its measured delay from event to
    send (hours: the landed ``sent_at`` minus the event the run planned it for)."""
    import pandas as pd

    from campaign_loop.lift import campaign_lift
    from ml import features
    from ml.triggers import trigger_arms

    arms = features.read(settings.warehouse_path, "kpi_campaign_arms", None, schema, TRIGGER_CAMPAIGNS)
    sent = features.read(settings.warehouse_path, "fct_campaign_sends", ["campaign_id", "member_id", "sent_at"],
                         schema, TRIGGER_CAMPAIGNS)
    sent = sent[sent["sent_at"].notna()].reset_index(drop=True)
    lift = campaign_lift(trigger_arms(arms), correction=settings.correction)
    converted = lift[lift["metric"] == "converted"]
    out: dict[str, Any] = {"triggers": {}}
    for row in converted.itertuples():
        out["triggers"][row.campaign_id] = {
            "n_treatment": int(row.n_arm), "n_control": int(row.n_control),
            "conversion_treatment": float(row.mean_arm), "conversion_control": float(row.mean_control),
            "lift": float(row.lift),
            "lift_ci_low": float(row.lift_ci_low), "lift_ci_high": float(row.lift_ci_high),
            "p_value": float(row.p_value), "roi": None if pd.isna(row.roi) else float(row.roi)}
    for trigger, hours in delays(settings, sent).items():
        out["triggers"].setdefault(trigger, {})["delay_hours"] = hours
    return out


def delays(settings: Settings, sent: Any, by: str = "trigger") -> dict[str, dict[str, float]]:
    """Per trigger (or per ``campaign_id``), the median and 90th percentile of hours from the event to the landed
    send: ``sent`` (campaign_id, member_id, sent_at from ``fct_campaign_sends``) joined with the runs' plans that
    name each send's event."""
    import pandas as pd

    from ml.export import read_trigger_plans

    cycles = sorted({cycle_of_trigger_campaign(c) for c in sent["campaign_id"]} - {None})
    planned = pd.concat([read_trigger_plans(settings, c) for c in cycles], ignore_index=True) if cycles else None
    if planned is None or planned.empty:
        return {}
    joined = sent.merge(planned[["campaign_id", "member_id", "trigger", "event_at"]], on=["campaign_id", "member_id"])
    hours = (pd.to_datetime(joined["sent_at"]) - pd.to_datetime(joined["event_at"])).dt.total_seconds() / 3600
    return {t: {"median": float(h.median()), "p90": float(h.quantile(0.9))} for t, h in hours.groupby(joined[by])}
