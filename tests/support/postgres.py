"""A throwaway PostgreSQL 15 cluster for tests: initdb + pg_ctl on a free loopback port, removed after.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
``postgres_for_dbt`` points the dbt profile's postgres target at such a cluster and ``copy_raw`` gives
it a DuckDB warehouse's raw layer, so a test can build the same marts on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str

    @property
    def env(self) -> dict[str, str]:
        """Connection settings as the dbt profile's postgres target reads them."""
        return {
            "CAMPAIGN_LOOP_PG_HOST": self.host,
            "CAMPAIGN_LOOP_PG_PORT": str(self.port),
            "CAMPAIGN_LOOP_PG_USER": self.user,
            "CAMPAIGN_LOOP_PG_PASSWORD": "",
            "CAMPAIGN_LOOP_PG_DBNAME": self.dbname,
        }

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (trust authentication: no password)."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self) -> Any:
        """A psycopg2 connection (``with`` commits on success, as psycopg2 does)."""
        import psycopg2

        return psycopg2.connect(self.dsn)


def _bin(name: str) -> str:
    found = shutil.which(name) or f"/usr/lib/postgresql/15/bin/{name}"
    if not Path(found).exists():
        raise FileNotFoundError(f"{name} not found: install PostgreSQL 15 (apt-get install postgresql-15)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> bool:
    try:
        _bin("initdb")
        _bin("pg_ctl")
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def throwaway_postgres(dbname: str = "campaign_loop") -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="campaign-loop-pg-"))
    data, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    as_user: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        user = "postgres"
        shutil.chown(root, user)
        shutil.chown(socket_dir, user)
        as_user = ["runuser", "-u", user, "--"]
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True}
    try:
        subprocess.run([*as_user, _bin("initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
                        "--no-locale"], **run)
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "server.log"),
                        "-o", f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], **run)
        subprocess.run([*as_user, _bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, dbname], **run)
        yield PostgresServer(host="127.0.0.1", port=port, user=user, dbname=dbname)
    finally:
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, text=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def postgres_for_dbt(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    """A throwaway cluster the dbt profile's postgres target (CAMPAIGN_LOOP_PG_*) points at while it runs."""
    with throwaway_postgres() as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        yield server


def copy_raw(warehouse: Path, server: PostgresServer) -> None:
    """Replace the cluster's raw schema with the DuckDB warehouse's raw tables (not the underscored load logs)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con, server.connect() as pg, pg.cursor() as cur:
        cur.execute("drop schema if exists raw cascade; create schema raw")
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' and table_name not like '\\_%' escape '\\'"
        ).fetchall()]
        for table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = ? order by ordinal_position", [table]
            ).fetchall()
            ddl = ", ".join(f'"{c}" {t.replace("VARCHAR", "text").replace("DECIMAL", "numeric").replace("DOUBLE", "double precision")}' for c, t in columns)
            cur.execute(f'create table raw."{table}" ({ddl})')
            buffer = io.StringIO()
            con.execute(f'select * from raw."{table}"').df().to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            cur.copy_expert(f'copy raw."{table}" from stdin with (format csv)', buffer)
