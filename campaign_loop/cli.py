"""`campaign-loop`: one command line over the functions the Airflow DAG calls.

Every Settings key is a flag of the same name (``--customers``, ``--holdout_share`` or
``--holdout-share``); a flag overrides the environment, which overrides the default.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from campaign_loop.config import NO_TELEMETRY, Settings, load_settings
from campaign_loop.report import format_table


def _parser_type(annotation: Any) -> Callable[[str], Any] | None:
    """The argparse converter for a Settings field, or None for types the CLI does not offer."""
    optional = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) and len(optional) == 1:
        annotation = optional[0]
    if annotation is bool:
        return _boolean
    if annotation in (int, float, str, Path):
        return annotation
    if annotation is date:
        return date.fromisoformat
    if typing.get_origin(annotation) in (typing.Literal, typing.Annotated, tuple, dict):
        return str  # Settings validates it (a tuple or a mapping arrives comma-separated)
    return None


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (also CAMPAIGN_LOOP_<KEY> in the environment)")
    for name, field in Settings.model_fields.items():
        convert = _parser_type(field.annotation)
        if convert is None:
            continue
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else None
        group.add_argument(
            *flags, dest=name, type=convert, default=None, choices=choices,
            # argparse expands %-formats in help texts: a literal % (as in "80 % power") is doubled.
            help=f"{field.description} (default: {field.get_default(call_default_factory=True)})".replace("%", "%%"),
        )


def _settings(args: argparse.Namespace) -> Settings:
    from campaign_loop.dbt_duckdb_plugin import uses_dev_key

    settings = load_settings(**{name: getattr(args, name, None) for name in Settings.model_fields})
    uses_dev_key(settings.demo)  # a run on a retailer's data refuses to start without its own PII key
    return settings


def _cmd_simulate(args: argparse.Namespace) -> int:
    from campaign_loop import pipeline

    settings = _settings(args)
    cycles = range(args.cycle, args.cycle + 1) if args.cycle is not None else range(settings.cycles)
    for cycle in cycles:
        summary = pipeline.simulate(settings, cycle)
        rows = ", ".join(f"{source} {count:,}" for source, count in sorted(summary["rows"].items()))
        print(f"cycle {cycle} ({summary['cycle_id']}): {rows}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest import ingest

    report = ingest(_settings(args), sources=args.source or None)
    print(format_table(report.to_rows()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from campaign_loop.demo import run_demo

    return run_demo(_settings(args), fresh=args.fresh)


def _cmd_init(args: argparse.Namespace) -> int:
    from campaign_loop.own_data import init_home

    for path in init_home(args.home):
        print(f"wrote {path}")
    print(f"next: put your exports under {Settings(home=args.home).landing_dir}, or split a history export with "
          "`campaign-loop import-history`; see docs/own-data.md")
    return 0


def _explicit_start_date(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether the calendar was fixed by the user (flag, environment or the home's settings file)."""
    import os
    import re

    from campaign_loop.config import settings_file

    path = settings_file(settings.root)
    in_file = path.is_file() and re.search(r"^CAMPAIGN_LOOP_START_DATE=", path.read_text(), flags=re.M)
    return args.start_date is not None or "CAMPAIGN_LOOP_START_DATE" in os.environ or bool(in_file)


def _cmd_import_history(args: argparse.Namespace) -> int:
    from campaign_loop.own_data import OwnDataError, import_history

    files: dict[str, Path] = {}
    for pair in args.files:
        source, sep, path = pair.partition("=")
        if not sep or not source or not path:
            raise OwnDataError(f"expected <source>=<file>, got {pair!r} (e.g. orders=export/orders.csv)")
        files[source.strip()] = Path(path)
    settings = _settings(args)
    result = import_history(settings, files, explicit_start=_explicit_start_date(args, settings))
    if result.start_date_written:
        print(f"start_date {result.start_date} (the Monday on or before your first history day) written to "
              "the home's settings file")
    rows = [{"source": i.source, "rows": i.rows, "batches": i.batches, "first_batch": i.first_batch,
             "last_batch": i.last_batch, "before_start_date": i.before_start_rows, "undated": i.undated_rows}
            for i in result.sources]
    print(format_table(rows))
    if any(i.undated_rows for i in result.sources):
        print("undated rows land in the first batch; ingest quarantines each with its reason")
    return 0


def _cycles_settings(args: argparse.Namespace) -> Settings:
    from campaign_loop.own_data import OwnDataError

    settings = _settings(args)
    if settings.demo:
        raise OwnDataError(
            "this command runs cycles on a retailer's own data, and demo is on: set CAMPAIGN_LOOP_DEMO=false in "
            f"{settings.root}/campaign-loop.env (`campaign-loop init` writes it) or pass --demo false; "
            "the simulated retailer runs with `campaign-loop demo`")
    return settings


def _cmd_run(args: argparse.Namespace) -> int:
    from campaign_loop.own_data import cycles_to_run

    settings = _cycles_settings(args)
    return _run_cycles(settings, cycles_to_run(settings, None, args.cycle_id))


def _cmd_backfill(args: argparse.Namespace) -> int:
    from campaign_loop.own_data import cycles_to_run

    settings = _cycles_settings(args)
    return _run_cycles(settings, cycles_to_run(settings, getattr(args, "from"), args.to))


def _run_cycles(settings: Settings, cycles: Sequence[int]) -> int:
    from campaign_loop.own_data import sources_missing
    from campaign_loop.pipeline import batch_counts
    from campaign_loop.runner import CycleFailed, CycleRun, run_cycles

    log = settings.root / "logs" / "cycles.log"
    missing = sources_missing(settings, cycles)
    print(f"Campaign Loop: {len(cycles)} cycle(s) {settings.cycle_key(cycles[0])} .. {settings.cycle_key(cycles[-1])} "
          f"through Airflow, home {settings.root}; Airflow's output: {log}")

    def show(run: CycleRun) -> None:
        print(f"\nCycle {run.cycle_id} (run at {run.logical_date}, {run.seconds:.0f} s)")
        print(format_table(batch_counts(settings, run.cycle)))
        if gaps := missing[run.cycle_id]:
            print(f"landed last cycle but not this one: {', '.join(sorted(gaps))}")
        nxt = settings.cycle_key(run.cycle + 1)
        print(f"next campaign: {settings.plan_path(nxt)} (summary: {settings.plan_path(nxt).with_suffix('.summary.md')})")
        print(f"cycle report: {settings.reports_dir / run.cycle_id / 'index.html'}")

    try:
        run_cycles(settings, cycles, log, after=show)
    except CycleFailed as failure:
        print(f"campaign-loop: {failure}", file=sys.stderr)
        return 1
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from campaign_loop.ui import run_ui

    return run_ui(_settings(args), args.airflow_port, args.mlflow_port, args.site_port, docs=not args.no_docs)


def _cmd_dbt(args: argparse.Namespace) -> int:
    from campaign_loop.dbt import run_dbt

    if not args.dbt_args:
        raise SystemExit("campaign-loop dbt: name a dbt command, e.g. campaign-loop dbt build --select dim_customers")
    return run_dbt(_settings(args), *args.dbt_args, capture=False).returncode


def _cmd_deploy(args: argparse.Namespace) -> int:
    from campaign_loop.deploy import run_deploy

    return run_deploy(_settings(args), args.airflow_port, args.mlflow_port, args.site_port)


def _cmd_bench_loop_value(args: argparse.Namespace) -> int:
    from ml.policies import POLICIES, bench_loop_value

    settings = _settings(args)
    policies = tuple(p for p in args.policies.split(",") if p) if args.policies else POLICIES
    bench_loop_value(settings, settings.cycles, args.json, policies, out_dir=args.out,
                     budget_per_customer=args.budget_per_customer, jobs=args.jobs)
    return 0


def _add_service_commands(commands: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """`ui` and `deploy`: the long-running surfaces, each with its ports."""
    from campaign_loop import ui as surfaces  # stdlib only: cheap at parse time

    ui = commands.add_parser("ui", help="Serve Airflow, MLflow, dbt docs and the reports on 127.0.0.1 until Ctrl-C.")
    ui.add_argument("--airflow-port", type=int, default=surfaces.DEFAULT_AIRFLOW_PORT, help="Airflow UI and API port.")
    ui.add_argument("--mlflow-port", type=int, default=surfaces.DEFAULT_MLFLOW_PORT, help="MLflow UI port.")
    ui.add_argument("--site-port", type=int, default=surfaces.DEFAULT_SITE_PORT, help="dbt docs, reports and Data Docs port.")
    ui.add_argument("--no-docs", action="store_true", help="Serve the dbt docs already generated; skip `dbt docs generate`.")
    ui.set_defaults(func=_cmd_ui)

    deploy = commands.add_parser(
        "deploy", help="The distributed profile: Airflow on PostgreSQL with the CeleryExecutor (Redis) and its "
                       "workers, and MLflow on PostgreSQL, on 127.0.0.1 until Ctrl-C (docs/deploy.md).")
    deploy.add_argument("--airflow-port", type=int, default=surfaces.DEFAULT_AIRFLOW_PORT, help="Airflow UI and API port.")
    deploy.add_argument("--mlflow-port", type=int, default=surfaces.DEFAULT_MLFLOW_PORT, help="MLflow UI port.")
    deploy.add_argument("--site-port", type=int, default=surfaces.DEFAULT_SITE_PORT, help="Reports and Data Docs port.")
    deploy.set_defaults(func=_cmd_deploy)
    return ui, deploy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign-loop", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="Run the simulated retailer: land files for cycles.")
    simulate.add_argument("--cycle", type=int, default=None, help="Only this cycle (default: cycles 0..cycles-1).")
    simulate.set_defaults(func=_cmd_simulate)

    ingest = commands.add_parser("ingest", help="Load new landing files into the warehouse's raw layer.")
    ingest.add_argument("--source", action="append", help="Only this source folder (repeatable).")
    ingest.set_defaults(func=_cmd_ingest)

    demo = commands.add_parser("demo", help="Run `cycles` campaign cycles through Airflow on the embedded default.")
    demo.add_argument("--fresh", action="store_true", help="Start from an empty home directory.")
    demo.set_defaults(func=_cmd_demo)

    init = commands.add_parser("init", help="Write a starter home for a retailer's own data: settings file, "
                                            "landing folders and a README of what to put where.")
    init.add_argument("--home", type=Path, required=True, help="The home directory to create.")
    init.set_defaults(func=_cmd_init)

    history = commands.add_parser(
        "import-history", help="Land long exports as one batch per cycle (dated by each row's own time).")
    history.add_argument("files", nargs="+", metavar="SOURCE=FILE",
                         help="An export per source, e.g. orders=orders.csv order_lines=lines.csv.")
    history.set_defaults(func=_cmd_import_history)

    run = commands.add_parser("run", help="Run one cycle on the retailer's landed data through Airflow "
                                          "(default: the one after the last published cycle).")
    run.add_argument("--cycle_id", "--cycle-id", type=date.fromisoformat, default=None,
                     help="The cycle to run: the ISO date it starts (default: the cycle after the last published "
                          "one; on a new warehouse, the newest landed batch).")
    run.set_defaults(func=_cmd_run)

    backfill = commands.add_parser("backfill", help="Run the cycles from --from to --to in order through Airflow.")
    backfill.add_argument("--from", type=date.fromisoformat, required=True, help="First cycle_id to run.")
    backfill.add_argument("--to", type=date.fromisoformat, default=None,
                          help="Last cycle_id to run (default: the newest landed batch).")
    backfill.set_defaults(func=_cmd_backfill)

    dbt = commands.add_parser(
        "dbt", help="dbt on this home's warehouse with its settings and profile; while a cycle runs, a "
                    "command that opens the warehouse says which cycle holds it and exits 2.")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="DBT_ARGS",
                     help="The dbt command and its flags, after any campaign-loop flags, e.g. build --select +dim_customers.")
    dbt.set_defaults(func=_cmd_dbt)

    ui, deploy = _add_service_commands(commands)

    bench = commands.add_parser("bench", help="Benchmarks that need the whole loop.")
    # --cycles (a Settings key) is the number of designed cycles each policy runs.
    benches = bench.add_subparsers(dest="bench", required=True)
    loop_value = benches.add_parser(
        "loop-value", help="Campaign policies side by side over K cycles, valued by the simulator's truth.")
    loop_value.add_argument("--json", type=Path, default=None, help="Write the rows here as JSON.")
    loop_value.add_argument("--policies", default=None,
                            help="Comma-separated (default: all: random, rfm, propensity, platform, oracle).")
    loop_value.add_argument("--budget-per-customer", "--budget_per_customer", type=float, default=0.05,
                            help="Cycle budget per customer; replaces --budget (default: 0.05: it binds the baselines, which fill it).")
    loop_value.add_argument("--jobs", type=int, default=2, help="Policies run at once, each in a process (default: 2).")
    loop_value.add_argument("--out", type=Path, default=None, help="Worlds folder (default: <home>/bench/loop_value).")
    loop_value.set_defaults(func=_cmd_bench_loop_value)

    for sub in (simulate, ingest, demo, history, run, backfill, dbt, ui, deploy, loop_value):
        _add_settings_flags(sub)
    loop_value.set_defaults(customers=100_000)  # the benchmark's default world
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from campaign_loop.dbt_duckdb_plugin import MissingPiiKeyError
    from campaign_loop.own_data import OwnDataError
    from ingest import LandingError
    from ingest.lock import WarehouseBusy

    # Before any command imports MLflow in this process (`bench loop-value` trains and designs here), as
    # runner.airflow_env does for every task: the platform reports its use to no one.
    os.environ.update(NO_TELEMETRY)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MissingPiiKeyError as error:
        print(f"campaign-loop: {error}", file=sys.stderr)
        return 2
    except (LandingError, OwnDataError, WarehouseBusy) as error:
        print(f"campaign-loop: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(f"campaign-loop: invalid settings: {problems}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
