"""One writer of the warehouse at a time, and a second one told who holds it instead of a lock traceback.

DuckDB lets one process open a database file for writing; a second gets ``IOException: Could not set lock
on file``, which says nothing a person can act on. Writers (ingest, a cycle run, publish, dbt run through
``campaign_loop.dbt.run_dbt``) therefore take an advisory lock on a file beside the warehouse,
``<warehouse>.lock``, and write who they are into it: a second writer fails at once with "the warehouse ...
is in use by <what> since <time> (pid N)".

``flock`` is released by the kernel when its holder's process ends, so a crashed writer never leaves a
stale lock; the text in the file is only read while someone holds it. A cycle run holds the lock for the
whole cycle and exports ``CAMPAIGN_LOOP_LOCK_HOLDER`` (its token): the cycle's own tasks (ingest in
Airflow's process or a child of it) see their holder's token in the file and proceed without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

# Not a Settings key: set only by a lock holder for its own process tree, never by a person.
LOCK_HOLDER_ENV = "CAMPAIGN_LOOP_LOCK_HOLDER"
_DUCKDB_LOCK = "Could not set lock on file"
_DUCKDB_PID = re.compile(r"held in (?P<program>\S+) \(PID (?P<pid>\d+)\)")


class WarehouseBusy(RuntimeError):
    """Another writer holds the warehouse; the message names it, since when, and what to do."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def holder(warehouse: Path) -> dict[str, str]:
    """What the current holder wrote into the lock file ({} when nobody wrote, or it is mid-write)."""
    try:
        info = json.loads(lock_path(warehouse).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in info.items()} if isinstance(info, dict) else {}


def busy_message(warehouse: Path, info: dict[str, str]) -> str:
    what = info.get("what") or "another process"
    since = f" since {info['since']}" if info.get("since") else ""
    host = f" on {info['host']}" if info.get("host") and info["host"] != socket.gethostname() else ""
    pid = f" (pid {info['pid']}{host})" if info.get("pid") else ""
    return (f"the warehouse {warehouse} is in use by {what}{since}{pid}; wait for it to finish "
            f"(or stop that process) and run again")


@contextlib.contextmanager
def writer_lock(warehouse: Path, what: str) -> Iterator[str]:
    """Hold the warehouse's writer lock as ``what`` (e.g. "ingest", "cycle 2026-01-05"); yields the token.

    Raises ``WarehouseBusy`` at once when another writer holds it, unless that writer is this process
    tree's own holder (its token is in ``CAMPAIGN_LOOP_LOCK_HOLDER``): then the caller runs under it.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = holder(warehouse)
            inherited = os.environ.get(LOCK_HOLDER_ENV)
            if inherited and info.get("token") == inherited:
                yield inherited
                return
            raise WarehouseBusy(busy_message(warehouse, info)) from None
        token = uuid.uuid4().hex
        info = {"what": what, "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                "pid": os.getpid(), "host": socket.gethostname(), "token": token}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield token
        finally:
            os.ftruncate(fd, 0)  # a later reader must not take a finished run for the holder
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


@contextlib.contextmanager
def holding_for_children(warehouse: Path, what: str) -> Iterator[str]:
    """``writer_lock`` whose token this process and its children inherit, so the writers it starts run under it."""
    with writer_lock(warehouse, what) as token:
        previous = os.environ.get(LOCK_HOLDER_ENV)
        os.environ[LOCK_HOLDER_ENV] = token
        try:
            yield token
        finally:
            if previous is None:
                os.environ.pop(LOCK_HOLDER_ENV, None)
            else:
                os.environ[LOCK_HOLDER_ENV] = previous


def connect_writer(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse opened for writing; DuckDB's own lock conflict (a writer that took no advisory lock,
    such as the dbt executable run directly rather than through ``campaign-loop dbt``) becomes the same
    ``WarehouseBusy`` message."""
    try:
        return duckdb.connect(str(warehouse))
    except duckdb.IOException as error:
        if _DUCKDB_LOCK not in str(error):
            raise
        match = _DUCKDB_PID.search(str(error))
        info = holder(warehouse)
        if match and info.get("pid") != match["pid"]:
            # Not our lock's holder (or nobody took it): DuckDB's word on who it is is all there is.
            info = {"what": f"another process ({Path(match['program']).name})", "pid": match["pid"]}
        raise WarehouseBusy(busy_message(warehouse, info)) from None
