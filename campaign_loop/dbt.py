"""Where the dbt project lives and how every caller (DAG, CLI, tests) runs it: one environment, one place."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from campaign_loop.config import Settings

PROJECT_DIR = Path(os.environ.get("CAMPAIGN_LOOP_DBT_PROJECT_DIR", Path(__file__).resolve().parents[1] / "dbt_project"))
MANIFEST_PATH = PROJECT_DIR / "target" / "manifest.json"
PROFILE_NAME = "campaign_loop"
DAG_TARGET = "duckdb"  # the profile target the DAG's dbt tasks run on, whatever CAMPAIGN_LOOP_DBT_TARGET says
DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})  # what dbt writes into the project, not its source
# dbt commands that never open the warehouse: they need no writer lock, so the DAG's manifest can be parsed
# (and the project listed) while a cycle runs.
NO_WAREHOUSE_COMMANDS = frozenset({"parse", "deps", "clean", "list", "ls", "init"})
DBT_TASK_GROUP = "dbt"  # the DAG's Cosmos task group: Cosmos names its cache directory after the DAG and the group


def dbt_executable() -> Path:
    return Path(sys.executable).with_name("dbt")


def dbt_env(settings: Settings) -> dict[str, str]:
    """The variables profiles.yml and dbt_project.yml read, from the typed settings."""
    return {
        "CAMPAIGN_LOOP_HOME": str(settings.root),
        "CAMPAIGN_LOOP_START_DATE": settings.start_date.isoformat(),
        "CAMPAIGN_LOOP_CYCLE_DAYS": str(settings.cycle_days),
        "CAMPAIGN_LOOP_DEFAULT_MARGIN_RATE": repr(settings.default_margin_rate),
        "CAMPAIGN_LOOP_TIMEZONE": settings.timezone,
        # Whether a run without CAMPAIGN_LOOP_PII_KEY may use the development key (the DuckDB plugin, Spark's
        # require_pii_key): Settings may have it from a flag the environment does not carry.
        "CAMPAIGN_LOOP_DEMO": "true" if settings.demo else "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_dbt(settings: Settings, *args: str, target_path: Path | None = None,
            capture: bool = True) -> subprocess.CompletedProcess[str]:
    """dbt as a subprocess: an in-process dbt connection would keep the DuckDB file locked for later readers.

    dbt's artefacts (manifest, run results, partial-parse state) go to ``target_path``, else to the
    environment's DBT_TARGET_PATH, else to the home's own ``dbt/target``: two homes built at once (two
    test workers, a benchmark beside the demo) must never write one another's manifest.

    A command that opens the warehouse holds its writer lock (ingest.lock) for its whole run, so a build
    started by hand while a cycle runs raises ``WarehouseBusy`` naming the cycle and since when, instead of
    failing mid-way on DuckDB's lock; the cycle's own dbt (its holder's token in the environment) runs under
    the cycle's lock. ``capture=False`` lets dbt's output through (a build run by hand).
    """
    env = os.environ | dbt_env(settings)
    env["DBT_TARGET_PATH"] = str(target_path or target_dir(settings))
    command = [str(dbt_executable()), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    subcommand = next((arg for arg in args if not arg.startswith("-")), "")
    if not opens_warehouse(subcommand, args, env):
        return subprocess.run(command, env=env, capture_output=capture, text=True)
    from ingest.lock import writer_lock

    with writer_lock(settings.warehouse_path, f"dbt {subcommand}"):
        return subprocess.run(command, env=env, capture_output=capture, text=True)


def target_dir(settings: Settings) -> Path:
    """Where dbt writes its artefacts unless told otherwise: the environment's DBT_TARGET_PATH, else the home's."""
    return Path(os.environ.get("DBT_TARGET_PATH", settings.root / "dbt" / "target"))


def opens_warehouse(subcommand: str, args: tuple[str, ...], env: dict[str, str]) -> bool:
    """Whether ``dbt <args>`` opens the DuckDB warehouse: every command but the few that only read the
    project, on the duckdb target (a PostgreSQL build leaves the warehouse file alone)."""
    if not subcommand or subcommand in NO_WAREHOUSE_COMMANDS:
        return False
    target = env.get("CAMPAIGN_LOOP_DBT_TARGET", "duckdb")  # profiles.yml's default target
    for i, arg in enumerate(args):
        if arg in ("--target", "-t") and i + 1 < len(args):
            target = args[i + 1]
        elif arg.startswith("--target="):
            target = arg.split("=", 1)[1]
    return target == "duckdb"


def parse_project(settings: Settings) -> Path:
    """Write the manifest Cosmos renders the DAG from, so parsing the DAG never runs dbt.

    The manifest is parsed in the home and moved into place in one rename: a DAG parsed meanwhile (by
    another home's run) reads the old manifest or the new one, never half of one. A manifest parsed from the
    same project files and variables is kept: `dbt parse` costs every command 10-40 s.
    """
    key = _manifest_key(settings)
    key_path = MANIFEST_PATH.with_name("manifest.key")
    if MANIFEST_PATH.exists() and key_path.exists() and key_path.read_text() == key:
        return MANIFEST_PATH
    # With the profile and target the DAG's tasks pass: dbt keeps a partial-parse state only for the same ones.
    result = run_dbt(settings, "parse", "--profile", PROFILE_NAME, "--target", DAG_TARGET)
    if result.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{result.stdout[-3000:]}")
    parsed = target_dir(settings) / "manifest.json"
    MANIFEST_PATH.parent.mkdir(parents=True, exist_ok=True)
    staged = MANIFEST_PATH.with_name(f".manifest.{os.getpid()}.json")
    shutil.copyfile(parsed, staged)
    os.replace(staged, MANIFEST_PATH)
    staged_key = key_path.with_name(f".manifest.{os.getpid()}.key")
    staged_key.write_text(key)
    os.replace(staged_key, key_path)  # after the manifest: a reader never pairs a new key with an old manifest
    return MANIFEST_PATH


def cosmos_cache_dir(settings: Settings) -> Path:
    """Cosmos's cache (AIRFLOW__COSMOS__CACHE_DIR), one per home. dbt's partial-parse state is valid only for the
    profile it was parsed with, which holds the home's warehouse path: in Cosmos's default, one /tmp/cosmos for
    the machine, each home's run left state the other's producer could not use, and it parsed in full (5 s)."""
    return settings.root / "dbt" / "cosmos"


def seed_partial_parse(settings: Settings, dag_id: str) -> None:
    """Hand the home's own `dbt parse` state to Cosmos, so a cycle's first dbt task parses only what changed.

    Cosmos copies the newer of its cache's state and the project's into each task's copy of the project;
    the home's ``dbt/target`` is neither, so without this the first task of every command parsed in full.
    """
    parsed = target_dir(settings)
    state = parsed / "partial_parse.msgpack"
    cached = cosmos_cache_dir(settings) / f"{dag_id}__{DBT_TASK_GROUP}" / "target"
    if not state.exists() or (
        (cached / state.name).exists() and (cached / state.name).stat().st_mtime >= state.stat().st_mtime
    ):
        return
    cached.mkdir(parents=True, exist_ok=True)
    for name in (state.name, "manifest.json"):  # Cosmos reads both from its cache
        staged = cached / f".{name}.{os.getpid()}"
        shutil.copy2(parsed / name, staged)  # copy2 keeps the mtime Cosmos compares with later states
        os.replace(staged, cached / name)


def _manifest_key(settings: Settings) -> str:
    """A digest of what the manifest is parsed from: every project file (not dbt's own output) and the
    settings dbt reads, the home's path aside (the graph Cosmos renders is the same for every home); no secret."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(PROJECT_DIR.rglob("*")):
        relative = path.relative_to(PROJECT_DIR)
        if path.is_file() and relative.parts[0] not in DBT_OUTPUT_DIRS:
            digest.update(f"{relative}\0".encode())
            digest.update(path.read_bytes())
    variables = dbt_env(settings)
    del variables["CAMPAIGN_LOOP_HOME"]
    for name in sorted(variables):
        digest.update(f"{name}={variables[name]}\0".encode())
    return digest.hexdigest()
