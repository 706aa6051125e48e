"""What every model's trainer hands to the shared logging and gating step, or raises when data is too thin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Trained:
    """A fitted model with its holdout metrics and how to score the champion on the same rows."""

    model: Any
    metrics: dict[str, float]
    champion_metrics_fn: Callable[[Any], dict[str, float]]  # scores a loaded champion on the same rows
    params: dict[str, Any]
    rows: dict[str, int]
    input_example: pd.DataFrame
    description: str
    train_window: tuple[date | None, date | None]
    plot_fn: Callable[[Path, Any | None], list[Path]] | None = None


class Skip(Exception):
    """Too little data for a model this cycle."""
