"""Read the warehouse from notebooks, read-only, never blocking a writer.

A DuckDB file: DuckDB lets one process write a file, and a read-write open fails while anyone
else holds it, even read-only. So the pipeline publishes `warehouse.snapshot.duckdb` after every
write (`warehouse.snapshot.publish_snapshot`) and notebooks read only that: a notebook never
blocks or fails a run, and a run never breaks an open notebook (it keeps the snapshot it opened
until `refresh()`).

A DuckLake needs no copy: the notebook attaches the lake read-only and every query sees the
newest committed snapshot, while writers go on (docs/scaling.md).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import duckdb
import polars as pl

from responsys_assets.settings import FileWarehouse, LakeWarehouse, load_settings
from responsys_assets.warehouse.connect import open_lake
from responsys_assets.warehouse.snapshot import snapshot_path

OPEN_ATTEMPTS = 20
_shared: duckdb.DuckDBPyConnection | None = None


class SnapshotMissingError(FileNotFoundError):
    """No snapshot yet: the pipeline has not written this warehouse."""


class SnapshotBusyError(RuntimeError):
    """The snapshot kept being replaced while we opened it (a writer publishing nonstop)."""


def snapshot_file(path: str | Path | None = None) -> Path:
    """The snapshot of warehouse `path` (default: RESPONSYS_WAREHOUSE); a snapshot path is kept."""
    if path is None:
        configured = load_settings().warehouse
        if not isinstance(configured, FileWarehouse):
            raise ValueError(f"{configured} has no snapshot file: open_warehouse() attaches it")
        path = configured.path
    warehouse = Path(path)
    if warehouse.name.endswith(f".snapshot{warehouse.suffix}"):
        return warehouse
    return snapshot_path(warehouse)


def _identity(snapshot: Path) -> tuple[int, int, int, int] | None:
    try:
        st = snapshot.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def open_warehouse(path: str | Path | LakeWarehouse | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the newest snapshot, with the warehouse schemas in scope.

    For a lake (`path` a LakeWarehouse, or RESPONSYS_WAREHOUSE naming one) that is the lake
    itself, attached read-only.

    DuckDB opens a file twice while attaching it (header, then blocks), so a snapshot replaced
    in between would pair one file's header with another's blocks: we check that the file did
    not change across the attach, and try again if it did. Attaching to an in-memory database,
    rather than `duckdb.connect(file)`, matters too: a second `connect()` of a file this process
    already has open returns the same, older, database.
    """
    if path is None and isinstance(load_settings().warehouse, LakeWarehouse):
        path = load_settings().warehouse
    if isinstance(path, LakeWarehouse):
        return open_lake(path, read_only=True)
    snapshot = snapshot_file(path)
    quoted = str(snapshot).replace("'", "''")
    for attempt in range(OPEN_ATTEMPTS):
        if attempt:
            # A jittered, growing pause: a writer that publishes on a steady beat (or a machine
            # so loaded that every attach spans a publish) is not met in step every time.
            time.sleep(min(0.01 * 1.5**attempt, 0.25) * (0.5 + random.random()))
        before = _identity(snapshot)
        if before is None:
            raise SnapshotMissingError(
                f"no warehouse snapshot at {str(snapshot)!r}: run `make demo` or "
                "`responsys-assets run` first (the pipeline publishes it after every write), "
                "or set RESPONSYS_WAREHOUSE to the warehouse you want to read."
            )
        conn = duckdb.connect()
        try:
            conn.execute(f"attach '{quoted}' as warehouse (read_only)")
        except duckdb.Error:
            conn.close()
            if _identity(snapshot) == before:
                raise
            continue  # replaced while attaching
        if _identity(snapshot) == before:
            conn.execute("use warehouse")
            return conn
        conn.close()
    raise SnapshotBusyError(
        f"the snapshot {str(snapshot)!r} was replaced during each of {OPEN_ATTEMPTS} attempts "
        "to open it; try again in a moment."
    )


def refresh(path: str | Path | LakeWarehouse | None = None) -> duckdb.DuckDBPyConnection:
    """Point `query()` at the newest snapshot (of `path`, default RESPONSYS_WAREHOUSE)."""
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None
    _shared = open_warehouse(path)
    return _shared


def query(sql: str, **params: object) -> pl.DataFrame:
    """Run `sql` on the notebook's snapshot connection; pass `$name` parameters as keywords."""
    conn = _shared if _shared is not None else refresh()
    return conn.sql(sql, params=params or None).pl()
