"""The environment-variable contract: which Responsys account, warehouse and config to use.

With no connection variable set at all the pipeline talks to the embedded sandbox; with some set
and others missing it refuses to start and names the missing ones. Secret values are never
echoed: only variable names appear in messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _project_root() -> Path:
    """The source checkout this package sits in; for an installed wheel, the working directory.

    Relative paths (the defaults below, and relative values of the variables) resolve there.
    """
    checkout = PACKAGE_DIR.parent
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


PROJECT_ROOT = _project_root()

SFTP_VARS = (
    "RESPONSYS_SFTP_HOST",
    "RESPONSYS_SFTP_PORT",
    "RESPONSYS_SFTP_USERNAME",
    "RESPONSYS_SFTP_PRIVATE_KEY",
    "RESPONSYS_SFTP_KNOWN_HOSTS",
    "RESPONSYS_SFTP_REMOTE_DIR",
)
PGP_VARS = ("RESPONSYS_PGP_PRIVATE_KEY", "RESPONSYS_PGP_PASSPHRASE")
API_VARS = ("RESPONSYS_ENDPOINT", "RESPONSYS_USERNAME", "RESPONSYS_PASSWORD")
CONNECTION_VARS = SFTP_VARS + PGP_VARS + API_VARS

# Needed in production; the port defaults to 22 and PGP is only needed for encrypted files.
REQUIRED_IN_PRODUCTION = (
    "RESPONSYS_SFTP_HOST",
    "RESPONSYS_SFTP_USERNAME",
    "RESPONSYS_SFTP_PRIVATE_KEY",
    "RESPONSYS_SFTP_KNOWN_HOSTS",
    "RESPONSYS_SFTP_REMOTE_DIR",
    "RESPONSYS_ENDPOINT",
    "RESPONSYS_USERNAME",
    "RESPONSYS_PASSWORD",
)
SECRET_VARS = (
    "RESPONSYS_SFTP_PRIVATE_KEY",
    "RESPONSYS_PGP_PRIVATE_KEY",
    "RESPONSYS_PGP_PASSPHRASE",
    "RESPONSYS_PASSWORD",
    "RESPONSYS_WAREHOUSE_PASSWORD",
)

DEFAULT_WAREHOUSE = "warehouse/warehouse.duckdb"
DEFAULT_CONFIG = "responsys_assets/example_config.yaml"
DEFAULT_SANDBOX_DIR = "warehouse/sandbox"
DEFAULT_LANDING_DIR = "warehouse/landing"


class ConfigurationError(Exception):
    """The environment does not describe a usable setup; the message says what to set."""


LAKE_PREFIX = "ducklake:postgres:"
WAREHOUSE_PASSWORD_VAR = "RESPONSYS_WAREHOUSE_PASSWORD"
_PASSWORD_KEY = re.compile(r"(?:^|\s)password\s*=", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/@]*:[^/@]*@", re.IGNORECASE)


@dataclass(frozen=True)
class FileWarehouse:
    """A DuckDB file: one writer at a time; readers open the snapshot published beside it."""

    path: Path

    @property
    def location(self) -> str:
        """The RESPONSYS_WAREHOUSE value that names this warehouse."""
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class LakeWarehouse:
    """A DuckLake: the catalog in PostgreSQL, the data as Parquet files under `data_path`.

    `conninfo` is a libpq connection string without the password, which comes from
    RESPONSYS_WAREHOUSE_PASSWORD (or libpq's own PGPASSWORD / ~/.pgpass), so it is never part
    of a string DuckDB may print. `data_path` is needed when the lake is created; an existing
    lake remembers its own.
    """

    conninfo: str
    data_path: str | None = None

    @property
    def location(self) -> str:
        """The RESPONSYS_WAREHOUSE value that names this warehouse."""
        return LAKE_PREFIX + self.conninfo

    def __str__(self) -> str:
        return f"DuckLake on PostgreSQL ({self.conninfo})"


Warehouse = FileWarehouse | LakeWarehouse


def parse_warehouse(value: str, data_path: str | None = None) -> Warehouse:
    """RESPONSYS_WAREHOUSE: a DuckDB file path, or `ducklake:postgres:<libpq conninfo>`."""
    if value.startswith("ducklake:") and not value.startswith(LAKE_PREFIX):
        raise ConfigurationError(
            "RESPONSYS_WAREHOUSE: only PostgreSQL-catalogued lakes are supported "
            f"({LAKE_PREFIX}<libpq conninfo>); a SQLite or DuckDB catalog takes one writer."
        )
    if not value.startswith(LAKE_PREFIX):
        path = Path(value).expanduser()
        return FileWarehouse(path if path.is_absolute() else PROJECT_ROOT / path)
    conninfo = value.removeprefix(LAKE_PREFIX).strip()
    if not conninfo:
        raise ConfigurationError(
            f"RESPONSYS_WAREHOUSE={LAKE_PREFIX} needs a libpq conninfo after the prefix, e.g. "
            f"{LAKE_PREFIX}host=db.internal port=5432 dbname=lake user=responsys"
        )
    if _PASSWORD_KEY.search(conninfo) or _URI_PASSWORD.search(conninfo):
        raise ConfigurationError(
            "RESPONSYS_WAREHOUSE contains a password; remove it and set "
            f"{WAREHOUSE_PASSWORD_VAR} instead (a password in the conninfo would appear in "
            "DuckDB's error messages)."
        )
    if data_path and "://" not in data_path:
        local = Path(data_path).expanduser()
        data_path = str(local if local.is_absolute() else PROJECT_ROOT / local)
    if data_path and not data_path.endswith("/"):
        data_path += "/"
    return LakeWarehouse(conninfo=conninfo, data_path=data_path or None)


@dataclass(frozen=True)
class Settings:
    mode: str  # "sandbox" or "production"
    warehouse: Warehouse
    config_path: Path
    landing_dir: Path
    sandbox_dir: Path

    @property
    def is_sandbox(self) -> bool:
        return self.mode == "sandbox"


def _path(env: Mapping[str, str], name: str, default: str) -> Path:
    value = env.get(name) or default
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once; raise ConfigurationError naming missing variables."""
    env = os.environ if env is None else env
    present = [name for name in CONNECTION_VARS if env.get(name)]
    if present:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name)]
        if missing:
            raise ConfigurationError(
                "Responsys connection is partly configured: "
                f"{', '.join(present)} set but {', '.join(missing)} missing. Set the missing "
                "variables, or unset all RESPONSYS_* connection variables to use the embedded "
                "sandbox."
            )
        port = env.get("RESPONSYS_SFTP_PORT")
        if port and not port.isdigit():
            raise ConfigurationError(f"RESPONSYS_SFTP_PORT must be a port number, got {port!r}.")
        known_hosts = Path(env["RESPONSYS_SFTP_KNOWN_HOSTS"]).expanduser()
        if not known_hosts.is_file():
            raise ConfigurationError(
                f"RESPONSYS_SFTP_KNOWN_HOSTS points to {str(known_hosts)!r}, which is not a "
                "file. Create it with `ssh-keyscan -p PORT HOST > known_hosts` and check the "
                "fingerprint with Oracle."
            )
    mode = "production" if present else "sandbox"
    return Settings(
        mode=mode,
        warehouse=parse_warehouse(
            env.get("RESPONSYS_WAREHOUSE") or DEFAULT_WAREHOUSE, env.get("RESPONSYS_LAKE_DATA_PATH")
        ),
        config_path=_path(env, "RESPONSYS_CONFIG", DEFAULT_CONFIG)
        if env.get("RESPONSYS_CONFIG")
        else shipped_file("example_config.yaml"),
        landing_dir=_path(env, "RESPONSYS_LANDING_DIR", DEFAULT_LANDING_DIR),
        sandbox_dir=_path(env, "RESPONSYS_SANDBOX_DIR", DEFAULT_SANDBOX_DIR),
    )


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The secret values currently set, for redaction and for tests that grep output."""
    env = os.environ if env is None else env
    return [env[name] for name in SECRET_VARS if env.get(name)]


def shipped_file(name: str) -> Path:
    """A file the project ships: the checkout's own, or the installed wheel's copy.

    `example_config.yaml` lives in the package; `dagster.yaml` at the checkout's top, and the
    wheel carries a copy inside the package (pyproject.toml, force-include).
    """
    for candidate in (PROJECT_ROOT / name, PACKAGE_DIR / name):
        if candidate.is_file():
            return candidate
    return PACKAGE_DIR / name
