"""Every MLflow server the platform starts runs MLflow's basic-auth app: moving a model's alias (what the next
plan is designed with) needs the home's login; without it the server refuses.

The server here is the one `make demo`, `campaign-loop run` and `backfill` start (runner.mlflow_server, over
ml.tracking.start_server); `campaign-loop ui` runs the same command line with the same environment."""

from __future__ import annotations

import base64
import json
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from campaign_loop.runner import mlflow_server, tracking_env
from ml import tracking

pytestmark = pytest.mark.slow  # an MLflow server start: ~30-50 s on two busy cores

MODEL = "uplift"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path_factory.mktemp("mlflow-auth"))
    # Two versions of a model, written to the store before the server starts (as training leaves them).
    uri = tracking.configure(settings)
    store = MlflowClient(tracking_uri=uri, registry_uri=uri)
    store.create_registered_model(MODEL)
    for _ in range(2):
        store.create_model_version(MODEL, source=tracking.artifact_root(settings).resolve().as_uri())
    store.set_registered_model_alias(MODEL, "champion", "1")

    with mlflow_server(settings) as url:
        yield settings, url


def _set_alias(url: str, version: str, login: tuple[str, str] | None) -> int:
    """POST the registry's set-alias call; the HTTP status."""
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/registered-models/alias", method="POST",
        data=json.dumps({"name": MODEL, "alias": "champion", "version": version}).encode(),
        headers={"Content-Type": "application/json"})
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _champion(settings: Settings) -> str:
    from mlflow import MlflowClient

    uri = tracking.tracking_uri(settings)
    return str(MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(MODEL).aliases["champion"])


def test_an_alias_change_without_a_login_is_refused(server: tuple[Settings, str]) -> None:
    settings, url = server
    assert _set_alias(url, "2", None) == 401
    assert _set_alias(url, "2", ("admin", "not-the-password")) == 401
    assert _champion(settings) == "1"


def test_an_alias_change_with_the_homes_login_works(server: tuple[Settings, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings, url = server
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(MlflowException):
        client.set_registered_model_alias(MODEL, "champion", "2")
    # What the runner gives the Airflow tasks of the demo's, `run`'s and `backfill`'s cycles.
    env = tracking_env(settings, url)
    assert (env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"]) == (url, url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client.set_registered_model_alias(MODEL, "champion", "2")
    assert _champion(settings) == "2"
    assert str(client.get_registered_model(MODEL).aliases["champion"]) == "2"
    login = tracking.server_credentials(settings)
    assert _set_alias(url, "1", (login.username, login.password)) == 200
    assert _champion(settings) == "1"


def test_the_login_is_generated_once_per_home_and_private(server: tuple[Settings, str], tmp_path: Path) -> None:
    settings, _ = server
    for path in (tracking.credentials_path(settings), tracking.auth_config_path(settings)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert tracking.server_credentials(settings) == tracking.server_credentials(settings)
    other = tracking.server_credentials(Settings(home=tmp_path))
    assert other.password != tracking.server_credentials(settings).password


def test_the_ui_gives_its_airflow_tasks_the_login(server: tuple[Settings, str]) -> None:
    from campaign_loop.ui import airflow_ui_env

    settings, url = server
    env = airflow_ui_env(settings, 8080, url)
    login = tracking.server_credentials(settings)
    assert env["MLFLOW_TRACKING_URI"] == url
    assert (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]) == (login.username, login.password)


def test_a_cached_login_lets_no_other_password_in(server: tuple[Settings, str]) -> None:
    """The server caches a login it verified (ml.tracking.auth_config_path): the cache must key on the password."""
    settings, url = server
    login = tracking.server_credentials(settings)
    assert _set_alias(url, "1", (login.username, login.password)) == 200
    assert _set_alias(url, "2", (login.username, login.password + "x")) == 401
    assert _set_alias(url, "2", (login.username, login.password[:-1])) == 401
    assert _champion(settings) == "1"
