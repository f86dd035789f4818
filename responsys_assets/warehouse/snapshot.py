"""The read-only copy of the warehouse that notebooks, `report` and `plan` open, not the live file.

Readers never open the live file, so they cannot block a writer: every write publishes
`warehouse.snapshot.duckdb` beside it (while the writer still holds the lock) and readers
attach that.
"""

import logging
import os
import shutil
import time
from contextlib import suppress
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


def snapshot_path(warehouse: str | Path) -> Path:
    """Where the pipeline publishes the copy of `warehouse` that notebooks read.

    `warehouse.duckdb` -> `warehouse.snapshot.duckdb`, beside it.
    """
    warehouse = Path(warehouse)
    return warehouse.with_name(f"{warehouse.stem}.snapshot{warehouse.suffix}")


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
