"""Open the DuckDB warehouse file: one writer at a time, lock conflicts retried for a bounded time.

DuckDB lets only one process open a file for writing, and a read-write open fails while any
other process holds it. Writers therefore retry a lock conflict for a bounded time (Dagster's
`duckdb_writer` pool keeps our own steps from colliding), and notebooks read a snapshot instead
of the live file (`snapshot.py`).
"""

import os
import time
from pathlib import Path

import duckdb


class WarehouseLockedError(Exception):
    """Another process holds the DuckDB file for longer than we are willing to wait."""


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set" in text)


def open_connection(
    path: Path, *, read_only: bool = False, wait_seconds: float = 60.0
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying lock conflicts with backoff for at most `wait_seconds`."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc) or time.monotonic() >= deadline:
                if _is_lock_conflict(exc):
                    raise WarehouseLockedError(
                        f"the warehouse {str(path)!r} stayed locked by another process for "
                        f"{wait_seconds:.0f} s ({exc}). Close notebooks or tools that opened "
                        "the live file (notebooks should use responsys_assets.notebook), "
                        "then re-run."
                    ) from None
                raise
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
    if not read_only and path.exists():
        os.chmod(path, 0o600)
    return conn
