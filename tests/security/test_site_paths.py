"""The static site serves its three roots and nothing else of the home, however the path is spelled."""

from __future__ import annotations

import pytest

from tests.security.conftest import SECRET_MARKER, Site

PASSWORD = "airflow/simple_auth_manager_passwords.json.generated"

# (request path, why it must be refused); every one of them names a file outside the roots.
TRAVERSALS = [
    (f"/reports/..%2f{PASSWORD.replace('/', '%2f')}", "encoded slash (the issue's request)"),
    (f"/reports/../{PASSWORD}", "plain dot-dot"),
    (f"/reports/%2e%2e/{PASSWORD}", "encoded dots"),
    (f"/reports/%2E%2E%2F{PASSWORD}", "upper-case encoding"),
    (f"/reports/..%252f{PASSWORD}", "double-encoded slash"),
    (f"/reports/%252e%252e/{PASSWORD}", "double-encoded dots"),
    (f"/reports/..\\{PASSWORD}", "backslash"),
    (f"/reports/..%5c{PASSWORD.replace('/', '%5c')}", "encoded backslash"),
    ("/reports/../../../../../../etc/passwd", "deep dot-dot"),
    ("/reports/%c0%ae%c0%ae/" + PASSWORD, "overlong UTF-8 dots"),
    (f"/reports/2026-01-05/index.html%00/../../../{PASSWORD}", "encoded NUL"),
    ("/reports/index.html\x00.png", "raw NUL"),
    (f"/./{PASSWORD}", "dot segment"),
    (f"/{PASSWORD}", "outside every root"),
    ("/warehouse/campaign_loop.duckdb", "the warehouse"),
    ("/mlflow/mlflow.db", "MLflow's database"),
    ("/validation/gx/great_expectations.yml", "the GX config beside Data Docs"),
    ("/validation/gx/uncommitted/config_variables.yml", "GX's variables beside Data Docs"),
    ("/validation/gx/uncommitted/data_docs/local_site/../../config_variables.yml", "out of Data Docs"),
    ("/reports/password.json", "a symlink inside reports to the password file"),
    (f"/reports/home/{PASSWORD}", "a symlink inside reports to the home"),
    ("/reports/home/warehouse/campaign_loop.duckdb", "a symlink inside reports to the home, warehouse"),
    (f"//{PASSWORD}", "scheme-relative target"),
    (f"http://127.0.0.1/{PASSWORD}", "absolute-form target"),
]


@pytest.mark.parametrize(("path", "why"), TRAVERSALS, ids=[why for _, why in TRAVERSALS])
def test_paths_out_of_the_roots_are_refused(site: Site, path: str, why: str) -> None:
    for method in ("GET", "HEAD"):
        status, body = site.get(path, method=method)
        assert status in (400, 404), f"{method} {path!r} ({why}) answered {status}"
        assert SECRET_MARKER not in body, f"{method} {path!r} ({why}) leaked a secret"


@pytest.mark.parametrize("path", [
    "/", "/index.html", "/reports/", "/reports/2026-01-05/index.html", "/reports/2026-01-05/",
    "/dbt_docs/index.html", "/validation/gx/uncommitted/data_docs/local_site/index.html",
    "/reports/2026-01-05/index.html?x=1#top", "/reports/2026%2D01%2D05/index.html",
])
def test_the_roots_are_served(site: Site, path: str) -> None:
    status, body = site.get(path)
    assert status == 200, f"{path} answered {status}"
    assert SECRET_MARKER not in body


def test_a_directory_listing_shows_no_link_out_of_its_root(site: Site) -> None:
    # The listing names the symlinks (they are entries of the folder), but following them is refused above.
    status, body = site.get("/reports/")
    assert status == 200 and b"2026-01-05" in body and SECRET_MARKER not in body


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "localhost.evil.example",
    "127.0.0.1:1", "[::1]:{port}", "", "127.0.0.1:{port}, evil.example",
])
def test_a_foreign_host_header_is_refused(site: Site, host: str) -> None:
    status, body = site.get("/reports/2026-01-05/index.html", host=host.format(port=site.port))
    assert status in (400, 421), f"Host {host!r} answered {status}"
    assert b"cycle report" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "127.0.0.1", "LOCALHOST"])
def test_this_machines_names_are_answered(site: Site, host: str) -> None:
    status, body = site.get("/reports/2026-01-05/index.html", host=host.format(port=site.port))
    assert status == 200 and b"cycle report" in body


def test_a_request_without_host_is_refused(site: Site) -> None:
    status, _ = site.get("/reports/2026-01-05/index.html", host="")
    assert status == 400
