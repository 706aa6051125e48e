"""Every HTML page the platform writes or serves shows data-derived text as text: hostile campaign ids,
segments, channels and check descriptions are landed where each page reads them, and the pages (as served
by the site) are scanned for any tag or handler the data smuggled in."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd

from campaign_loop.config import Settings
from campaign_loop.lift import COLUMNS as LIFT_COLUMNS
from tests.security.conftest import Site

HOSTILE = ("<svg onload=alert(1)>", "\"><script>alert(2)</script>", "'><img src=x onerror=alert(3)>")


class _Scan(HTMLParser):
    """What a browser would run of the payloads: an <svg>, a handler calling alert, a script calling alert."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.found.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on") and "alert" in (value or ""):
                self.found.append(f"<{tag} {name}={value!r}>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and "alert(" in data:
            self.found.append(f"<script>{data.strip()[:60]}</script>")


def assert_inert(page: str, where: str, expect_shown: int = 1) -> None:
    scan = _Scan()
    scan.feed(page)
    assert not scan.found, f"{where}: the data became markup: {scan.found}"
    # Not vacuous: the payloads did reach the page, as escaped text.
    shown = sum(html.escape(h, quote=False) in page or html.escape(h) in page for h in HOSTILE)
    assert shown >= expect_shown, f"{where}: only {shown} of the hostile values reached the page"


def _served(site: Site, path: Path) -> str:
    status, body = site.get("/" + path.relative_to(site.settings.root).as_posix())
    assert status == 200, f"{path} answered {status}"
    return body.decode("utf-8")


# --- the cycle report -------------------------------------------------------------------------------------

def _hostile_world(settings: Settings) -> None:
    """A warehouse and a plan summary whose every free-text field the report shows carries a payload."""
    cycle_id, next_id = settings.cycle_key(0), settings.cycle_key(1)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    campaigns = [f"{cycle_id}-{h}-sms" for h in HOSTILE]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema published; create schema audit")
        con.execute("""create table published.kpi_daily as select date '2026-01-06' as order_date, 5 as orders,
                       50.0 as revenue, 10.0 as margin, 4 as active_customers, 10.0 as average_order_value""")
        # The lift table the report reads (campaign_loop/lift.py), every free-text column a payload.
        columns = ", ".join(f'"{n}" {t}' for n, t in LIFT_COLUMNS.items())
        con.execute(f"create table published.kpi_campaign_lift ({columns})")
        for c in campaigns:
            con.execute("insert into published.kpi_campaign_lift (campaign_id, arm, metric, n_arm, mean_arm, "
                        "mean_control, lift, lift_ci_low, lift_ci_high, p_value, roi, method, correction, "
                        "sequential_method) values (?, 'treatment', 'converted', 100, .1, .08, .02, -.01, .05, .3, "
                        "1.2, ?, ?, ?)", [c, HOSTILE[0], HOSTILE[1], HOSTILE[2]])
        con.execute("""create table published.fct_campaign_sends as select * from (values
                       (1, ?, 'treatment', true), (2, ?, 'control', false)) t(customer_id, cycle_id, arm, is_converted)""",
                    [cycle_id, cycle_id])
        con.execute("create table published.fct_customer_features (customer_id int, cycle_id varchar, rfm_segment varchar)")
        con.executemany("insert into published.fct_customer_features values (?, ?, ?)",
                        [[1, cycle_id, HOSTILE[0]], [2, cycle_id, HOSTILE[0]]])
        con.execute("""create table audit.validation_results (cycle_id varchar, stage varchar, severity varchar,
                       success boolean, validation_result_id varchar, "table" varchar, "check" varchar,
                       "column" varchar, observed double, threshold double)""")
        con.executemany("insert into audit.validation_results values (?, 'marts', 'warning', false, ?, ?, ?, ?, 1, 0)",
                        [[cycle_id, h, h, h, h] for h in HOSTILE])
    summary = settings.plan_path(next_id).with_suffix(".summary.json")
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps({
        "customers_targeted": 3, "treatment": 2, "control": 1, "method": HOSTILE[1],
        "holdout": {"share": 0.1, "power": 0.8, "target_power": 0.8}, "budget": {"used": 1, "total": 2},
        "expected": {"incremental_value": 1.0, "roi": 0.5},
        "by_channel": {h: {"treatment": 1, "control": 0} for h in HOSTILE},
        "by_segment": {h: {"treatment": 1, "control": 0} for h in HOSTILE},
    }))


def test_the_cycle_report_shows_hostile_names_as_text(tmp_path: Path) -> None:
    from campaign_loop.cycle_report import write_report
    from campaign_loop.ui import serve_site

    settings = Settings(home=tmp_path)
    _hostile_world(settings)
    path = write_report(settings, 0, airflow_run_id=HOSTILE[2], airflow_url="http://127.0.0.1:1",
                        mlflow_url="http://127.0.0.1:2")
    with serve_site(settings, 0) as url:
        site = Site(settings, url, int(url.rsplit(":", 1)[1]))
        assert_inert(_served(site, path), "cycle report", expect_shown=len(HOSTILE))
        # The site's own index lists the reports' folders by name.
        hostile_cycle = settings.reports_dir / HOSTILE[0] / "index.html"
        hostile_cycle.parent.mkdir(parents=True)
        hostile_cycle.write_text("<p>x</p>")
        for listing in ("/", "/reports/"):  # the index page and http.server's directory listing
            status, body = site.get(listing)
            assert status == 200
            assert_inert(body.decode(), f"site page {listing}")


# --- Data Docs ----------------------------------------------------------------------------------------------

def test_data_docs_show_hostile_values_and_check_text_as_text(tmp_path: Path) -> None:
    from campaign_loop.ui import serve_site
    from expectations import marts
    from expectations.context import Validator, data_docs_index, open_context
    from expectations.suites import STATISTICS_SUITE, mart_suite_name

    settings = Settings(home=tmp_path)
    # Campaigns whose holdout was contacted away: the SRM check fails and names each campaign in its text.
    sends = pd.DataFrame({"campaign_id": [f"a{h}-sms" for h in HOSTILE for _ in range(20)],
                          "member_id": [f"m{i}" for i in range(20)] * len(HOSTILE),
                          "arm": (["treatment"] * 19 + ["control"]) * len(HOSTILE)})
    checks = marts.randomisation_checks(sends, plan={f"a{h}-sms": {"treatment": 0.5, "control": 0.5} for h in HOSTILE})
    assert not any(c.success for c in checks)
    # A mart whose key repeats: GX lists the offending (campaign_id, member_id) values themselves.
    duplicated = pd.DataFrame({"campaign_id": list(HOSTILE) * 2, "member_id": list(HOSTILE) * 2, "arm": "treatment"})

    validator = Validator(open_context(settings), "hostile")
    runs = validator.validate_frames([(STATISTICS_SUITE, marts.statistics_frame(checks)),
                                      (mart_suite_name("fct_campaign_sends"), duplicated)])
    assert not any(run.result.success for run in runs)
    # The results the audit table is built from keep the values as landed.
    unexpected = [r.result.get("partial_unexpected_list") for run in runs for r in run.result.results]
    assert any(HOSTILE[0] in json.dumps(u) for u in unexpected if u)
    validator.build_docs()

    site_root = data_docs_index(settings).parent
    pages = [p for p in site_root.rglob("*.html") if "/hostile/" in p.relative_to(site_root).as_posix()]
    assert len(pages) == 2
    with serve_site(settings, 0) as url:
        site = Site(settings, url, int(url.rsplit(":", 1)[1]))
        for page in pages:
            assert_inert(_served(site, page), page.name, expect_shown=len(HOSTILE))
        assert_inert(_served(site, data_docs_index(settings)), "Data Docs index", expect_shown=0)
