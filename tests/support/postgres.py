"""A throwaway PostgreSQL 15 cluster for tests: initdb + pg_ctl on a free loopback port, removed after.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


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
