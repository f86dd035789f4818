"""DuckDB extensions from pinned Python packages, never downloaded at run time.

A lake needs the `ducklake` and `postgres_scanner` extensions. DuckDB would download them on
first use; where there is no network (CI, many production hosts) that fails, and a download
could bring a binary nobody pinned. The `duckdb-extension-*` packages ship the official binaries
for one DuckDB version, so the lock file pins them like any other dependency; connections are
opened with auto-install and auto-load off and `LOAD` the package's file by path.

With network access, `INSTALL ducklake; INSTALL postgres;` from DuckDB's repository is the usual
alternative (docs/scaling.md); this module is what runs here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

# Settings for every connection we open: no extension is fetched or loaded behind our back.
CONNECTION_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

# extension name -> the package that ships its binary
PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}


class ExtensionMissingError(RuntimeError):
    """The packaged binary for an extension is not installed for this DuckDB version."""


def extension_file(name: str) -> Path:
    """The binary of extension `name` for the running DuckDB, from its pinned package."""
    package = PACKAGES[name]
    spec = importlib.util.find_spec(package)
    version = f"v{duckdb.__version__}"
    if spec is None or spec.origin is None:
        raise ExtensionMissingError(
            f"the DuckDB extension {name!r} is needed for a DuckLake warehouse, and its package "
            f"{package.replace('_', '-')} is not installed. Install the project's locked "
            "dependencies (`uv sync --frozen`)."
        )
    path = Path(spec.origin).parent / "extensions" / version / f"{name}.duckdb_extension"
    if not path.is_file():
        shipped = sorted(p.name for p in (Path(spec.origin).parent / "extensions").glob("v*"))
        raise ExtensionMissingError(
            f"{package.replace('_', '-')} has no {name} binary for DuckDB {version} (it ships "
            f"{', '.join(shipped) or 'none'}); install the version pinned with duckdb."
        )
    return path


def load(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """`LOAD` each extension from its packaged file (idempotent within a connection)."""
    for name in names:
        path = str(extension_file(name)).replace("'", "''")
        conn.execute(f"load '{path}'")
