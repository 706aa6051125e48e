"""`campaign-loop ui`: the three surfaces people use, on this machine only (127.0.0.1).

- **Airflow** (marketers): api-server + scheduler + dag-processor + triggerer as separate processes over
  the home's metadata DB (``<home>/airflow/airflow.db``), SimpleAuthManager with one ``admin`` user whose
  generated password Airflow writes to ``<home>/airflow/simple_auth_manager_passwords.json.generated``.
- **MLflow** (reviewers): ``ml.tracking.start_server`` over ``<home>/mlflow``.
- **Static site** (analysts): dbt docs (generated into ``<home>/dbt_docs``), the cycle reports
  (``<home>/reports``) and the Great Expectations Data Docs (``<home>/validation``), served by Python's
  http.server. URL paths mirror the home directory, so a report's relative links work the same whether it
  is opened from disk or from the server.

``start_services`` is a context manager (the browser tests reuse it); ``run_ui`` wraps it for the CLI and
blocks until Ctrl-C / SIGTERM, then stops every process tree it started.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from campaign_loop.config import Settings
from campaign_loop.cycle_report import AIRFLOW_URL_ENV, MLFLOW_URL_ENV
from campaign_loop.dbt import parse_project, run_dbt, seed_partial_parse
from campaign_loop.readiness import wait_for_http
from campaign_loop.runner import DAG_ID, airflow_env
from ml.tracking import (
    ServerCredentials,
    artifact_root,
    auth_server_env,
    client_auth_env,
    credentials_path,
    server_command,
    server_credentials,
    server_env,
    server_url,
    wait_until_ready,
)

HOST = "127.0.0.1"
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_MLFLOW_PORT = 5000
DEFAULT_SITE_PORT = 8090
AIRFLOW_USER = "admin"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# The folders of the home directory the static site serves, at the same paths as in the home (so a report's
# relative links work from disk too); nothing else: not the warehouse, MLflow's store or Airflow's passwords.
DATA_DOCS_ROOT = "validation/gx/uncommitted/data_docs/local_site"
SITE_ROOTS = ("dbt_docs", "reports", DATA_DOCS_ROOT)
ALLOWED_SITE_HOSTS = ("127.0.0.1", "localhost")
_STILL_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
# Where a task says its cycle report is served (the `report` task's log and its "Cycle report" link).
SITE_URL_ENV = "CAMPAIGN_LOOP_UI_SITE_URL"


def site_url() -> str:
    """The static site's URL as the running tasks know it: `campaign-loop ui` sets it, else the default port."""
    return (os.environ.get(SITE_URL_ENV) or f"http://{HOST}:{DEFAULT_SITE_PORT}").rstrip("/")


def report_url(cycle_id: str, site: str | None = None) -> str:
    """Where the static site serves a cycle's report (the path mirrors ``<home>/reports/<cycle_id>/``)."""
    return f"{(site or site_url()).rstrip('/')}/reports/{cycle_id}/index.html"


def dbt_docs_dir(settings: Settings) -> Path:
    """dbt's target path for `dbt docs generate`: under the home, never the repo's dbt_project/target."""
    return settings.root / "dbt_docs"


def password_file(settings: Settings) -> Path:
    """Where SimpleAuthManager keeps (and on first start generates) the users' passwords."""
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def airflow_password(settings: Settings, user: str = AIRFLOW_USER) -> str | None:
    path = password_file(settings)
    try:
        return json.loads(path.read_text()).get(user)
    except (OSError, ValueError):
        return None


@dataclass
class Services:
    """What `start_services` started: URLs, credentials' location and the processes (for stopping)."""

    settings: Settings
    airflow_url: str
    mlflow_url: str
    site_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs_dir: Path | None = None

    @property
    def dbt_docs_url(self) -> str:
        return f"{self.site_url}/dbt_docs/index.html"

    @property
    def reports_url(self) -> str:
        return f"{self.site_url}/reports/"

    def report_url(self, cycle_id: str) -> str:
        return report_url(cycle_id, self.site_url)

    @property
    def data_docs_url(self) -> str:
        return f"{self.site_url}/{DATA_DOCS_ROOT}/index.html"

    @property
    def password_file(self) -> Path:
        return password_file(self.settings)

    def airflow_password(self) -> str | None:
        return airflow_password(self.settings)

    def mlflow_login(self) -> ServerCredentials:
        return server_credentials(self.settings)

    def summary(self) -> str:
        return "\n".join([
            f"Airflow   {self.airflow_url}   user {AIRFLOW_USER}, password in {self.password_file}",
            f"MLflow    {self.mlflow_url}   user {self.mlflow_login().username}, password in "
            f"{credentials_path(self.settings)}",
            f"dbt docs  {self.dbt_docs_url}",
            f"Reports   {self.reports_url}",
            f"Data Docs {self.data_docs_url}",
            f"Logs      {self.logs_dir}",
        ])


# --- dbt docs -------------------------------------------------------------------------------------------

def generate_dbt_docs(settings: Settings) -> Path:
    """`dbt docs generate` into ``<home>/dbt_docs`` (catalog read from the warehouse); returns index.html.

    Runs before Airflow starts: DuckDB allows one writer, and a task started from the UI would hold it.
    """
    target = dbt_docs_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    result = run_dbt(settings, "docs", "generate", target_path=target)
    if result.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed:\n{result.stdout[-3000:]}")
    return target / "index.html"


# --- the static site ------------------------------------------------------------------------------------

class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves only the files under ``SITE_ROOTS`` of the home directory, plus a small index page at ``/``.

    The home also holds the warehouse, the MLflow database and Airflow's admin password, so every request
    is judged on its *decoded and resolved* path: percent-decoded once (what is still encoded after that
    is a second encoding, refused), no backslashes, NUL or control characters, no ``.``/``..`` segments, and
    the resolved file (symlinks followed) must lie inside the root its URL names. The Host header must be
    this machine's (a page on another site that rebinds its name to 127.0.0.1 cannot read ours).
    """

    def __init__(self, *args: object, home: Path, **kwargs: object) -> None:
        self._home = home
        self._target: Path | None = None
        super().__init__(*args, directory=str(home), **kwargs)  # type: ignore[arg-type]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self._admit():
            return self._index() if self._target is None else super().do_GET()
        return None

    def do_HEAD(self) -> None:  # noqa: N802
        if self._admit():
            return self._index(head=True) if self._target is None else super().do_HEAD()
        return None

    def translate_path(self, path: str) -> str:
        # http.server decodes and joins the raw path itself; only the path _admit resolved is ever opened.
        if self._target is None:
            raise RuntimeError("translate_path before _admit")
        return str(self._target)

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.send_header("Referrer-Policy", "same-origin")
        super().end_headers()

    def _admit(self) -> bool:
        """Check the Host header and the path; on success ``_target`` is the file (None: the index page)."""
        host_error = site_host_error(self.headers.get_all("Host") or [], self.server.server_address[1])
        if host_error is not None:
            self.send_error(*host_error)
            return False
        resolved = resolve_site_path(self._home, self.path)
        if isinstance(resolved, tuple):
            self.send_error(*resolved)
            return False
        self._target = resolved
        return True

    def _index(self, head: bool = False) -> None:
        reports = sorted((p.parent.name for p in (self._home / "reports").glob("*/index.html")), reverse=True)
        items = "".join(
            f'<li><a href="/reports/{html.escape(urllib.parse.quote(c), quote=True)}/index.html">'
            f"cycle {html.escape(c)}</a></li>" for c in reports)
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Campaign Loop</title></head><body>"
            "<h1>Campaign Loop</h1><ul>"
            "<li><a href='/dbt_docs/index.html'>dbt docs</a></li>"
            f"<li><a href='/{DATA_DOCS_ROOT}/index.html'>Data Docs</a></li>"
            f"</ul><h2>Cycle reports</h2><ul>{items or '<li>none yet</li>'}</ul></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (quiet)
        pass


def site_host_error(hosts: list[str], port: int) -> tuple[int, str] | None:
    """Why a request's Host header(s) are refused (status, message), or None: one Host naming this machine.

    Only 127.0.0.1 and localhost, with no port or the site's own: a browser that loaded another site whose
    name now resolves to 127.0.0.1 sends that site's name, and is refused.
    """
    if len(hosts) != 1 or not hosts[0].strip():
        return 400, "exactly one Host header is required"
    name, sep, given_port = hosts[0].strip().lower().rpartition(":")
    if not sep or name.endswith("]"):  # no port, or a bare IPv6 literal
        name, given_port = hosts[0].strip().lower(), ""
    if given_port and given_port != str(port):
        return 421, f"this site answers on port {port} only"
    if name not in ALLOWED_SITE_HOSTS:
        return 421, f"this site answers only to {' or '.join(ALLOWED_SITE_HOSTS)}"
    return None


def resolve_site_path(home: Path, raw_path: str) -> Path | None | tuple[int, str]:
    """The file (or directory) a request path names inside one of ``SITE_ROOTS``; None for the index page;
    (status, message) when it is refused: 400 for a malformed or traversing path, 404 for anything else."""
    if not raw_path.startswith("/") or raw_path.startswith("//"):
        return 400, "the request target must be a path"
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    if "\\" in path:
        return 400, "backslash in path"
    try:
        decoded = urllib.parse.unquote(path, errors="strict")
    except UnicodeDecodeError:
        return 400, "path is not UTF-8"
    if _STILL_ENCODED.search(decoded):
        return 400, "path is encoded twice"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in decoded):
        return 400, "control character or backslash in path"
    segments = decoded.split("/")[1:]
    if any(s in (".", "..") for s in segments):
        return 400, "relative segment in path"
    if decoded in ("/", "/index.html"):
        return None
    parts = [s for s in segments if s]
    for root in SITE_ROOTS:
        prefix = root.split("/")
        if parts[:len(prefix)] != prefix:
            continue
        base = home.joinpath(*prefix).resolve()
        target = home.joinpath(*parts).resolve()
        if target != base and base not in target.parents:
            return 404, "not served"  # a symlink that leads out of its root
        if not target.exists():
            return 404, "file not found"
        return target
    return 404, "not served"


@contextlib.contextmanager
def serve_site(settings: Settings, port: int, host: str = HOST) -> Iterator[str]:
    """The static site (dbt docs, reports, Data Docs) in a thread of this process; yields its URL."""
    handler = functools.partial(_SiteHandler, home=settings.root)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="campaign-loop-site", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- processes ------------------------------------------------------------------------------------------

def airflow_ui_env(settings: Settings, airflow_port: int, mlflow_url: str | None = None,
                   site: str | None = None) -> dict[str, str]:
    """`runner.airflow_env` plus what the long-running components need to find each other on 127.0.0.1."""
    base = f"http://{HOST}:{airflow_port}"
    env = airflow_env(settings)
    env.update(
        AIRFLOW__API__HOST=HOST,
        AIRFLOW__API__PORT=str(airflow_port),
        AIRFLOW__API__BASE_URL=base,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base}/execution/",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{AIRFLOW_USER}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(password_file(settings)),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__API__EXPOSE_CONFIG="False",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    if mlflow_url:
        env.update(server_env(mlflow_url))
        env.update(client_auth_env(settings))  # the tasks train and register through the authenticated server
        env[MLFLOW_URL_ENV] = mlflow_url
    env[AIRFLOW_URL_ENV] = base
    if site:
        env[SITE_URL_ENV] = site
    return env


def _spawn(name: str, command: list[str], env: dict[str, str] | None, logs_dir: Path) -> subprocess.Popen[bytes]:
    """A service in its own process group, output to ``<name>.log``."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    with (logs_dir / f"{name}.log").open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM the process and every process under it, then SIGKILL whatever is left after ``timeout_s``.

    The whole tree, not only the process group: Airflow's supervisor starts each task in a session of its own,
    and a task that outlived its stopped scheduler or worker kept DuckDB's write lock (issue 26).
    """
    try:
        leader = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        leader = False
    # Walked before any signal: a dead parent's children move to init. Not once reaped: its pid may be reused.
    tree = _descendants([process.pid], []) if process.poll() is None else []
    _signal_tree(process, leader, tree, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    alive = _still_running(tree, deadline)
    alive += _descendants([p.pid for p in alive], alive)  # forked while being stopped
    _signal_tree(process, leader, alive, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    _still_running(alive, time.monotonic() + 10)


def _descendants(pids: list[int], known: list[psutil.Process]) -> list[psutil.Process]:
    """Every live process under ``pids``, leaving out those in ``known``."""
    seen = {p.pid for p in known}
    found: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for child in psutil.Process(pid).children(recursive=True):
                if child.pid not in seen:
                    seen.add(child.pid)
                    found.append(child)
    return found


def _signal_tree(process: subprocess.Popen[bytes], leader: bool, tree: list[psutil.Process], sig: int) -> None:
    """``sig`` once to each: the group through killpg, the rest one by one. Once, because a second SIGTERM
    means "stop now, skip the cleanup" to uvicorn and Celery."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if leader:
            os.killpg(process.pid, sig)  # also reaches members already reparented to init
        elif process.poll() is None:
            process.send_signal(sig)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            if not (leader and os.getpgid(member.pid) == process.pid):
                member.send_signal(sig)  # psutil checks the pid was not reused since the walk


def _still_running(tree: list[psutil.Process], deadline: float) -> list[psutil.Process]:
    """Those of ``tree`` still running at ``deadline`` (or as soon as none is). A zombie counts as gone: the
    container's init may never reap a reparented one."""
    def running(member: psutil.Process) -> bool:
        try:
            return member.is_running() and member.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    while (alive := [p for p in tree if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _migrate(settings: Settings, env: dict[str, str], logs_dir: Path) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    with (logs_dir / "airflow-db-migrate.log").open("ab") as log:
        result = subprocess.run([airflow, "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed; see {logs_dir / 'airflow-db-migrate.log'}")


@contextlib.contextmanager
def start_services(
    settings: Settings,
    airflow_port: int = DEFAULT_AIRFLOW_PORT,
    mlflow_port: int = DEFAULT_MLFLOW_PORT,
    site_port: int = DEFAULT_SITE_PORT,
    *,
    docs: bool = True,
    airflow: bool = True,
    timeout_s: float = 180.0,
) -> Iterator[Services]:
    """Start MLflow, the static site and Airflow on 127.0.0.1; yield once all answer; stop them all on exit.

    ``docs=False`` serves whatever dbt docs were generated before (faster restarts); ``airflow=False``
    skips the four Airflow processes.
    """
    logs_dir = settings.root / "logs" / "ui"
    logs_dir.mkdir(parents=True, exist_ok=True)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    if docs or not (dbt_docs_dir(settings) / "index.html").exists():
        parse_project(settings)  # the manifest the DAG renders from
        seed_partial_parse(settings, DAG_ID)
        generate_dbt_docs(settings)

    processes: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as stack:
        def stop_all() -> None:
            for process in reversed(list(processes.values())):
                stop_process(process)

        stack.callback(stop_all)
        mlflow_url = server_url(mlflow_port, HOST)
        # ml.tracking.start_server's command, in a process group of its own: the server forks uvicorn and job
        # consumers, and stopping the group stops them all.
        artifact_root(settings).mkdir(parents=True, exist_ok=True)
        # With MLflow's basic-auth app: a model's alias (what the next plan is designed with) moves only with a login.
        processes["mlflow"] = _spawn("mlflow", server_command(settings, mlflow_port, host=HOST),
                                     os.environ | auth_server_env(settings), logs_dir)
        site = stack.enter_context(serve_site(settings, site_port))
        services = Services(settings, f"http://{HOST}:{airflow_port}", mlflow_url, site, processes, logs_dir)

        if airflow:
            env = airflow_ui_env(settings, airflow_port, mlflow_url, site)
            _migrate(settings, env, logs_dir)
            exe = str(Path(sys.executable).with_name("airflow"))
            commands = {
                "api-server": [exe, "api-server", "--host", HOST, "--port", str(airflow_port), "--workers", "1"],
                # No log-server side processes: they bind every interface, and LocalExecutor's logs are local.
                "scheduler": [exe, "scheduler", "--skip-serve-logs"],
                "dag-processor": [exe, "dag-processor"],
                "triggerer": [exe, "triggerer", "--skip-serve-logs"],
            }
            for name, command in commands.items():
                processes[f"airflow-{name}"] = _spawn(f"airflow-{name}", command, env, logs_dir)
            wait_for_http(f"{services.airflow_url}/api/v2/monitor/health", timeout_s,
                          processes["airflow-api-server"], "airflow api-server")
        wait_until_ready(mlflow_url, timeout_s=timeout_s, process=processes["mlflow"])
        yield services


def run_ui(
    settings: Settings,
    airflow_port: int = DEFAULT_AIRFLOW_PORT,
    mlflow_port: int = DEFAULT_MLFLOW_PORT,
    site_port: int = DEFAULT_SITE_PORT,
    *,
    docs: bool = True,
) -> int:
    """Start every surface, print where they are, block until Ctrl-C or SIGTERM, stop them; exit code."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"Campaign Loop UI: home {settings.root}; starting (dbt docs, MLflow, Airflow)...", flush=True)
        with start_services(settings, airflow_port, mlflow_port, site_port, docs=docs) as services:
            password = services.airflow_password()
            print(services.summary())
            if password:
                print(f"Airflow login: {AIRFLOW_USER} / {password}")
            mlflow_login = services.mlflow_login()
            print(f"MLflow login: {mlflow_login.username} / {mlflow_login.password}")
            print("Ctrl-C stops everything.", flush=True)
            while not stopping.wait(1.0):
                dead = [n for n, p in services.processes.items() if p.poll() is not None]
                if dead:
                    print(f"campaign-loop ui: {', '.join(dead)} exited; see {services.logs_dir}; stopping",
                          file=sys.stderr)
                    return 1
            print("Stopping...", flush=True)
        return 0
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"campaign-loop ui: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
