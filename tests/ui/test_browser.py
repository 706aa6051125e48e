"""The three surfaces, seen through a real browser: Airflow, dbt docs, MLflow, and the cycle report.

A tiny world runs the real DAG (2 cycles through `airflow dags test`), `campaign_loop.ui.start_services`
starts every service on 127.0.0.1, and a headless system Chromium looks at each one. Screenshots go to
`test-artifacts/ui/`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from campaign_loop.ui import AIRFLOW_USER

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
    if driver.get_cookie("_token"):  # logged in by an earlier test of this module (Airflow's JWT cookie)
        return
    field = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input[name='username']"),
                     what="Airflow login form")[0]
    field.send_keys(AIRFLOW_USER)
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


def airflow_api(services, path: str) -> dict:
    """GET on Airflow's REST API with a JWT from SimpleAuthManager's token endpoint."""
    import json
    import urllib.request

    login = urllib.request.Request(
        f"{services.airflow_url}/auth/token", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": AIRFLOW_USER, "password": services.airflow_password()}).encode())
    with urllib.request.urlopen(login, timeout=30) as response:
        token = json.load(response)["access_token"]
    request = urllib.request.Request(f"{services.airflow_url}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_airflow_report_task_links_to_its_cycle_report(browser, services, world, artifacts) -> None:
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    from campaign_loop.airflow_links import CycleReportLink
    from campaign_loop.pipeline import logical_date_of_cycle

    last = world.cycles - 1
    runs = airflow_api(services, f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-logical_date&limit=1")["dag_runs"]
    assert runs and runs[0]["state"] == "success", runs
    assert runs[0]["logical_date"].startswith(logical_date_of_cycle(world, last).isoformat()), runs[0]
    run_id = quote(runs[0]["dag_run_id"], safe="")
    expected = services.report_url(world.cycle_key(last))
    # What the UI shows: the URL the worker stored in XCom when the report task finished.
    links = airflow_api(services, f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/report/links")
    assert links["extra_links"] == {CycleReportLink.name: expected}, links

    login_airflow(browser, services)
    browser.get(f"{services.airflow_url}/dags/{DAG_ID}/runs/{run_id}/tasks/report")
    # Airflow 3 shows a task instance's extra links under "Extra Links" on its Details tab.
    wait_for(browser, lambda d: d.find_elements(By.LINK_TEXT, "Details"), 90, "the task instance's tabs")[0].click()
    button = wait_for(browser, lambda d: d.find_elements(By.LINK_TEXT, CycleReportLink.name), 90,
                      "the report task's Cycle report button")[0]
    assert button.get_attribute("href") == expected
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    time.sleep(1)
    shot(browser, artifacts, "airflow-report-task-link")
    opened_from = browser.current_window_handle
    before = set(browser.window_handles)
    button.click()
    wait_for(browser, lambda d: set(d.window_handles) - before or d.current_url == expected, 30, "the link to open")
    if new := set(browser.window_handles) - before:  # the UI opens links to other origins in a new tab
        browser.switch_to.window(new.pop())
    try:
        wait_for(browser, lambda d: f"Cycle {world.cycle_key(last)}" in page_text(d), 30, "the report from Airflow")
        assert browser.current_url == expected
        shot(browser, artifacts, "airflow-link-to-report")
    finally:
        if browser.current_window_handle != opened_from:
            browser.close()
            browser.switch_to.window(opened_from)


def test_dbt_docs_show_the_customer_360(browser, services, artifacts) -> None:
    browser.get(f"{services.dbt_docs_url}#!/model/model.campaign_loop.dim_customers")
    wait_for(browser, lambda d: "dim_customers" in page_text(d) and "customer_id" in page_text(d), 60,
             "dim_customers with its columns")
    time.sleep(1)
    shot(browser, artifacts, "dbt-docs-dim-customers")


def uplift_verdicts(client) -> str:
    """Every uplift version's gate verdict: what a failure should show (why there is no champion)."""
    versions = sorted(client.search_model_versions("name='uplift'"), key=lambda v: int(v.version))
    return "; ".join(f"v{v.version} ({v.tags.get('cycle_id')}): {v.tags.get('gate.decision')}, "
                     f"{v.tags.get('gate.reason')}, qini {v.tags.get('gate.qini_coefficient.challenger')}"
                     for v in versions) or "no uplift version registered (training skipped for too little data?)"


def mlflow_page(browser, services, fragment: str) -> str:
    """A URL of the MLflow UI, with the browser sending the home's login: the server runs MLflow's basic-auth
    app, and Chromium does not pass credentials given in a URL on to the page's own API requests."""
    import base64

    login = services.mlflow_login()
    token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    return f"{services.mlflow_url}/{fragment}"


def test_mlflow_registry_shows_the_uplift_champion(browser, services, artifacts, monkeypatch) -> None:
    from mlflow import MlflowClient

    from ml.tracking import client_auth_env

    for key, value in client_auth_env(services.settings).items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(tracking_uri=services.mlflow_url, registry_uri=services.mlflow_url)
    aliases = {m.name: m.aliases for m in client.search_registered_models()}
    assert "champion" in aliases.get("uplift", {}), (
        f"uplift has no champion; aliases {aliases}; gate: {uplift_verdicts(client)}")
    champion = aliases["uplift"]["champion"]
    assert client.get_model_version("uplift", champion).tags.get("gate.action") == "promoted", "promoted by the gate"
    browser.get(mlflow_page(browser, services, "#/models"))
    wait_for(browser, lambda d: "uplift" in page_text(d) and "registered models" in page_text(d).lower(), 90,
             "the MLflow model registry listing uplift")
    time.sleep(1)
    shot(browser, artifacts, "mlflow-registry")
    browser.get(mlflow_page(browser, services, "#/models/uplift"))
    wait_for(browser, lambda d: "uplift" in page_text(d) and "champion" in page_text(d), 90,
             "registered model uplift with its champion alias")
    time.sleep(1)
    shot(browser, artifacts, "mlflow-uplift-champion")


def test_cycle_report_shows_its_charts(browser, services, world, artifacts) -> None:
    from selenium.webdriver.common.by import By


    key = world.cycle_key(world.cycles - 1)
    browser.get(services.report_url(key))
    wait_for(browser, lambda d: f"Cycle {key}" in page_text(d), 30, "the report")
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart, svg")
    summary = json.loads((world.reports_dir / key / "summary.json").read_text())
    assert len(charts) >= 4, (f"charts {[c.get_attribute('alt') for c in charts]}; report notes {summary['notes']}; "
                              f"MLFLOW_TRACKING_URI={os.environ.get('MLFLOW_TRACKING_URI')}")
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
