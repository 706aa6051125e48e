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


# Settings.demo as the environment spells it: dbt runs in a subprocess that has the environment, not Settings.
DEMO_ENV = "CAMPAIGN_LOOP_DEMO"
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"
DEV_KEY_NOTICE = (
    f"WARNING: {PII_KEY_ENV} is not set: e-mails and phones are pseudonymised with the public development key, "
    "so anyone can reverse their hashes in published.dim_customers. Fine for the simulated retailer only; "
    f"set {PII_KEY_ENV} (generate one with: {GENERATE_KEY}) before loading real customers."
)


class MissingPiiKeyError(RuntimeError):
    """A run on a retailer's data (demo off) without its own pseudonymisation key."""

    def __init__(self) -> None:
        super().__init__(
            f"{PII_KEY_ENV} is not set, and this is not a demo run (demo=false): the key pseudonymises customers' "
            f"e-mails and phones, and the public development key would let anyone reverse them. Generate a key "
            f"once with\n    {GENERATE_KEY}\nexport it as {PII_KEY_ENV}=<key> wherever the loop runs (Airflow's "
            "workers included) and keep it secret and unchanged: a new key changes every hash."
        )


def uses_dev_key(demo: bool) -> bool:
    """Whether a run pseudonymises with the development key: only a demo may; any other run without
    ``CAMPAIGN_LOOP_PII_KEY`` raises :class:`MissingPiiKeyError` (call this before the run starts)."""
    if os.environ.get(PII_KEY_ENV):
        return False
    if not demo:
        raise MissingPiiKeyError()
    return True


def _demo_from_env() -> bool:
    # Settings.demo defaults to True, so only an explicit "false" in the environment marks a retailer's run.
    return os.environ.get(DEMO_ENV, "true").strip().lower() not in {"0", "false", "no", "off"}


def pii_key(demo: bool | None = None) -> bytes:
    """The pseudonymisation key: ``CAMPAIGN_LOOP_PII_KEY``, else the development key in a demo (``demo`` or
    ``CAMPAIGN_LOOP_DEMO``), else :class:`MissingPiiKeyError`."""
    if uses_dev_key(_demo_from_env() if demo is None else demo):
        log.warning("%s", DEV_KEY_NOTICE)
        return DEV_PII_KEY.encode()
    return os.environ[PII_KEY_ENV].encode()


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
