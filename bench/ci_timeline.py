"""Where a `make test` run's wall time went, per xdist worker and test group (issue 25).

    .venv/bin/python bench/ci_timeline.py [--timeline test-artifacts/timeline] [--commit HASH] [--write]

Reads the spans tests/conftest.py records for every test (worker, xdist group, setup to teardown, CPU
seconds) and prints, per worker, its busy and CPU time and how long it stood idle at the end while another
still ran; then the groups by time, each with its worker. A group is what `--dist loadgroup` cannot split (a file, merged with
every file that shares its session world), so the longest group bounds the run's wall time from below, and
the idle tail says how much a better order or split would save. ``--write`` makes the tables the
subsection "Where the workers' time went" of bench/RESULTS.md's "make test on a fresh clone".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import head_commit, machine, write_section  # noqa: E402

SECTION = "## make test on a fresh clone (issue 25)"
HEADING = "### Where the workers' time went"
TIMELINE = Path(__file__).resolve().parents[1] / "test-artifacts" / "timeline"


@dataclass
class Group:
    """An xdist group's tests, summed: the worker that ran them, when the first started, seconds and CPU."""

    worker: str
    start: float
    seconds: float = 0.0
    cpu: float = 0.0
    tests: int = 0


def load(timeline: Path) -> list[dict[str, object]]:
    spans = [json.loads(line) for path in sorted(timeline.glob("*.jsonl")) for line in path.read_text().splitlines()]
    if not spans:
        raise SystemExit(f"no test spans under {timeline}: run `make test` (or pytest) first")
    return spans


def report(spans: list[dict[str, object]], top: int = 15, commit: str | None = None) -> str:
    first = min(float(s["start"]) for s in spans)
    last = max(float(s["end"]) for s in spans)
    workers: dict[str, list[dict[str, object]]] = defaultdict(list)
    groups: dict[str, Group] = {}
    for span in spans:
        workers[str(span["worker"])].append(span)
        group = groups.setdefault(str(span["group"]), Group(str(span["worker"]), float(span["start"])))
        group.seconds += float(span["end"]) - float(span["start"])
        group.cpu += float(span.get("cpu") or 0.0)  # older timelines lack it
        group.tests += 1
        group.start = min(group.start, float(span["start"]))
    lines = [
        "Command: `.venv/bin/python bench/ci_timeline.py --write` after `make test`  ",
        f"Commit: {commit or head_commit()}; machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"{len(spans)} tests, first start to last end {last - first:,.0f} s (pytest's collection and start-up "
        "come before it).",
        "",
        "| worker | tests | busy s | CPU s | idle s between tests | idle s at the end |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, mine in sorted(workers.items()):
        busy = sum(float(s["end"]) - float(s["start"]) for s in mine)
        cpu = sum(float(s.get("cpu") or 0.0) for s in mine)
        end = max(float(s["end"]) for s in mine)
        lines.append(f"| {name} | {len(mine)} | {busy:,.0f} | {cpu:,.0f} | {end - first - busy:,.0f} "
                     f"| {last - end:,.0f} |")
    lines += ["", f"The {top} longest groups (setup to teardown of their tests, summed; CPU of the worker and the "
              "subprocesses it reaped):", "",
              "| group | worker | tests | seconds | CPU s | started at s |", "|---|---|---:|---:|---:|---:|"]
    for name, group in sorted(groups.items(), key=lambda kv: -kv[1].seconds)[:top]:
        lines.append(f"| `{name}` | {group.worker} | {group.tests} | {group.seconds:,.0f} | {group.cpu:,.0f} "
                     f"| {group.start - first:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeline", type=Path, default=TIMELINE)
    parser.add_argument("--commit", help="the commit the tests ran on, when not this checkout's (a CI clone's)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = report(load(args.timeline), commit=args.commit)
    print(text)  # noqa: T201
    if args.write:
        write_section(text, HEADING, within=SECTION)


if __name__ == "__main__":
    main()
