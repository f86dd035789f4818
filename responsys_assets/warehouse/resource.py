"""The Dagster resource around the warehouse: open, migrate, and publish the readers' snapshot."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from responsys_assets.warehouse.connect import open_connection
from responsys_assets.warehouse.migrate import apply_migrations
from responsys_assets.warehouse.snapshot import publish_snapshot


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
