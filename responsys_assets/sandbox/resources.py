"""The pipeline's resources pointed at the embedded sandbox, for `definitions.py` to choose.

Each reads the running sandbox's connection file when it connects, not when definitions load,
so a sandbox started (or restarted on new ports) after the code location loaded is found.
"""

from pathlib import Path
from typing import ClassVar

from responsys_assets.resources import PGPResource, ResponsysAPIResource, SFTPResource
from responsys_assets.sandbox.connection import read_connection


class SandboxSFTPResource(SFTPResource):
    """The sandbox's SFTP server on 127.0.0.1."""

    sandbox_dir: str
    mode: ClassVar[str] = "sandbox"

    def connection(self) -> dict:
        conn = read_connection(Path(self.sandbox_dir))
        return {
            "host": conn.sftp_host,
            "port": conn.sftp_port,
            "username": conn.sftp_username,
            "private_key": Path(conn.sftp_private_key_path).read_text(),
            "known_hosts_path": conn.sftp_known_hosts_path,
            "remote_dir": conn.sftp_remote_dir,
        }


class SandboxPGPResource(PGPResource):
    """The sandbox's own PGP key, generated into the sandbox folder."""

    sandbox_dir: str
    mode: ClassVar[str] = "sandbox"

    def key(self) -> tuple[str | None, str | None]:
        conn = read_connection(Path(self.sandbox_dir))
        return Path(conn.pgp_private_key_path).read_text(), conn.pgp_passphrase


class SandboxResponsysAPIResource(ResponsysAPIResource):
    """The sandbox's Responsys REST API emulator on 127.0.0.1."""

    sandbox_dir: str
    mode: ClassVar[str] = "sandbox"

    def account(self) -> tuple[str, str, str]:
        conn = read_connection(Path(self.sandbox_dir))
        return conn.api_endpoint, conn.api_username, conn.api_password


def sandbox_resources(sandbox_dir: Path, ready_suffix: str | None) -> dict:
    """The three connection resources of the sandbox in `sandbox_dir`."""
    folder = str(sandbox_dir)
    return {
        "sftp": SandboxSFTPResource(sandbox_dir=folder, ready_suffix=ready_suffix),
        "pgp": SandboxPGPResource(sandbox_dir=folder),
        "responsys": SandboxResponsysAPIResource(sandbox_dir=folder),
    }
