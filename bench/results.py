"""What every benchmark writes: the machine it ran on, and its table appended to bench/RESULTS.md."""

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


def append_section(text: str, heading: str | None = None) -> None:
    """Append ``text`` at the end of the section ``heading`` of RESULTS.md (its first line when it is one).

    A section that does not exist yet is created at the end, so reruns add dated tables to their own section.
    """
    lines = text.splitlines()
    if heading is None and lines and lines[0].startswith("## "):
        heading, text = lines[0], "\n".join(lines[1:]).strip("\n")
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if heading is None:
        RESULTS.write_text(current.rstrip("\n") + "\n\n" + text + "\n")
        return
    if heading not in current:
        current = current.rstrip("\n") + f"\n\n{heading}\n"
    start = current.index(heading) + len(heading)
    end = current.find("\n## ", start)
    end = len(current) if end < 0 else end
    rest = current[end:].lstrip("\n")
    RESULTS.write_text(current[:end].rstrip("\n") + "\n\n" + text + "\n" + ("\n" + rest if rest else ""))
