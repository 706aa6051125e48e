"""dbt-duckdb plugin: keyed pseudonymisation (HMAC-SHA256) and a cwd-independent default warehouse path.

DuckDB ships sha256 but no HMAC. Registering the UDF here keeps the secret out of the compiled SQL, so
it never lands in ``target/`` artifacts (a key rendered into SQL would be written to disk by dbt).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

PII_KEY_ENV = "CAMPAIGN_LOOP_PII_KEY"
# Shared with the postgres__pseudonymize macro so both targets give the same hashes in development.
DEV_PII_KEY = "campaign-loop-development-key"
UDF_NAME = "campaign_loop_hmac"
# profiles.yml's default path is relative to the dbt project directory, not to the caller's cwd.
PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"

log = logging.getLogger(__name__)


def pii_key() -> bytes:
    key = os.environ.get(PII_KEY_ENV)
    if not key:
        log.warning("%s is not set: pseudonymising with the development key (not for production)", PII_KEY_ENV)
        key = DEV_PII_KEY
    return key.encode()


def hmac_hex(key: bytes, value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._key = pii_key()

    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = getattr(creds, "path", None)
        if not path or path == ":memory:" or "://" in path or path.startswith("md:"):
            return
        resolved = Path(path) if os.environ.get("CAMPAIGN_LOOP_HOME") else PROJECT_DIR / path
        resolved = resolved.expanduser().resolve()
        resolved.parent.mkdir(parents=True, exist_ok=True)
        creds.path = str(resolved)

    def configure_connection(self, conn: Any) -> None:
        self._register(conn)

    def configure_cursor(self, cursor: Any) -> None:
        self._register(cursor)

    def _register(self, conn: Any) -> None:
        import duckdb
        import pyarrow as pa

        key = self._key

        def udf(values):  # unannotated: DuckDB evaluates annotations, pyarrow is imported locally
            return pa.array([hmac_hex(key, v) for v in values.to_pylist()], type=pa.string())

        try:
            conn.create_function(
                UDF_NAME, udf, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
                type="arrow", null_handling="special", side_effects=False,
            )
        except duckdb.Error as exc:
            # Cursors share the parent's catalog of functions on some DuckDB versions.
            if "already" not in str(exc).lower():
                raise
