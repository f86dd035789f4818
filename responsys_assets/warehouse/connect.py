"""Open the warehouse: a DuckDB file or a DuckLake, the one seam every layer above goes through.

A DuckDB file lets only one process open it for writing, and a read-write open fails while any
other process holds it. Writers therefore retry a lock conflict for a bounded time (Dagster's
`duckdb_writer` pool keeps our own steps from colliding), and notebooks read a snapshot instead
of the live file (`snapshot.py`).

A DuckLake (catalog in PostgreSQL, data in Parquet files) takes many writers and readers at
once: the connection is an in-memory DuckDB with the lake attached as `lake` and made the
default catalog, so the same SQL (`responsys.events`, ...) runs on both.
"""

import os
import time
from pathlib import Path

import duckdb

from responsys_assets.settings import FileWarehouse, LakeWarehouse, Warehouse
from responsys_assets.warehouse import extensions

LAKE_CATALOG = "lake"
INIT_ATTEMPTS = 5


def _is_init_race(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Failed to initialize DuckLake" in text and "already exists" in text


class WarehouseVersionError(Exception):
    """The DuckDB file was written by a DuckDB version this one cannot read."""


class WarehouseLockedError(Exception):
    """Another process holds the DuckDB file for longer than we are willing to wait."""


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set" in text)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def as_warehouse(where: Warehouse | Path | str) -> Warehouse:
    """A warehouse from a location object, or from a path (a DuckDB file)."""
    if isinstance(where, FileWarehouse | LakeWarehouse):
        return where
    return FileWarehouse(Path(where))


def open_connection(
    where: Warehouse | Path | str,
    *,
    read_only: bool = False,
    wait_seconds: float = 60.0,
    password: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing (or read-only); `password` is the lake catalog's."""
    warehouse = as_warehouse(where)
    if isinstance(warehouse, LakeWarehouse):
        return open_lake(warehouse, read_only=read_only, password=password)
    return _open_file(warehouse.path, read_only=read_only, wait_seconds=wait_seconds)


def open_lake(
    lake: LakeWarehouse, *, read_only: bool = False, password: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as `lake` and used by default.

    The password goes into a temporary DuckDB secret, never into the conninfo: DuckDB repeats
    the conninfo in its error messages.
    """
    conn = duckdb.connect(config=extensions.CONNECTION_CONFIG)
    try:
        extensions.load(conn, "ducklake", "postgres_scanner")
        if password is None:
            password = os.environ.get("RESPONSYS_WAREHOUSE_PASSWORD") or None
        if password:
            conn.execute(f"create temporary secret (type postgres, password {_quote(password)})")
        options = []
        if lake.data_path and not read_only:
            options.append(f"data_path {_quote(lake.data_path)}")
        if read_only:
            options.append("read_only")
        attach = f"attach {_quote('ducklake:postgres:' + lake.conninfo)} as {LAKE_CATALOG}" + (
            f" ({', '.join(options)})" if options else ""
        )
        for attempt in range(INIT_ATTEMPTS):
            try:
                conn.execute(attach)
                break
            except duckdb.Error as exc:
                # Workers starting together on a new lake race to create its catalog tables;
                # the losers find them made and attach on the next try.
                if attempt + 1 == INIT_ATTEMPTS or not _is_init_race(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))
        conn.execute(f"use {LAKE_CATALOG}")
    except BaseException:
        conn.close()
        raise
    return conn


def is_lake(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether `conn` works on a DuckLake (its default catalog is the attached lake)."""
    return conn.execute("select current_database()").fetchone()[0] == LAKE_CATALOG


def _open_file(path: Path, *, read_only: bool, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying lock conflicts with backoff for at most `wait_seconds`."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(
                str(path), read_only=read_only, config=extensions.CONNECTION_CONFIG
            )
            break
        except duckdb.IOException as exc:
            if "created with an newer version of DuckDB" in str(exc):
                raise WarehouseVersionError(
                    f"the warehouse {str(path)!r} was written by a newer DuckDB than this "
                    f"project's {duckdb.__version__} (DuckDB 2.0 files do not open in 1.5). "
                    "Move it once: with DuckDB 2.0 "
                    "(`uv run --no-project --with duckdb==2.0.0 python`) run "
                    f"EXPORT DATABASE 'export_dir' (FORMAT parquet) on {path.name}, move the "
                    "file aside, then IMPORT DATABASE 'export_dir' with this project's DuckDB "
                    "(docs/scaling.md, 'DuckDB 1.5.5 instead of 2.0.0')."
                ) from None
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
