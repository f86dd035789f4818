"""The Dagster resource around the warehouse: open, migrate, publish a file's snapshot."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from responsys_assets.settings import FileWarehouse, Warehouse, parse_warehouse
from responsys_assets.warehouse.connect import open_connection
from responsys_assets.warehouse.migrate import apply_migrations
from responsys_assets.warehouse.snapshot import publish_snapshot


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse (RESPONSYS_WAREHOUSE: a DuckDB file or a DuckLake) and the landing zone.

    `password` is the lake catalog's (EnvVar RESPONSYS_WAREHOUSE_PASSWORD); a file has none.
    """

    location: str
    landing_dir: str
    data_path: str | None = None
    password: str | None = None
    lock_wait_seconds: float = 120.0

    @property
    def warehouse(self) -> Warehouse:
        return parse_warehouse(self.location, self.data_path)

    @property
    def is_lake(self) -> bool:
        return not isinstance(self.warehouse, FileWarehouse)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        warehouse = self.warehouse
        conn = open_connection(
            warehouse,
            read_only=read_only,
            wait_seconds=self.lock_wait_seconds,
            password=self.password,
        )
        try:
            if not read_only:
                apply_migrations(conn)  # one cheap query when up to date
            yield conn
            if not read_only and isinstance(warehouse, FileWarehouse):
                # Readers of a file get a copy; a lake's readers attach it themselves.
                publish_snapshot(conn, warehouse.path)  # before close: we hold the write lock
        finally:
            conn.close()
