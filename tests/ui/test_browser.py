"""The three surfaces, seen through a real browser: Airflow, dbt docs, MLflow, and the cycle report.

A tiny world runs the real DAG (2 cycles through `airflow dags test`), `campaign_loop.ui.start_services`
starts every service on 127.0.0.1, and a headless system Chromium looks at each one. Screenshots go to
`test-artifacts/ui/`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(900)]

DAG_ID = "campaign_feedback_loop"


def wait_for(driver, predicate: Callable[[object], object], timeout: float = 60, what: str = "condition"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(predicate, message=f"timed out waiting for {what}")


def page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except Exception:  # noqa: BLE001 (page swapping under us)
        return ""


def shot(driver, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def login_airflow(driver, services) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    password = services.airflow_password()
    assert password, f"no generated password in {services.password_file}"
    driver.get(f"{services.airflow_url}/")
    field = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input[name='username']"),
                     what="Airflow login form")[0]
    field.send_keys("admin")
    secret = driver.find_element(By.CSS_SELECTOR, "input[name='password']")
    secret.send_keys(password)
    secret.send_keys(Keys.ENTER)
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "input[name='password']"), what="login")


def test_airflow_shows_the_dag_with_a_successful_run(browser, services, artifacts) -> None:
    login_airflow(browser, services)
    browser.get(f"{services.airflow_url}/dags/{DAG_ID}/runs")
    wait_for(browser, lambda d: DAG_ID in page_text(d) and "success" in page_text(d).lower(), 90,
             "the DAG's runs with a success")
    time.sleep(1)
    shot(browser, artifacts, "airflow-dag-runs")
    browser.get(f"{services.airflow_url}/dags/{DAG_ID}")
    wait_for(browser, lambda d: DAG_ID in page_text(d), 60, "the DAG page")
    time.sleep(2)
    shot(browser, artifacts, "airflow-dag")


def test_dbt_docs_show_the_customer_360(browser, services, artifacts) -> None:
    browser.get(f"{services.dbt_docs_url}#!/model/model.campaign_loop.dim_customers")
    wait_for(browser, lambda d: "dim_customers" in page_text(d) and "customer_id" in page_text(d), 60,
             "dim_customers with its columns")
    time.sleep(1)
    shot(browser, artifacts, "dbt-docs-dim-customers")


def champion_to_show(mlflow_url: str) -> str | None:
    """`uplift` if it has a champion, else the first registered model that has one (noted), else None."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    models = {m.name: m.aliases for m in client.search_registered_models()}
    if "champion" in models.get("uplift", {}):
        return "uplift"
    fallback = next((name for name, aliases in sorted(models.items()) if "champion" in aliases), None)
    warnings.warn(f"uplift has no champion in this world (registered: { {n: sorted(a) for n, a in models.items()} }); "
                  f"showing {fallback}", stacklevel=2)
    return fallback


def test_mlflow_registry_shows_a_champion_alias(browser, services, artifacts) -> None:
    model = champion_to_show(services.mlflow_url)
    browser.get(f"{services.mlflow_url}/#/models")
    wait_for(browser, lambda d: "Registered Models" in page_text(d) or "registered models" in page_text(d).lower(),
             90, "the MLflow model registry")
    time.sleep(1)
    shot(browser, artifacts, "mlflow-registry")
    assert model is not None, "no registered model has a champion alias in this world"
    browser.get(f"{services.mlflow_url}/#/models/{model}")
    wait_for(browser, lambda d: model in page_text(d) and "champion" in page_text(d), 90,
             f"registered model {model} with its champion alias")
    time.sleep(1)
    shot(browser, artifacts, f"mlflow-{model}-champion")


def test_cycle_report_shows_its_charts(browser, services, world, artifacts) -> None:
    from selenium.webdriver.common.by import By

    from campaign_loop.pipeline import cycle_key

    key = cycle_key(world, world.cycles - 1)
    browser.get(services.report_url(key))
    wait_for(browser, lambda d: f"Cycle {key}" in page_text(d), 30, "the report")
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart, svg")
    assert len(charts) >= 4, page_text(browser)[:2000]
    loaded = browser.execute_script(
        "return Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
    assert loaded >= 4
    for link in ("dbt docs", "Data Docs (Great Expectations)", "MLflow model registry"):
        assert browser.find_elements(By.LINK_TEXT, link), link
    assert any(a.text.startswith("Airflow run manual__") or a.text.startswith("Airflow run ")
               for a in browser.find_elements(By.TAG_NAME, "a"))
    browser.set_window_size(1400, 4200)
    shot(browser, artifacts, f"report-{key}")
    browser.set_window_size(1400, 1000)
    # The report's relative links resolve on the same server.
    browser.find_element(By.LINK_TEXT, "dbt docs").click()
    wait_for(browser, lambda d: "/dbt_docs/" in d.current_url, 30, "dbt docs from the report")
