from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from campaign_loop.config import Settings

Land = Callable[[str, str | bytes], Path]
Query = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.landing_dir.mkdir(parents=True)
    return settings


@pytest.fixture
def land(settings: Settings) -> Land:
    """Write a landing file: land("orders/2026-01-05.csv", "header\\nrow\\n")."""

    def write(relpath: str, content: str | bytes) -> Path:
        path = settings.landing_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return write


@pytest.fixture
def query(settings: Settings) -> Query:
    def run(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()

    return run
