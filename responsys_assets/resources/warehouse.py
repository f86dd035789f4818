"""The DuckDB warehouse: one file, one writer at a time, schema kept by numbered migrations.

DuckDB lets only one process open a file for writing, and a read-write open fails while any
other process holds it. Writers therefore retry a lock conflict for a bounded time (Dagster's
`duckdb_writer` pool keeps our own steps from colliding), and notebooks read a snapshot instead
of the live file (see `responsys_assets.notebook`).
"""

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import duckdb

from responsys_assets.notebook import snapshot_path
from responsys_assets.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "warehouse" / "migrations"
WRITER_POOL = "duckdb_writer"

log = logging.getLogger(__name__)


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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_checkpointed(conn: duckdb.DuckDBPyConnection, warehouse: Path, tmp: Path) -> bool:
    """Checkpoint, then byte-copy the main file to `tmp` (0600); False if it changed meanwhile."""
    conn.execute(
        "checkpoint"
    )  # every commit is now in the main file; it changes only at checkpoints
    before = os.stat(warehouse)
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    shutil.copyfile(warehouse, tmp)  # truncates tmp and keeps its mode
    after = os.stat(warehouse)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return False
    _fsync(tmp)
    return True


def publish_snapshot(conn: duckdb.DuckDBPyConnection, warehouse: Path) -> Path | None:
    """Publish the snapshot notebooks read, while `conn` still holds the file for writing.

    Readers never open the live file, so they cannot block a writer; `os.replace` swaps the
    snapshot atomically and a reader that has the old one open keeps its inode. Never raises:
    a notebook may lag one write behind, but a run must not fail for it (returns None, logged).
    """
    warehouse = Path(warehouse)
    target = snapshot_path(warehouse)
    tmp = target.with_name(f"{target.name}.tmp")  # one writer holds the lock: one tmp at a time
    started = time.monotonic()
    try:
        if not _copy_checkpointed(conn, warehouse, tmp):
            log.warning("warehouse changed while copying it; snapshot %s not updated", target)
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, target)
        _fsync(target.parent)
    except (duckdb.Error, OSError) as exc:
        log.warning("could not publish the warehouse snapshot %s: %s", target, exc)
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        return None
    log.debug("published %s in %.0f ms", target, 1000 * (time.monotonic() - started))
    return target


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(directory.glob("[0-9][0-9][0-9]_*.sql"))


def apply_migrations(
    conn: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply every numbered migration not yet recorded; returns the names applied."""
    conn.execute("create schema if not exists meta")
    conn.execute(
        "create table if not exists meta.schema_migrations ("
        " version varchar primary key, checksum varchar, applied_at timestamp)"
    )
    done = {row[0] for row in conn.execute("select version from meta.schema_migrations").fetchall()}
    applied = []
    for path in migration_files(directory):
        if path.stem in done:
            continue
        sql = path.read_text(encoding="utf-8")
        conn.execute("begin transaction")
        try:
            conn.execute(sql)
            conn.execute(
                "insert into meta.schema_migrations values (?, ?, (now() at time zone 'UTC'))",
                [path.stem, hashlib.sha256(sql.encode()).hexdigest()],
            )
            conn.execute("commit")
        except Exception:
            conn.execute("rollback")
            raise
        applied.append(path.stem)
    return applied


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (RESPONSYS_WAREHOUSE) and the landing zone beside it."""

    path: str
    landing_dir: str
    lock_wait_seconds: float = 120.0

    @property
    def file(self) -> Path:
        return Path(self.path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = open_connection(self.file, read_only=read_only, wait_seconds=self.lock_wait_seconds)
        try:
            if not read_only:
                apply_migrations(conn)  # one cheap query when up to date
            yield conn
            if not read_only:
                publish_snapshot(conn, self.file)  # before close: we still hold the write lock
        finally:
            conn.close()
