"""The landing directory: which files there are, which source and batch each belongs to.

Everything here only looks at the file system, so a malformed landing directory is reported
(as a ``LandingError``) before the warehouse is touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.contract import Contract

FileFormat = Literal["csv", "parquet"]
# Suffixes the readers understand; DuckDB's CSV reader decompresses .gz transparently.
_SUFFIXES: dict[str, FileFormat] = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}
_DOCS = "see docs/landing-contract.md"


class LandingError(Exception):
    """The landing directory or a file in it breaks the contract in a way no row-level quarantine can absorb.

    The message is one line naming the path and the fix; the CLI prints it and exits non-zero.
    """


@dataclass(frozen=True)
class LandingFile:
    source: str
    batch: str
    path: Path
    relpath: str  # relative to the landing directory, POSIX separators: the lineage value in raw._file
    format: FileFormat

    @property
    def slot(self) -> str:
        """The file's place in its batch; a later file in the same place is a correction of it."""
        return slot(self.relpath)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            # 1 MiB blocks: hashing a 100 MB export costs a fraction of a second and bounded memory.
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def _ignored(path: Path) -> bool:
    # Hidden files (.DS_Store) and Hadoop/Spark markers (_SUCCESS, _committed_*) are not data.
    return path.name.startswith((".", "_"))


def _format_of(path: Path) -> tuple[str, FileFormat] | None:
    """(name without the suffix, format), or None when the suffix is not a landing format."""
    name = path.name.lower()
    for suffix, fmt in sorted(_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return path.name[: -len(suffix)], fmt
    return None


def slot(relpath: str) -> str:
    """``relpath`` without its format suffix: `orders/2026-01-05.csv` and `orders/2026-01-05.parquet` share one.

    A retailer re-sending a batch file, even converted to another format, means to replace it.
    """
    parsed = _format_of(Path(relpath))
    return relpath[: len(relpath) - len(Path(relpath).name)] + parsed[0] if parsed else relpath


def same_slot_error(first: LandingFile, second: LandingFile) -> LandingError:
    return LandingError(
        f"{first.path} and {second.path} are new versions of the same batch file {first.slot!r}; "
        f"keep only the one that is meant ({_DOCS}, \"Corrections\")"
    )


def check_sources(contract: Contract, sources: Sequence[str] | None) -> tuple[str, ...]:
    known = tuple(contract.sources)
    if sources is None:
        return known
    unknown = [s for s in sources if s not in contract.sources]
    if unknown:
        raise LandingError(
            f"unknown source(s) {', '.join(map(repr, unknown))} requested; known sources: {', '.join(known)}"
        )
    return tuple(dict.fromkeys(sources))


def discover(landing_dir: Path, contract: Contract, sources: Iterable[str]) -> list[LandingFile]:
    """Every landing file of the given sources, sorted by (source, batch, path) so runs are reproducible."""
    if not landing_dir.is_dir():
        raise LandingError(
            f"landing folder {landing_dir} does not exist; create it with one sub-folder per source "
            f"(e.g. {landing_dir / 'orders'}/<batch>.csv) or point CAMPAIGN_LOOP_HOME at the right home"
        )
    known = ", ".join(contract.sources)
    for entry in sorted(landing_dir.iterdir()):
        if _ignored(entry):
            continue
        if not entry.is_dir():
            raise LandingError(
                f"{entry}: files belong in a source folder, e.g. {landing_dir / 'orders' / entry.name}; "
                f"known sources: {known}"
            )
        if entry.name not in contract.sources:
            raise LandingError(
                f"{entry}: unknown source folder {entry.name!r}; rename it to one of the known sources: {known}"
            )

    files: list[LandingFile] = []
    for source in sources:
        folder = landing_dir / source
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(folder)
            if any(_ignored(Path(part)) for part in relative.parts):
                continue
            parsed = _format_of(path)
            if parsed is None:
                raise LandingError(
                    f"{path}: unsupported file format {path.suffix or '(no suffix)'!r}; "
                    f"export it as .csv or .parquet ({_DOCS})"
                )
            stem, fmt = parsed
            # <source>/<batch>.csv, or <source>/<batch>/<any>.csv for a batch split into parts.
            batch = relative.parts[0] if len(relative.parts) > 1 else stem
            files.append(LandingFile(source, batch, path, path.relative_to(landing_dir).as_posix(), fmt))
    return sorted(files, key=lambda f: (f.source, f.batch, f.relpath))


def missing_columns_error(file: LandingFile, missing: Sequence[str], what: str) -> LandingError:
    return LandingError(
        f"{file.path}: {what} {', '.join(missing)} of source {file.source!r} not in the file's header; "
        f"add the column(s) to the export ({_DOCS})"
    )
