"""The cycle report's HTML: one static page of sections, tables and inlined charts, every value escaped."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from campaign_loop.cycle_report.charts import chart_arms, chart_kpis, chart_models, chart_segments
from campaign_loop.cycle_report.data import DAG_ID, ReportData
from campaign_loop.dbt_duckdb_plugin import DEV_KEY_NOTICE
from campaign_loop.report import format_cell

# Relative to <home>/reports/<cycle_id>/index.html.
DBT_DOCS_LINK = "../../dbt_docs/index.html"
DATA_DOCS_LINK = "../../validation/gx/uncommitted/data_docs/local_site/index.html"


def _img(png: str | None, alt: str) -> str:
    if png is None:
        return f"<p class='empty'>{html.escape(alt)}: no data.</p>"
    return f"<img class='chart' alt='{html.escape(alt)}' src='data:image/png;base64,{png}'>"

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
        {"what": "send hours (local, treatment)",
         "value": ", ".join(f"{int(h):02d}h {n}" for h, n in plan.get("send_hours", {}).items()) or None},
    ]
    by_channel = [{"channel": k, **v} for k, v in plan.get("by_channel", {}).items()]
    by_segment = [{"segment": k, **v} for k, v in plan.get("by_segment", {}).items()]
    # Plans written before issue 27 carry no tiers.
    by_tier = [{"value tier": k, **v} for k, v in budget.get("by_tier", {}).items()]
    horizon = plan.get("value_horizon_weeks", 0)
    return (f"<p>Campaign <b>{html.escape(next_id)}</b> (file <code>exports/plans/{html.escape(next_id)}"
            f".parquet</code>).</p>" + _table(facts)
            + "<div class='row'><div>" + "<h3>By channel</h3>" + _table(by_channel) + "</div><div>"
            + "<h3>By segment</h3>" + _table(by_segment) + "</div></div>"
            + f"<h3>Budget by value tier (value horizon {html.escape(str(horizon))} weeks)</h3>" + _table(by_tier)
            + _policy_choice_section(plan.get("policy_choice")))


def _policy_choice_section(choice: dict[str, Any] | None) -> str:
    """Which candidate designed the plan and the off-policy estimates behind it; nothing when policy_choice is off."""
    if not choice:
        return ""
    rows = [{"candidate": name, "treated": choice["treated"].get(name), "estimate": e["value"], "low": e["low"],
             "high": e["high"], "minus design": (choice["versus_incumbent"].get(name) or {}).get("value"),
             "minus design low": (choice["versus_incumbent"].get(name) or {}).get("low"),
             "minus design high": (choice["versus_incumbent"].get(name) or {}).get("high")}
            for name, e in choice["estimates"].items()]
    cycles = ", ".join(f"{c} ({m})" for c, m in choice["cycles"].items()) or "none"
    return (f"<h3>Policy choice: {html.escape(str(choice['chosen']))}</h3><p>{html.escape(str(choice['reason']))}. "
            f"Off-policy estimates of incremental profit on the logged cycles {html.escape(cycles)}, 95 % "
            "intervals; a challenger replaces the design only when its paired difference is above zero.</p>"
            + _table(rows))


def _attribution_section(attribution: Any) -> str:
    rows = _records(attribution)
    if not rows:
        return "<p class='empty'>No marketing journeys to attribute yet.</p>"
    return ("<p>Conversions each attribution credits a channel (journeys of touches in a cycle, "
            "<code>fct_marketing_journeys</code>; Markov: removal effects of a first-order chain) beside the "
            "conversions the channel's randomised holdouts measured it to cause, with their 95 % interval. "
            "Attribution counts who was on the path; only the holdouts count what the contact caused.</p>"
            + _table(rows))


def _media_mix_section(media: dict[str, Any] | None) -> str:
    if media is None:
        return "<p class='empty'>The media mix model did not run (setting <code>media_mix</code> is off).</p>"
    diagnostics = media.get("diagnostics", {})
    channels = [{k: row.get(k) for k in ("channel", "spend", "contribution", "contribution_low", "contribution_high",
                                          "roas", "roas_low", "roas_high", "adstock_alpha", "saturation_lam",
                                          "saturation_beta")} for row in media.get("channels", [])]
    return (f"<p>Model <code>mmm</code> v{html.escape(str(media.get('version')))}: {html.escape(str(media.get('status')))}"
            f" ({html.escape(str(media.get('reason')))}); {diagnostics.get('days', 0):.0f} days, worst r-hat "
            f"{diagnostics.get('max_r_hat', float('nan')):.3f}, {diagnostics.get('fit_seconds', 0):.0f} s of sampling. "
            "ROAS and contribution with 94 % intervals; beta is the most revenue a day the channel can bring.</p>"
            + _table(channels) + "<h3>Budgets of the same total (per day)</h3>" + _table(media.get("budgets", [])))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left}
th{background:#f6f8fa}img.chart{max-width:100%;border:1px solid #eee}.empty{color:#57606a;font-style:italic}
nav a{margin-right:1rem}.row{display:flex;gap:2rem;flex-wrap:wrap}.note{color:#9a6700}
.warning{background:#fff1e5;border:2px solid #cf222e;color:#cf222e;padding:.6rem .8rem}
"""


def render(data: ReportData, airflow_url: str, mlflow_url: str) -> str:
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
        "<h2 id='attribution'>Attribution against the holdouts</h2>", _attribution_section(data.attribution),
        "<h2 id='triggers'>Trigger journeys</h2>",
        "<p>Each trigger's sends of this cycle against its own randomised holdout (DAG <code>trigger_journeys</code>; "
        "its <code>measure</code> task pools every cycle); <code>delay_hours_median</code> and <code>_p90</code>: hours "
        "from the event to the landed send.</p>",
        _table(_records(data.triggers)),
        "<h2 id='models'>Models</h2>", _img(chart_models(data), "Model metrics across cycles"),
        f"<h3>Runs of this cycle (tagged cycle_id={e(data.next_cycle_id)})</h3>",
        _table([{k: _Raw(v) if k == "run" else v for k, v in row.items()} for row in run_rows]),
        "<h3>Model versions</h3>",
        _table([{k: _Raw(v) if k == "version" else v for k, v in row.items()} for row in version_rows]),
        "<h2 id='media-mix'>Media mix</h2>", _media_mix_section(data.media_mix),
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
