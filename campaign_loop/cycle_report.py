"""The cycle report: one static HTML page per cycle, ``<home>/reports/<cycle_id>/index.html``.

Everything is rendered here, offline: matplotlib charts inlined as base64 PNG, no CDN, no JavaScript.
The page is keyed by the cycle's lineage key (``cycle_id``, the ISO date the cycle starts) and links to
the other surfaces: the dbt docs and Data Docs (relative links: the UI's static site mirrors the home
directory, so they work from disk and from ``campaign-loop ui``), the Airflow run and the MLflow runs and
model versions (absolute URLs: ``airflow_url``/``mlflow_url`` arguments, else the environment variables
``CAMPAIGN_LOOP_UI_AIRFLOW_URL``/``CAMPAIGN_LOOP_UI_MLFLOW_URL``, else the `campaign-loop ui` defaults).

What the page shows, all read from the published marts, the audit tables, MLflow and the plan exports:
KPI trends (``published.kpi_daily``), the lift of this cycle's campaigns with 95% intervals by action
(``published.kpi_campaign_lift``) and by RFM segment (``published.fct_campaign_sends`` joined to
``published.fct_customer_features``), the models' metrics across cycles (experiment ``campaign-loop``),
the next campaign's plan (``exports/plans/<next cycle_id>.summary.json``) and the validation summary
(``audit.validation_results``).

Lineage note: a run for cycle K trains the models and designs the plan *for* cycle K+1, so the MLflow runs
and model versions it creates carry ``cycle_id`` = K+1's key (and K's as ``lineage.data_cycle_id``); the
report lists both keys.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import logging
import math
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_loop.config import Settings, logical_date_of_cycle
from campaign_loop.report import format_cell

log = logging.getLogger(__name__)

DAG_ID = "campaign_feedback_loop"
EXPERIMENT = "campaign-loop"
REPORT_EXPERIMENT = "campaign-loop-reports"
MODELS = ("churn", "propensity", "clv", "uplift")
AIRFLOW_URL_ENV = "CAMPAIGN_LOOP_UI_AIRFLOW_URL"
MLFLOW_URL_ENV = "CAMPAIGN_LOOP_UI_MLFLOW_URL"
DEFAULT_AIRFLOW_URL = "http://127.0.0.1:8080"
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"
# Relative to <home>/reports/<cycle_id>/index.html.
DBT_DOCS_LINK = "../../dbt_docs/index.html"
DATA_DOCS_LINK = "../../validation/gx/uncommitted/data_docs/local_site/index.html"


def report_path(settings: Settings, cycle: int) -> Path:
    return settings.reports_dir / settings.cycle_key(cycle) / "index.html"


# --- data -----------------------------------------------------------------------------------------------

@dataclass
class ReportData:
    cycle: int
    cycle_id: str
    next_cycle_id: str
    start: str
    end: str
    kpi_daily: Any = None  # DataFrame
    arms: Any = None
    segments: Any = None
    validation: Any = None
    validation_failures: Any = None
    model_runs: list[dict[str, Any]] = field(default_factory=list)
    model_versions: list[dict[str, Any]] = field(default_factory=list)
    experiment_id: str | None = None
    plan: dict[str, Any] | None = None
    airflow_run_id: str | None = None
    airflow_state: str | None = None
    notes: list[str] = field(default_factory=list)
    dev_pii_key: bool = False  # pseudonymised with the public development key (a demo without CAMPAIGN_LOOP_PII_KEY)


def _read_warehouse(settings: Settings, data: ReportData) -> None:
    import duckdb
    import pandas as pd

    if not settings.warehouse_path.exists():
        data.notes.append(f"no warehouse at {settings.warehouse_path}")
        return
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        def query(sql: str, params: Sequence[Any] = ()) -> pd.DataFrame | None:
            try:
                return con.execute(sql, list(params)).df()
            except duckdb.Error as error:
                data.notes.append(f"query failed: {str(error).splitlines()[0]}")
                return None

        data.kpi_daily = query(
            "select order_date, orders, revenue, margin, active_customers, average_order_value "
            "from published.kpi_daily where order_date < ? order by order_date", [data.end])
        # The lift ml.ab inferred from the warehouse's per-arm sums at publication (campaign_loop/lift.py).
        data.arms = query(
            "select campaign_id, arm, n_arm as assigned, mean_arm as conversion_rate, "
            "mean_control as control_conversion_rate, lift as conversion_lift, lift_ci_low as conversion_lift_ci_low, "
            "lift_ci_high as conversion_lift_ci_high, p_value as conversion_lift_p_value, p_value_holm, "
            "seq_ci_low, seq_ci_high, cuped, lift_unadjusted, roi, method, correction, sequential_method "
            "from published.kpi_campaign_lift where metric = 'converted' and campaign_id like ? "
            "order by campaign_id, arm", [f"{data.cycle_id}-%"])
        data.segments = query(
            """
            select coalesce(f.rfm_segment, 'unknown') as segment,
                   count(*) filter (where s.arm = 'treatment') as n_treatment,
                   count(*) filter (where s.arm = 'control') as n_control,
                   count(*) filter (where s.arm = 'treatment' and s.is_converted) as converted_treatment,
                   count(*) filter (where s.arm = 'control' and s.is_converted) as converted_control,
                   avg(cast(s.is_converted as double)) filter (where s.arm = 'treatment') as p_treatment,
                   avg(cast(s.is_converted as double)) filter (where s.arm = 'control') as p_control
            from published.fct_campaign_sends s
            left join published.fct_customer_features f
              on f.customer_id = s.customer_id and f.cycle_id = s.cycle_id
            where s.cycle_id = ? and s.arm in ('treatment', 'control')
            group by 1 order by 1
            """, [data.cycle_id])
        data.validation = query(
            "select stage, severity, count(*) as checks, count(*) filter (where not success) as failed, "
            "max(validation_result_id) as validation_result_id "
            "from audit.validation_results where cycle_id = ? group by all order by stage, severity",
            [data.cycle_id])
        data.validation_failures = query(
            "select stage, severity, \"table\", \"check\", \"column\", observed, threshold "
            "from audit.validation_results where cycle_id = ? and not success order by stage, severity, \"table\"",
            [data.cycle_id])
    if data.segments is not None and len(data.segments):
        data.segments = _with_interval(data.segments)


def _with_interval(frame: Any) -> Any:
    """Difference in conversion (treatment - control) with the 95% interval ml.ab gives an action
    without a pre-period (Newcombe's, which keeps its width when an arm has no conversions)."""
    from ml.ab import two_proportion_test

    frame = frame.copy()
    lifts, lows, highs = [], [], []
    for row in frame.itertuples():
        if not row.n_treatment or not row.n_control:
            lifts.append(math.nan), lows.append(math.nan), highs.append(math.nan)
            continue
        test = two_proportion_test(int(row.converted_control), int(row.n_control), int(row.converted_treatment),
                                   int(row.n_treatment), ci="newcombe")
        lifts.append(test.diff), lows.append(test.ci_low), highs.append(test.ci_high)
    frame["lift"], frame["ci_low"], frame["ci_high"] = lifts, lows, highs
    return frame


def _read_mlflow(settings: Settings, data: ReportData) -> None:
    from ml.tracking import db_path, uri_for

    if not db_path(settings).exists():
        data.notes.append("no MLflow store yet")
        return
    try:
        from mlflow import MlflowClient

        # A DAG task's tracking server (over this home's store) answers in milliseconds; opening the SQLite
        # store directly first builds an SQLAlchemy store and checks its migrations, seconds per report.
        uri = uri_for(settings)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            data.notes.append(f"no MLflow experiment {EXPERIMENT!r} yet")
            return
        data.experiment_id = experiment.experiment_id
        runs = client.search_runs([experiment.experiment_id], max_results=1000, order_by=["attributes.start_time ASC"])
        for run in runs:
            tags = run.data.tags
            data.model_runs.append({
                "run_id": run.info.run_id,
                "model": tags.get("model_name", run.info.run_name or "?"),
                "cycle_id": tags.get("cycle_id", ""),
                "decision": tags.get("gate.decision", ""),
                "metrics": {k: v for k, v in run.data.metrics.items() if not k.startswith("champion.")},
            })
        for name in MODELS:
            try:
                versions = client.search_model_versions(f"name = '{name}'")
            except Exception:  # noqa: BLE001 (a missing model is not an error here)
                continue
            aliases = {}
            with contextlib.suppress(Exception):
                aliases = {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
            for version in versions:
                if version.tags.get("cycle_id") in (data.cycle_id, data.next_cycle_id):
                    data.model_versions.append({
                        "model": name, "version": str(version.version), "cycle_id": version.tags.get("cycle_id"),
                        "aliases": sorted(a for a, v in aliases.items() if v == str(version.version)),
                        "decision": version.tags.get("gate.decision", ""), "run_id": version.run_id,
                    })
    except Exception as error:  # noqa: BLE001 (the report must not fail the cycle over MLflow)
        data.notes.append(f"MLflow not readable: {error}")


def _read_airflow(settings: Settings, data: ReportData, run_id: str | None) -> None:
    """The Airflow run of this cycle: given by the caller (the DAG), else found in the metadata DB by date."""
    if run_id:
        data.airflow_run_id = run_id
        return
    db = settings.airflow_home / "airflow.db"
    if not db.exists():
        return
    logical = logical_date_of_cycle(settings, data.cycle).isoformat()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute(
                "select run_id, state from dag_run where dag_id = ? and substr(logical_date, 1, 10) = ? "
                "order by id desc limit 1", (DAG_ID, logical)).fetchone()
    except sqlite3.Error as error:
        data.notes.append(f"Airflow metadata not readable: {error}")
        return
    if row:
        data.airflow_run_id, data.airflow_state = row


def collect(settings: Settings, cycle: int, airflow_run_id: str | None = None) -> ReportData:
    data = ReportData(
        cycle=cycle,
        cycle_id=settings.cycle_key(cycle),
        next_cycle_id=settings.cycle_key(cycle + 1),
        start=settings.cycle_start(cycle).isoformat(),
        end=settings.cycle_start(cycle + 1).isoformat(),
    )
    from campaign_loop.dbt_duckdb_plugin import MissingPiiKeyError, uses_dev_key

    try:
        data.dev_pii_key = uses_dev_key(settings.demo)
    except MissingPiiKeyError as error:  # the cycle's tasks refused to run; the page says why
        data.notes.append(str(error))
    _read_warehouse(settings, data)
    _read_mlflow(settings, data)
    _read_airflow(settings, data, airflow_run_id)
    plan = settings.plan_path(data.next_cycle_id).with_suffix(".summary.json")
    if plan.exists():
        data.plan = json.loads(plan.read_text())
    else:
        data.notes.append(f"no plan summary at {plan}")
    return data


# --- charts ---------------------------------------------------------------------------------------------

def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(png: str | None, alt: str) -> str:
    if png is None:
        return f"<p class='empty'>{html.escape(alt)}: no data.</p>"
    return f"<img class='chart' alt='{html.escape(alt)}' src='data:image/png;base64,{png}'>"


def chart_kpis(data: ReportData) -> str | None:
    frame = data.kpi_daily
    if frame is None or not len(frame):
        return None
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = frame.copy()
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    metrics = [("revenue", "Revenue"), ("orders", "Orders"), ("active_customers", "Active customers"),
               ("average_order_value", "Average order value")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 5.5), sharex=True)
    start, end = pd.Timestamp(data.start), pd.Timestamp(data.end)
    for ax, (column, title) in zip(axes.flat, metrics, strict=True):
        series = frame.set_index("order_date")[column].astype(float)
        ax.plot(series.index, series.values, color="#9aa5b1", lw=0.8, label="daily")
        ax.plot(series.index, series.rolling(7, min_periods=1).mean().values, color="#1f6feb", lw=1.8,
                label="7-day mean")
        ax.axvspan(start, end, color="#f2cc60", alpha=0.3, label="this cycle")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.suptitle(f"KPI trends up to the end of cycle {data.cycle_id}", fontsize=11)
    return _png(fig)


def _forest(labels: Sequence[str], lifts: Sequence[float], lows: Sequence[float], highs: Sequence[float],
            title: str) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(labels) + 1.3))
    lifts_a, lows_a, highs_a = (np.asarray(v, dtype=float) for v in (lifts, lows, highs))
    err = np.vstack([np.nan_to_num(lifts_a - lows_a), np.nan_to_num(highs_a - lifts_a)])
    colors = ["#1a7f37" if lo > 0 else "#cf222e" if hi < 0 else "#57606a" for lo, hi in zip(lows_a, highs_a, strict=True)]
    for i, color in enumerate(colors):
        ax.errorbar(lifts_a[i], y[i], xerr=err[:, i:i + 1], fmt="none", ecolor=color, elinewidth=1.5, capsize=3)
    ax.scatter(lifts_a, y, c=colors, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:+.0%}"))
    ax.set_xlabel("conversion lift, treatment - holdout (95% interval)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def chart_arms(data: ReportData) -> str | None:
    frame = data.arms
    if frame is None or not len(frame) or frame["conversion_lift"].isna().all():
        return None
    frame = frame.dropna(subset=["conversion_lift"])
    labels = [c.removeprefix(f"{data.cycle_id}-") + ("" if a == "treatment" else f" {a}") + f" (n={int(n)})"
              for c, a, n in zip(frame["campaign_id"], frame["arm"], frame["assigned"], strict=True)]
    return _forest(labels, frame["conversion_lift"], frame["conversion_lift_ci_low"].fillna(frame["conversion_lift"]),
                   frame["conversion_lift_ci_high"].fillna(frame["conversion_lift"]),
                   f"Lift by action (offer x channel), campaigns of cycle {data.cycle_id}")


def _methods(arms: list[dict[str, Any]]) -> str:
    """The methods behind the lift table, named: test and interval, multiplicity, always-valid interval."""
    if not arms:
        return ""
    named = [("Test and 95% interval", "method"), ("Multiple arms", "correction"),
             ("Always-valid interval (seq_ci_*, for a campaign watched daily)", "sequential_method")]
    e = html.escape
    items = "".join(f"<li>{e(label)}: {e('; '.join(sorted({str(r[k]) for r in arms if r.get(k)})))}</li>"
                    for label, k in named)
    return (f"<ul class='methods'>{items}<li>CUPED adjusts conversion by the members' orders in the pre-period; "
            "lift_unadjusted is the same comparison without it.</li></ul>")


def chart_segments(data: ReportData) -> str | None:
    frame = data.segments
    if frame is None or not len(frame) or frame["lift"].isna().all():
        return None
    frame = frame.dropna(subset=["lift"])
    labels = [f"{s} (n={int(t)}+{int(c)})" for s, t, c in zip(frame["segment"], frame["n_treatment"], frame["n_control"], strict=True)]
    return _forest(labels, frame["lift"], frame["ci_low"], frame["ci_high"],
                   f"Lift by RFM segment, campaigns of cycle {data.cycle_id}")


def chart_models(data: ReportData) -> str | None:
    from ml.registry import GATE_RULES

    runs = data.model_runs
    if not runs:
        return None
    import matplotlib.pyplot as plt

    models = [m for m in MODELS if any(r["model"] == m for r in runs)]
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models) + 0.5, 3.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in runs if r["model"] == model]
        for metric in GATE_RULES.get(model, {}):
            points = [(r["cycle_id"], r["metrics"][metric]) for r in mine if metric in r["metrics"]]
            if not points:
                continue
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=metric)
            for x, y, r in zip(xs, ys, sorted(mine, key=lambda r: r["cycle_id"]), strict=False):
                if r.get("decision") == "promote":
                    ax.scatter([x], [y], s=90, facecolors="none", edgecolors="#1a7f37", zorder=3)
        if data.next_cycle_id in [r["cycle_id"] for r in mine]:
            ax.axvline(data.next_cycle_id, color="#f2cc60", lw=6, alpha=0.4)
        ax.set_title(model, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("Model metrics by cycle trained for (green ring: promoted by the gate)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


# --- HTML -----------------------------------------------------------------------------------------------

class _Raw(str):
    """A table cell that is already HTML (a link)."""


def _table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    rows = list(rows)
    if not rows:
        return "<p class='empty'>none</p>"
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    return str(value) if isinstance(value, _Raw) else html.escape(format_cell(value))


def _records(frame: Any) -> list[dict[str, Any]]:
    if frame is None:
        return []
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _link(url: str, text: str) -> str:
    return f"<a href='{html.escape(url, quote=True)}'>{html.escape(text)}</a>"


def _plan_section(plan: dict[str, Any] | None, next_id: str) -> str:
    if plan is None:
        return "<p class='empty'>No plan was designed for the next cycle.</p>"
    expected = plan.get("expected", {})
    holdout = plan.get("holdout", {})
    budget = plan.get("budget", {})
    facts = [
        {"what": "customers targeted", "value": plan.get("customers_targeted")},
        {"what": "treatment / control", "value": f"{plan.get('treatment')} / {plan.get('control')}"},
        {"what": "holdout share", "value": holdout.get("share")},
        {"what": "holdout power (target)", "value": f"{holdout.get('power', 0):.2f} ({holdout.get('target_power')})"
         + (" underpowered" if holdout.get("underpowered") else "")},
        {"what": "budget used / total", "value": f"{budget.get('used', 0):,.2f} / {budget.get('total', 0):,.2f}"},
        {"what": "expected incremental value", "value": expected.get("incremental_value")},
        {"what": "expected ROI", "value": expected.get("roi")},
        {"what": "method", "value": plan.get("method")},
    ]
    by_channel = [{"channel": k, **v} for k, v in plan.get("by_channel", {}).items()]
    by_segment = [{"segment": k, **v} for k, v in plan.get("by_segment", {}).items()]
    return (f"<p>Campaign <b>{html.escape(next_id)}</b> (file <code>exports/plans/{html.escape(next_id)}"
            f".parquet</code>).</p>" + _table(facts)
            + "<div class='row'><div>" + "<h3>By channel</h3>" + _table(by_channel) + "</div><div>"
            + "<h3>By segment</h3>" + _table(by_segment) + "</div></div>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left}
th{background:#f6f8fa}img.chart{max-width:100%;border:1px solid #eee}.empty{color:#57606a;font-style:italic}
nav a{margin-right:1rem}.row{display:flex;gap:2rem;flex-wrap:wrap}.note{color:#9a6700}
.warning{background:#fff1e5;border:2px solid #cf222e;color:#cf222e;padding:.6rem .8rem}
"""


def render(data: ReportData, airflow_url: str, mlflow_url: str) -> str:
    from campaign_loop.dbt_duckdb_plugin import DEV_KEY_NOTICE

    e = html.escape
    airflow_run = (f"{airflow_url}/dags/{DAG_ID}/runs/{urllib.parse.quote(data.airflow_run_id, safe='')}"
                   if data.airflow_run_id else f"{airflow_url}/dags/{DAG_ID}")
    search = urllib.parse.quote(f"tags.cycle_id = '{data.next_cycle_id}'")
    mlflow_runs = (f"{mlflow_url}/#/experiments/{data.experiment_id}?searchFilter={search}"
                   if data.experiment_id else f"{mlflow_url}/#/experiments")
    links = [
        _link(airflow_run, f"Airflow run{' ' + data.airflow_run_id if data.airflow_run_id else 's'}"
              + (f" ({data.airflow_state})" if data.airflow_state else "")),
        _link(mlflow_runs, f"MLflow runs tagged cycle_id={data.next_cycle_id}"),
        _link(f"{mlflow_url}/#/models", "MLflow model registry"),
        _link(DBT_DOCS_LINK, "dbt docs"),
        _link(DATA_DOCS_LINK, "Data Docs (Great Expectations)"),
    ]
    runs_now = [r for r in data.model_runs if r["cycle_id"] == data.next_cycle_id]
    run_rows = [{
        "model": r["model"], "run": _link(f"{mlflow_url}/#/experiments/{data.experiment_id}/runs/{r['run_id']}", r["run_id"][:8]),
        "gate": r["decision"],
        "metrics": ", ".join(f"{k}={v:.4g}" for k, v in sorted(r["metrics"].items())[:6]),
    } for r in runs_now]
    version_rows = [{
        "model": v["model"],
        "version": _link(f"{mlflow_url}/#/models/{v['model']}/versions/{v['version']}", f"v{v['version']}"),
        "cycle_id": v["cycle_id"], "aliases": ", ".join(v["aliases"]), "gate": v["decision"],
    } for v in data.model_versions]
    validation = _records(data.validation)
    failures = _records(data.validation_failures)
    arms = _records(data.arms)
    segments = _records(data.segments)
    passed = all(not (r["severity"] == "critical" and r["failed"]) for r in validation) if validation else None
    verdict = {True: "passed (no critical failure)", False: "FAILED (critical)", None: "no results"}[passed]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Campaign Loop cycle {e(data.cycle_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Cycle {e(data.cycle_id)}</h1>",
        f"<p>Cycle {data.cycle}: {e(data.start)} .. {e(data.end)} (lineage key <code>cycle_id={e(data.cycle_id)}</code>;"
        f" models and plan produced by this run are keyed <code>{e(data.next_cycle_id)}</code>, the cycle they serve)."
        f" Generated {generated}.</p>",
        "<nav>" + "".join(links) + "</nav>",
        (f"<p class='warning' id='dev-pii-key'><b>{e(DEV_KEY_NOTICE)}</b></p>" if data.dev_pii_key else ""),
        "<h2 id='kpis'>KPI trends</h2>", _img(chart_kpis(data), "KPI trends"),
        "<h2 id='lift'>Campaign lift</h2>",
        _img(chart_arms(data), "Lift by action"),
        _table([{k: r[k] for k in ("campaign_id", "arm", "assigned", "conversion_rate", "control_conversion_rate",
                                   "conversion_lift", "conversion_lift_ci_low", "conversion_lift_ci_high",
                                   "conversion_lift_p_value", "p_value_holm", "seq_ci_low", "seq_ci_high", "cuped",
                                   "lift_unadjusted", "roi")} for r in arms]),
        _methods(arms),
        _img(chart_segments(data), "Lift by segment"),
        _table([{k: r[k] for k in ("segment", "n_treatment", "n_control", "p_treatment", "p_control", "lift",
                                   "ci_low", "ci_high")} for r in segments]),
        "<h2 id='models'>Models</h2>", _img(chart_models(data), "Model metrics across cycles"),
        f"<h3>Runs of this cycle (tagged cycle_id={e(data.next_cycle_id)})</h3>",
        _table([{k: _Raw(v) if k == "run" else v for k, v in row.items()} for row in run_rows]),
        "<h3>Model versions</h3>",
        _table([{k: _Raw(v) if k == "version" else v for k, v in row.items()} for row in version_rows]),
        f"<h2 id='plan'>Next campaign ({e(data.next_cycle_id)})</h2>", _plan_section(data.plan, data.next_cycle_id),
        "<h2 id='validation'>Validation</h2>",
        f"<p>Verdict: <b>{e(verdict)}</b>. {_link(DATA_DOCS_LINK, 'Data Docs')}.</p>",
        _table(validation),
        "<h3>Failed checks</h3>", _table(failures[:50]),
    ]
    if data.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{e(n)}</li>" for n in data.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- entry point ----------------------------------------------------------------------------------------

def write_report(
    settings: Settings,
    cycle: int,
    *,
    airflow_run_id: str | None = None,
    airflow_url: str | None = None,
    mlflow_url: str | None = None,
    log_to_mlflow: bool = False,
) -> Path:
    """Write ``<reports_dir>/<cycle_id>/index.html`` for ``cycle`` and return its path.

    ``log_to_mlflow`` also logs the page as an artifact of a run (experiment ``campaign-loop-reports``,
    tag ``cycle_id``) through the tracking server in ``MLFLOW_TRACKING_URI`` (else the local store).
    """
    import matplotlib

    matplotlib.use("Agg")
    airflow_url = (airflow_url or os.environ.get(AIRFLOW_URL_ENV) or DEFAULT_AIRFLOW_URL).rstrip("/")
    mlflow_url = (mlflow_url or os.environ.get(MLFLOW_URL_ENV) or DEFAULT_MLFLOW_URL).rstrip("/")
    data = collect(settings, cycle, airflow_run_id)
    path = report_path(settings, cycle)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, airflow_url, mlflow_url), encoding="utf-8")
    (path.parent / "summary.json").write_text(json.dumps({
        "cycle_id": data.cycle_id, "next_cycle_id": data.next_cycle_id, "airflow_run_id": data.airflow_run_id,
        "model_versions": data.model_versions, "notes": data.notes,
    }, indent=2, default=str))
    if log_to_mlflow:
        try:
            log_report_to_mlflow(settings, data.cycle_id, path)
        except Exception as error:  # noqa: BLE001 (the page exists; MLflow is a copy)
            log.warning("report not logged to MLflow: %s", error)
    return path


def log_report_to_mlflow(settings: Settings, key: str, path: Path) -> str:
    """Log the report folder as artifacts of run ``report-<cycle_id>`` tagged ``cycle_id``; return the run id."""
    import mlflow

    from ml import tracking

    uri = tracking.uri_for(settings)
    if not uri.startswith("http"):
        tracking.configure(settings)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(REPORT_EXPERIMENT)
    experiment_id = (experiment.experiment_id if experiment is not None else
                     tracking.ensure_experiment(REPORT_EXPERIMENT,
                                                None if uri.startswith("http") else tracking.artifact_root(settings)))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"report-{key}",
                          tags={tracking.TAG_CYCLE_ID: key, "kind": "cycle_report"}) as run:
        mlflow.log_artifacts(str(path.parent), artifact_path="report")
        return run.info.run_id
