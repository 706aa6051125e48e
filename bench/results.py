"""What every benchmark writes: the machine it ran on, and its current table in bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        ram = f"{mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration):
        ram = "unknown RAM"
    return f"{os.cpu_count()} CPUs ({cpu}), {ram}, Python {platform.python_version()}"


def head_commit() -> str:
    """The short hash of the checkout the benchmark ran on, for its table's Commit line."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=RESULTS.parent, check=False)
    return out.stdout.strip() or "unknown"


def home_world(settings: Any, customers: int, detail: str = "") -> list[str]:
    """The machine and date lines of a benchmark that replays a home's world (its seed, size and budget)."""
    return [
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; world: the home's (seed {settings.seed}, "
        f"{customers:,} customers, budget {settings.budget:,.0f}){detail}",
    ]


def write_section(text: str, heading: str | None = None, *, within: str | None = None) -> None:
    """Make ``text`` the body of ``heading`` in RESULTS.md, replacing what a previous run wrote there: one
    current table per benchmark.

    ``heading`` is a ``## `` section, or a ``### `` subsection of the section ``within``; when omitted,
    ``text``'s first line is the heading. A body ends at the next ``## `` or ``### `` line, so a rerun of a
    section's benchmark keeps the subsections other benchmarks write under it. A heading not there yet is
    added at the end of ``within`` (or of the file).
    """
    lines = text.strip("\n").splitlines()
    if heading is None:
        if not lines or not lines[0].startswith(("## ", "### ")):
            raise ValueError("write_section needs a heading: none given and the text does not start with one")
        heading, lines = lines[0], lines[1:]
    body = "\n".join(lines).strip("\n").splitlines()
    current = (RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n").rstrip("\n").splitlines()
    if heading in current:
        start = current.index(heading)
        end = _next_heading(current, start + 1, ("## ", "### "))
    else:
        if within is not None and within not in current:
            raise ValueError(f"{RESULTS.name} has no section {within!r} to hold {heading!r}")
        end = len(current) if within is None else _next_heading(current, current.index(within) + 1, ("## ",))
        while not current[end - 1].strip():
            end -= 1
        current[end:end] = ["", heading]
        start = end + 1
        end = start + 1
    before = current[:start + 1]
    after = current[end:]
    while after and not after[0].strip():
        after.pop(0)
    RESULTS.write_text("\n".join(before + [""] + body + ([""] + after if after else [])) + "\n")


def _next_heading(lines: list[str], start: int, prefixes: tuple[str, ...]) -> int:
    """The index of the first line from ``start`` that opens a heading of ``prefixes``, else the end."""
    return next((i for i in range(start, len(lines)) if lines[i].startswith(prefixes)), len(lines))
