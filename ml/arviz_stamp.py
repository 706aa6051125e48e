"""ArviZ's once-a-day import stamp, written before ArviZ writes it.

ArviZ 0.23 (under PyMC and pymc-marketing) writes ``<cache>/arviz/daily_warning`` on its first import of a day
through a fixed temporary name, ``daily_warning.tmp``, then renames it. Two processes importing it at once (the
loop's parallel Airflow tasks, test workers, a benchmark's policies) race on that name, and the loser's import
raises ``FileNotFoundError``: a CLV training failed so on 2026-12-07. :func:`settle_arviz_stamp` writes today's
stamp under a name of its own first, so ArviZ finds it and writes nothing. What ArviZ would have said once that
day, a notice of its coming 1.0 refactor, is not shown.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from platformdirs import user_cache_dir


def stamp_path() -> Path:
    """Where ArviZ keeps the stamp (``platformdirs.user_cache_dir("arviz", "arviz")``, as it does)."""
    return Path(user_cache_dir("arviz", "arviz")) / "daily_warning"


def settle_arviz_stamp() -> None:
    """Today's stamp in place before the process first imports ArviZ; nothing once it has."""
    if "arviz" in sys.modules:
        return
    stamp, today = stamp_path(), date.today().isoformat()
    try:
        if stamp.read_text().strip() == today:
            return
    except (OSError, ValueError):
        pass
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name per writer, so concurrent writers never rename each other's file.
        with tempfile.NamedTemporaryFile("w", dir=stamp.parent, prefix=".daily_warning.", delete=False) as tmp:
            tmp.write(today)
        os.replace(tmp.name, stamp)
    except OSError:
        pass  # an unwritable cache: ArviZ's own write fails the same way with or without us
