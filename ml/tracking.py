"""Where MLflow keeps runs and models, the local server, and the lineage tags every training run carries.

Layout under ``settings.mlflow_dir``: ``mlflow.db`` (SQLite backend and model registry) and
``artifacts/``. A SQL backend is needed because MLflow 3 no longer accepts the bare ``./mlruns`` file
store, and the registry (aliases ``challenger``/``champion``) needs one anyway.

Nothing here runs at import: callers choose when to :func:`configure` the process or start a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from campaign_loop.config import NO_TELEMETRY, Settings
from campaign_loop.readiness import wait_for_http

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "artifacts"

# Standard lineage tag keys, so the report and the registry UI can join a model back to its cycle.
TAG_CYCLE_ID = "cycle_id"
TAG_DBT_INVOCATION_ID = "dbt_invocation_id"
TAG_VALIDATION_RESULT_ID = "validation_result_id"
TAG_TRAIN_START = "train_window_start"
TAG_TRAIN_END = "train_window_end"
TAG_ROWS_PREFIX = "rows."


def db_path(settings: Settings) -> Path:
    return settings.mlflow_dir / DB_NAME


def artifact_root(settings: Settings) -> Path:
    return settings.mlflow_dir / ARTIFACTS_DIR


def tracking_uri(settings: Settings) -> str:
    """``sqlite:////abs/path/mlflow.db``: the same URI serves tracking and registry."""
    return f"sqlite:///{db_path(settings).resolve()}"


def server_env(uri: str) -> dict[str, str]:
    """The environment that points a child process's tracking *and* registry at ``uri``.

    MLflow's registry URI falls back to the tracking URI only when nothing set it, and
    ``mlflow.set_registry_uri`` leaves ``MLFLOW_REGISTRY_URI`` in the environment children inherit.
    """
    return {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}


def uri_for(settings: Settings) -> str:
    """This home's tracking URI: the server in ``MLFLOW_TRACKING_URI`` (a DAG task's), else the home's own store.

    A SQLite store of another home left in the environment (a shell, an earlier test) is ignored: a report
    read one and drew another world's models.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    return env if env.startswith(("http://", "https://")) or env == tracking_uri(settings) else tracking_uri(settings)


def configure(settings: Settings) -> str:
    """Point this process's MLflow client at the local store (creating its directories) and return the URI."""
    import mlflow

    artifact_root(settings).mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, artifact_location: Path | str | None = None) -> str:
    """The id of experiment ``name``, created with an explicit artifact location if missing.

    Without one, a SQL backend used directly (no server) puts artifacts in ``./mlruns`` of whatever
    directory the task happens to run in.
    """
    import mlflow

    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if artifact_location is not None:
        location = artifact_location if isinstance(artifact_location, str) else Path(artifact_location).resolve().as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def server_command(settings: Settings, port: int = 5000, *, host: str = "127.0.0.1", workers: int = 1) -> list[str]:
    """The ``mlflow server`` command line (flags as in the MLflow 3.17 CLI), always with MLflow's basic-auth
    app, whose environment :func:`auth_server_env` gives."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", tracking_uri(settings),
        # Proxied artifacts: clients upload through the server, so they need no access to the directory.
        "--serve-artifacts",
        "--artifacts-destination", artifact_root(settings).resolve().as_uri(),
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--app-name", "basic-auth",
    ]


# --- authentication (every server the platform starts: `campaign-loop ui`, demo, run, backfill) -------------
# Without it anyone on the machine could move a model's `champion` alias, and the next plan would be designed
# with that model. The server runs MLflow's basic-auth app: every request but /health needs a login, and the
# only user is an admin whose password is generated once per home, like Airflow's.

AUTH_USER = "admin"
CREDENTIALS_FILE = "server_credentials.json"  # in mlflow_dir, mode 0600: the admin password and CSRF secret
AUTH_CONFIG_FILE = "basic_auth.ini"
AUTH_DB_NAME = "basic_auth.db"


@dataclass(frozen=True)
class ServerCredentials:
    username: str
    password: str
    secret_key: str  # Flask's key for the auth app's CSRF tokens; constant per home so restarts keep sessions


def credentials_path(settings: Settings) -> Path:
    return settings.mlflow_dir / CREDENTIALS_FILE


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (never briefly world-readable), or fail if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def server_credentials(settings: Settings) -> ServerCredentials:
    """The home's MLflow admin login, generated on first use and kept in ``<mlflow_dir>/server_credentials.json``."""
    path = credentials_path(settings)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process generated it first: read theirs
            _write_private(path, json.dumps({"username": AUTH_USER, "password": secrets.token_urlsafe(24),
                                             "secret_key": secrets.token_hex(32)}))
    data = json.loads(path.read_text())
    return ServerCredentials(data["username"], data["password"], data["secret_key"])


def auth_config_path(settings: Settings) -> Path:
    """The basic-auth app's config: its user database under the home, every user (only the admin) READ by default."""
    path = settings.mlflow_dir / AUTH_CONFIG_FILE
    text = "\n".join([
        "[mlflow]",
        "default_permission = READ",
        f"database_uri = sqlite:///{(settings.mlflow_dir / AUTH_DB_NAME).resolve()}",
        f"admin_username = {AUTH_USER}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        # MLflow checks the login's password hash up to three times a request (about 0.1 s of CPU each): a
        # 1-cycle demo spent 73 s of its 159 s there. A password changed through the API drops the entry at
        # once (one worker); one changed in the database by hand is honoured within a minute.
        "auth_cache_ttl_seconds = 60",
        "",
    ])
    if not path.exists() or path.read_text() != text:
        path.unlink(missing_ok=True)
        _write_private(path, text)
    return path


def auth_server_env(settings: Settings) -> dict[str, str]:
    """What the server reads at start: the basic-auth app's config, the CSRF secret and the admin password (used
    only to create the admin in an empty user database), no job runner and no telemetry."""
    login = server_credentials(settings)
    return NO_TELEMETRY | {
        # MLflow 3's job runner (seven huey consumers per server, for GenAI judges and trace roll-ups) is
        # nothing the loop uses, and cost about 35 s of CPU at every start of a run's server on 2 cores.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config_path(settings)),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": login.secret_key,
        "MLFLOW_AUTH_ADMIN_USERNAME": login.username,
        "MLFLOW_AUTH_ADMIN_PASSWORD": login.password,
    }


def client_auth_env(settings: Settings) -> dict[str, str]:
    """The login MLflow's client sends to the home's server: the Airflow tasks get it in their environment."""
    login = server_credentials(settings)
    return {"MLFLOW_TRACKING_USERNAME": login.username, "MLFLOW_TRACKING_PASSWORD": login.password}


def start_server(
    settings: Settings, port: int = 5000, *, host: str = "127.0.0.1", workers: int = 1, log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start one ``mlflow server`` on ``host:port`` over the local store; the caller owns (and stops) the process.

    Output goes to ``log_path`` (default ``<mlflow_dir>/server.log``) so a chatty server cannot fill a pipe
    nobody reads and block. Every request but ``/health`` needs the home's login (:func:`server_credentials`,
    given to clients by :func:`client_auth_env`).
    """
    artifact_root(settings).mkdir(parents=True, exist_ok=True)
    log_file = log_path or settings.mlflow_dir / "server.log"
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            server_command(settings, port, host=host, workers=workers),
            env=os.environ | auth_server_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def server_url(port: int = 5000, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def wait_until_ready(url: str, timeout_s: float = 120.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until ``<url>/health`` answers; fail early if ``process`` died (a taken port, a bad flag).

    The default allows for a first start, which creates the database tables: ~45 s on a 2-core box.
    """
    wait_for_http(f"{url}/health", timeout_s, process, name="mlflow server")


def lineage_tags(
    *,
    cycle_id: str,
    dbt_invocation_id: str | None = None,
    validation_result_id: str | None = None,
    train_start: date | None = None,
    train_end: date | None = None,
    row_counts: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """The standard lineage tags as strings (MLflow tags are strings); absent values are left out, not "None"."""
    tags: dict[str, str] = {TAG_CYCLE_ID: cycle_id}
    if dbt_invocation_id:
        tags[TAG_DBT_INVOCATION_ID] = dbt_invocation_id
    if validation_result_id:
        tags[TAG_VALIDATION_RESULT_ID] = validation_result_id
    if train_start is not None:
        tags[TAG_TRAIN_START] = train_start.isoformat()
    if train_end is not None:
        tags[TAG_TRAIN_END] = train_end.isoformat()
    for table, rows in (row_counts or {}).items():
        tags[f"{TAG_ROWS_PREFIX}{table}"] = str(int(rows))
    return tags


def log_lineage(
    *,
    cycle_id: str,
    dbt_invocation_id: str | None = None,
    validation_result_id: str | None = None,
    train_start: date | None = None,
    train_end: date | None = None,
    row_counts: Mapping[str, int] | None = None,
    run_id: str | None = None,
) -> dict[str, str]:
    """Tag a run (``run_id``, else the active run) with its lineage and return the tags written."""
    import mlflow

    tags = lineage_tags(
        cycle_id=cycle_id,
        dbt_invocation_id=dbt_invocation_id,
        validation_result_id=validation_result_id,
        train_start=train_start,
        train_end=train_end,
        row_counts=row_counts,
    )
    if run_id is None:
        if mlflow.active_run() is None:
            raise RuntimeError("log_lineage needs run_id or an active run")
        mlflow.set_tags(tags)
    else:
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    return tags
