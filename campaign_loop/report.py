"""Plain-text tables for the terminal (the demo's and the CLI's output)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[format_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(line[i]) for line in cells)) for i, col in enumerate(columns)]
    numeric = [all(isinstance(row.get(col), int | float) or row.get(col) is None for row in rows) for col in columns]

    def render(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    lines = [render(columns), render(["-" * w for w in widths])]
    lines += [render(line) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def format_cell(value: Any) -> str:
    """A value as the terminal tables and the cycle report print it: thousands separators, 4 significant
    digits below 1, 2 decimals above, yes/no, and nothing for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return str(value)
