"""The DuckDB warehouse: connect, migrate, snapshot; the Dagster resource is in `resource.py`.

Importing this package stays light (no Dagster), so notebooks can use it.
"""

from responsys_assets.warehouse.connect import (
    WarehouseLockedError,
    WarehouseVersionError,
    open_connection,
)
from responsys_assets.warehouse.migrate import apply_migrations, migration_files
from responsys_assets.warehouse.snapshot import publish_snapshot, snapshot_path

__all__ = [
    "WarehouseLockedError",
    "WarehouseVersionError",
    "apply_migrations",
    "migration_files",
    "open_connection",
    "publish_snapshot",
    "snapshot_path",
]
