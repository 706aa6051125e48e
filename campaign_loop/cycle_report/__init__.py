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

The package's interface is what the pipeline and the UI import from ``campaign_loop.cycle_report``; the steps
live in its modules: ``data`` (what the page shows, read from every source), ``charts``, ``page`` (the HTML)
and ``write`` (the files and their copy in MLflow).
"""

from campaign_loop.cycle_report.write import AIRFLOW_URL_ENV, MLFLOW_URL_ENV, write_report

__all__ = ["AIRFLOW_URL_ENV", "MLFLOW_URL_ENV", "write_report"]
