"""Dagster resources for the three Responsys connections: SFTP, PGP and the REST API.

Each is fed from `EnvVar`s in production. In sandbox mode (no connection variable set) the
fields stay empty and `sandbox_dir` points at the running embedded sandbox, whose connection
file says where its SFTP server and API emulator listen.
"""

from pathlib import Path

import dagster as dg

from responsys_assets.ingest.decrypt import Decryptor
from responsys_assets.resources.responsys_api import ResponsysClient
from responsys_assets.resources.sftp import SFTPSource
from responsys_assets.sandbox.connection import read_connection


class SFTPResource(dg.ConfigurableResource):
    """Responsys Connect's SFTP folder (RESPONSYS_SFTP_*)."""

    host: str | None = None
    port: int = 22
    username: str | None = None
    private_key: str | None = None  # OpenSSH-format key text
    known_hosts: str | None = None  # path of a known_hosts file
    remote_dir: str | None = None
    sandbox_dir: str | None = None
    ready_suffix: str | None = None

    @property
    def mode(self) -> str:
        return "sandbox" if self.sandbox_dir else "production"

    def open(self, **options) -> SFTPSource:
        """A new SFTPSource (a context manager); options override timeouts and retries."""
        if self.sandbox_dir:
            conn = read_connection(Path(self.sandbox_dir))
            return SFTPSource(
                host=conn.sftp_host,
                port=conn.sftp_port,
                username=conn.sftp_username,
                private_key=Path(conn.sftp_private_key_path).read_text(),
                known_hosts_path=conn.sftp_known_hosts_path,
                remote_dir=conn.sftp_remote_dir,
                ready_suffix=self.ready_suffix,
                **options,
            )
        return SFTPSource(
            host=self.host or "",
            port=self.port,
            username=self.username or "",
            private_key=self.private_key or "",
            known_hosts_path=self.known_hosts or "",
            remote_dir=self.remote_dir or "",
            ready_suffix=self.ready_suffix,
            **options,
        )


class PGPResource(dg.ConfigurableResource):
    """The key that decrypts Connect files (RESPONSYS_PGP_PRIVATE_KEY, _PASSPHRASE)."""

    private_key: str | None = None
    passphrase: str | None = None
    sandbox_dir: str | None = None

    def decryptor(self) -> Decryptor | None:
        """None when no key is configured: encrypted files then fail with a clear error."""
        if self.sandbox_dir:
            conn = read_connection(Path(self.sandbox_dir))
            return Decryptor(Path(conn.pgp_private_key_path).read_text(), conn.pgp_passphrase)
        if not self.private_key:
            return None
        return Decryptor(self.private_key, self.passphrase or None)


class ResponsysAPIResource(dg.ConfigurableResource):
    """The Responsys REST API account (RESPONSYS_ENDPOINT, _USERNAME, _PASSWORD)."""

    endpoint: str | None = None
    username: str | None = None
    password: str | None = None
    sandbox_dir: str | None = None
    timeout_seconds: float = 30.0

    @property
    def mode(self) -> str:
        return "sandbox" if self.sandbox_dir else "production"

    def client(self, **options) -> ResponsysClient:
        if self.sandbox_dir:
            conn = read_connection(Path(self.sandbox_dir))
            endpoint, username, password = conn.api_endpoint, conn.api_username, conn.api_password
        else:
            endpoint, username, password = self.endpoint, self.username, self.password
        return ResponsysClient(
            endpoint=endpoint or "",
            username=username or "",
            password=password or "",
            timeout=self.timeout_seconds,
            **options,
        )
