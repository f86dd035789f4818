"""The environment-variable contract: which Responsys account, warehouse and config to use.

With no connection variable set at all the pipeline talks to the embedded sandbox; with some set
and others missing it refuses to start and names the missing ones. Secret values are never
echoed: only variable names appear in messages.
"""

from __future__ import annotations

import os
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
)

DEFAULT_WAREHOUSE = "warehouse/warehouse.duckdb"
DEFAULT_CONFIG = "responsys_assets/example_config.yaml"
DEFAULT_SANDBOX_DIR = "warehouse/sandbox"
DEFAULT_LANDING_DIR = "warehouse/landing"


class ConfigurationError(Exception):
    """The environment does not describe a usable setup; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    mode: str  # "sandbox" or "production"
    warehouse_path: Path
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
        warehouse_path=_path(env, "RESPONSYS_WAREHOUSE", DEFAULT_WAREHOUSE),
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
