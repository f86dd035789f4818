"""Dagster resources for the three Responsys connections: SFTP, PGP and the REST API.

A resource holds the settings it is given and never asks which environment it runs in:
`definitions.py` feeds these from `EnvVar`s in production and swaps in the sandbox's
subclasses (`sandbox/resources.py`) when no connection variable is set.
"""

from typing import ClassVar

import dagster as dg

from responsys_assets.lib.pgp import Decryptor
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.lib.sftp import SFTPSource


class SFTPResource(dg.ConfigurableResource):
    """Responsys Connect's SFTP folder (RESPONSYS_SFTP_*)."""

    host: str | None = None
    port: int = 22
    username: str | None = None
    private_key: str | None = None  # OpenSSH-format key text
    known_hosts: str | None = None  # path of a known_hosts file
    remote_dir: str | None = None
    ready_suffix: str | None = None

    mode: ClassVar[str] = (
        "production"  # shown in run metadata; the sandbox's subclass says "sandbox"
    )

    def connection(self) -> dict:
        """Where to connect and as whom: SFTPSource's connection arguments."""
        return {
            "host": self.host or "",
            "port": self.port,
            "username": self.username or "",
            "private_key": self.private_key or "",
            "known_hosts_path": self.known_hosts or "",
            "remote_dir": self.remote_dir or "",
        }

    def open(self, **options) -> SFTPSource:
        """A new SFTPSource (a context manager); options override timeouts and retries."""
        return SFTPSource(**self.connection(), ready_suffix=self.ready_suffix, **options)


class PGPResource(dg.ConfigurableResource):
    """The key that decrypts Connect files (RESPONSYS_PGP_PRIVATE_KEY, _PASSPHRASE)."""

    private_key: str | None = None
    passphrase: str | None = None

    mode: ClassVar[str] = "production"

    def key(self) -> tuple[str | None, str | None]:
        """The armored private key and its passphrase; no key when none is configured."""
        return self.private_key, self.passphrase or None

    def decryptor(self) -> Decryptor | None:
        """None when no key is configured: encrypted files then fail with a clear error."""
        armored, passphrase = self.key()
        return Decryptor(armored, passphrase) if armored else None


class ResponsysAPIResource(dg.ConfigurableResource):
    """The Responsys REST API account (RESPONSYS_ENDPOINT, _USERNAME, _PASSWORD)."""

    endpoint: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0

    mode: ClassVar[str] = "production"

    def account(self) -> tuple[str, str, str]:
        """The login endpoint, user and password."""
        return self.endpoint or "", self.username or "", self.password or ""

    def client(self, **options) -> ResponsysClient:
        endpoint, username, password = self.account()
        return ResponsysClient(
            endpoint=endpoint,
            username=username,
            password=password,
            timeout=self.timeout_seconds,
            **options,
        )
