"""The pseudonymisation key: a retailer's run refuses to start without its own; a demo uses the public
development key and says so, in its output and on every cycle report."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest

from campaign_loop.config import Settings
from campaign_loop.dbt_duckdb_plugin import (
    DEMO_ENV,
    DEV_PII_KEY,
    PII_KEY_ENV,
    MissingPiiKeyError,
    Plugin,
    hmac_hex,
    pii_key,
    uses_dev_key,
)


@pytest.fixture()
def no_key(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(PII_KEY_ENV, raising=False)
    monkeypatch.delenv(DEMO_ENV, raising=False)
    return monkeypatch


def test_a_retailers_run_without_a_key_is_refused_with_how_to_make_one(no_key: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingPiiKeyError) as refused:
        uses_dev_key(demo=False)
    message = str(refused.value)
    assert PII_KEY_ENV in message and "secrets.token_hex(32)" in message and "demo=false" in message


def test_the_dbt_plugin_refuses_when_the_environment_says_it_is_no_demo(no_key: pytest.MonkeyPatch) -> None:
    # dbt runs in a subprocess that knows Settings only through CAMPAIGN_LOOP_* variables.
    no_key.setenv(DEMO_ENV, "false")
    with pytest.raises(MissingPiiKeyError):
        pii_key()
    with pytest.raises(MissingPiiKeyError):
        Plugin("campaign_loop", {})


def test_a_key_is_used_whatever_the_mode(no_key: pytest.MonkeyPatch) -> None:
    no_key.setenv(PII_KEY_ENV, "retailer-secret")
    no_key.setenv(DEMO_ENV, "false")
    assert uses_dev_key(demo=False) is False and uses_dev_key(demo=True) is False
    assert pii_key() == b"retailer-secret"
    assert hmac_hex(pii_key(), "a@b.c") != hmac_hex(DEV_PII_KEY.encode(), "a@b.c")


def test_a_demo_uses_the_development_key_and_warns(no_key: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert uses_dev_key(demo=True) is True
    with caplog.at_level(logging.WARNING):
        assert pii_key() == DEV_PII_KEY.encode()  # no CAMPAIGN_LOOP_DEMO: Settings' default, a demo
    assert PII_KEY_ENV in caplog.text and "reverse" in caplog.text


def test_the_cli_refuses_a_retailers_run_without_a_key(no_key: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from campaign_loop.cli import main

    assert main(["ingest", "--home", str(tmp_path), "--demo", "false"]) == 2
    err = capsys.readouterr().err
    assert PII_KEY_ENV in err and "token_hex" in err
    assert not (tmp_path / "warehouse").exists()  # refused before anything ran

    no_key.setenv(PII_KEY_ENV, "retailer-secret")
    main(["ingest", "--home", str(tmp_path), "--demo", "false"])
    assert PII_KEY_ENV not in capsys.readouterr().err


def test_the_demo_says_loudly_that_it_uses_the_development_key(no_key: pytest.MonkeyPatch, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from campaign_loop import demo

    @contextlib.contextmanager
    def no_airflow(*args: object, **kwargs: object):
        raise demo.CycleFailed("stopped by the test before Airflow starts")
        yield

    no_key.setattr(demo, "airflow_session", no_airflow)
    assert demo.run_demo(Settings(home=tmp_path, cycles=1)) == 1
    out = capsys.readouterr().out
    assert f"WARNING: {PII_KEY_ENV} is not set" in out and "!!!!!!!!" in out

    no_key.setenv(PII_KEY_ENV, "demo-secret")
    demo.run_demo(Settings(home=tmp_path, cycles=1))
    assert PII_KEY_ENV not in capsys.readouterr().out


def test_the_cycle_report_warns_while_the_development_key_is_in_use(no_key: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from campaign_loop.cycle_report import write_report

    settings = Settings(home=tmp_path)
    page = write_report(settings, 0, airflow_url="http://127.0.0.1:1", mlflow_url="http://127.0.0.1:2").read_text()
    assert "id='dev-pii-key'" in page and PII_KEY_ENV in page

    no_key.setenv(PII_KEY_ENV, "retailer-secret")
    page = write_report(settings, 0, airflow_url="http://127.0.0.1:1", mlflow_url="http://127.0.0.1:2").read_text()
    assert "dev-pii-key" not in page


def test_every_task_of_a_retailers_dag_run_refuses_without_a_key(no_key: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util
    import sys

    import pendulum

    from campaign_loop.dbt import MANIFEST_PATH, parse_project

    if not MANIFEST_PATH.exists():  # a fresh clone: the DAG renders its dbt tasks from the manifest
        parse_project(Settings())
    dags = Path(__file__).resolve().parents[2] / "dags" / "campaign_feedback_loop.py"
    spec = importlib.util.spec_from_file_location("campaign_feedback_loop_pii_test", dags)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    no_key.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    context = {"params": {}, "logical_date": pendulum.datetime(2026, 1, 12, tz="UTC")}
    no_key.setattr(module, "get_current_context", lambda: context)
    no_key.setenv("CAMPAIGN_LOOP_HOME", str(tmp_path))

    no_key.setenv("CAMPAIGN_LOOP_DEMO", "false")
    with pytest.raises(MissingPiiKeyError):
        module._run()
    no_key.setenv(PII_KEY_ENV, "retailer-secret")
    settings, _ = module._run()
    assert settings.demo is False


def test_a_retailers_spark_build_without_a_key_is_refused(no_key: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Spark reads the key inside its JVM, where the Python checks never look; dbt refuses at compile time,
    # so no Spark session is needed to see it.
    import dbt.adapters.spark  # noqa: F401 (the spark group, which make test installs: without it this fails, not skips)

    from campaign_loop.dbt import run_dbt

    def compile_hash(demo: bool):
        return run_dbt(Settings(home=tmp_path, demo=demo), "compile", "--target", "spark", "--no-populate-cache",
                       "--inline", "select {{ pseudonymize(\"'a@b.c'\") }} as h")

    refused = compile_hash(demo=False)
    assert refused.returncode != 0, refused.stdout[-2000:]
    assert f"{PII_KEY_ENV} is not set" in refused.stdout and "token_hex" in refused.stdout, refused.stdout[-2000:]

    demo = compile_hash(demo=True)
    assert demo.returncode == 0, demo.stdout[-2000:]
    assert DEV_PII_KEY in demo.stdout  # the fallback the demo keeps
