"""Fixtures of the security tests: a home holding the secrets an attacker wants beside the site's roots,
and the static site serving it on a free loopback port (the real server, in a thread of the test)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from campaign_loop.config import Settings

# Files outside the site's roots, each with a marker no served page contains.
SECRETS = {
    "airflow/simple_auth_manager_passwords.json.generated": '{"admin": "SECRET-airflow-password"}',
    "warehouse/campaign_loop.duckdb": "SECRET-warehouse",
    "mlflow/mlflow.db": "SECRET-mlflow-db",
    "validation/gx/great_expectations.yml": "SECRET-gx-config",
    "validation/gx/uncommitted/config_variables.yml": "SECRET-gx-variables",
}
SECRET_MARKER = b"SECRET-"


@dataclass
class Site:
    settings: Settings
    url: str
    port: int

    def get(self, path: str, host: str | None = None, method: str = "GET") -> tuple[int, bytes]:
        """One request with ``path`` sent byte for byte (no client-side normalising), over a raw socket."""
        host = f"127.0.0.1:{self.port}" if host is None else host
        request = f"{method} {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host else "") + "Connection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request.encode("latin-1"))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        response = b"".join(chunks)
        head, _, body = response.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/"):
            return 0, body  # the server dropped the connection: no status, nothing served
        return int(head.split(b" ", 2)[1]), body


def make_home(root: Path) -> Settings:
    settings = Settings(home=root)
    for relative, text in SECRETS.items():
        path = settings.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (settings.root / "reports" / "2026-01-05").mkdir(parents=True)
    (settings.root / "reports" / "2026-01-05" / "index.html").write_text("<!doctype html><p>cycle report</p>")
    (settings.root / "dbt_docs").mkdir()
    (settings.root / "dbt_docs" / "index.html").write_text("<!doctype html><p>dbt docs</p>")
    docs = settings.root / "validation" / "gx" / "uncommitted" / "data_docs" / "local_site"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<!doctype html><p>data docs</p>")
    # Symlinks inside a root that lead out of it: to a secret file and to the whole home.
    (settings.root / "reports" / "password.json").symlink_to(settings.root / next(iter(SECRETS)))
    (settings.root / "reports" / "home").symlink_to(settings.root, target_is_directory=True)
    return settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from campaign_loop.ui import serve_site

    settings = make_home(tmp_path_factory.mktemp("site-home"))
    with serve_site(settings, 0) as url:  # port 0: the kernel picks a free one
        yield Site(settings, url, int(url.rsplit(":", 1)[1]))


def free_port() -> int:
    """A loopback port free right now (the kernel's pick), for a server started in its own process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
