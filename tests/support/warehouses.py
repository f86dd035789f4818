"""Pytest fixtures: the warehouse on both backends, a DuckDB file and a DuckLake on PostgreSQL.

A test that takes `warehouse_location` runs twice, once per backend, so the SQL the project
writes is proven on both (uniqueness included: neither backend has a constraint to fall back on, see
warehouse/migrations/001_initial.sql).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from responsys_assets.settings import (
    WAREHOUSE_PASSWORD_VAR,
    FileWarehouse,
    LakeWarehouse,
    Warehouse,
)
from responsys_assets.warehouse import apply_migrations, open_connection

BACKENDS = ("file", "lake")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def warehouse_location(backend: str, tmp_path: Path, request, monkeypatch) -> Warehouse:
    """An empty warehouse of the test's backend; a lake gets its own catalog database."""
    if backend == "file":
        return FileWarehouse(tmp_path / "w.duckdb")
    server = request.getfixturevalue("postgres_server")
    monkeypatch.setenv(WAREHOUSE_PASSWORD_VAR, server.password)  # as production passes it
    return server.new_lake(tmp_path / "lake")


def location(warehouse: Warehouse) -> str:
    """The RESPONSYS_WAREHOUSE value (and WarehouseResource.location) naming `warehouse`."""
    return warehouse.location


def resource_config(warehouse: Warehouse, landing_dir: Path) -> dict:
    """Keyword arguments for a WarehouseResource on `warehouse`."""
    data_path = warehouse.data_path if isinstance(warehouse, LakeWarehouse) else None
    return {
        "location": location(warehouse),
        "data_path": data_path,
        "landing_dir": str(landing_dir),
    }


def open_warehouse(warehouse: Warehouse | Path | str) -> duckdb.DuckDBPyConnection:
    """A connection to `warehouse` with every migration applied."""
    conn = open_connection(warehouse)
    apply_migrations(conn)
    return conn
