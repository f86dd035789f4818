"""Connect import files: CSV written for a Responsys Connect import job and uploaded by SFTP.

The SFTP file export sends every batch this way, and the hybrid transport of REST exports
(file_import.py) sends a large run this way.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from responsys_assets.config import ConfigError
from responsys_assets.lib.file_names import UnsafeFileName
from responsys_assets.lib.pgp import encrypt_bytes
from responsys_assets.lib.responsys import ResponsysError
from responsys_assets.lib.sftp import SFTPError, SFTPSource

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgpy 0.6.0 imports ciphers cryptography deprecated
    from pgpy.errors import PGPError

_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# What pgpy raises on a key blob it cannot use (see also lib/pgp).
_KEY_ERRORS = (PGPError, ValueError, TypeError, KeyError, IndexError, NotImplementedError)


class SftpExportError(ResponsysError):
    """The export file could not be prepared or uploaded; nothing of the batch was delivered.

    A ResponsysError so the runner settles the batch as failed and stops the export cleanly.
    """


class ConnectFileWriter:
    """CSV files for a Connect import job: quoted, UTF-8, optionally PGP-encrypted to a public
    key, uploaded atomically into the folder the job reads."""

    def __init__(
        self,
        *,
        where: str,
        remote_dir: str,
        prefix: str,
        encrypt_to_env: str | None,
        sftp_factory: Callable[[], SFTPSource] | None,
        now: Callable[[], datetime] | None = None,
    ):
        """`where` names the export in messages; `sftp_factory` returns a fresh, unconnected
        SFTPSource, which the writer closes."""
        if not _PREFIX_RE.fullmatch(prefix):
            raise ConfigError(
                f"{where}: file_prefix {prefix!r} may use only letters, digits, '_' and '-'"
            )
        self.where = where
        self.remote_dir = remote_dir
        self.prefix = prefix
        self.encrypt_to_env = encrypt_to_env
        self.sftp_factory = sftp_factory
        self._now = now or (lambda: datetime.now(UTC))
        self._public_key: str | None = None

    def prepare(self) -> None:
        """Check the SFTP connection is configured and the encryption key is usable."""
        if self.sftp_factory is None:
            raise SftpExportError(
                f"{self.where} uploads files over SFTP but was given no SFTP connection; pass "
                "sftp_factory to handler_for()"
            )
        env = self.encrypt_to_env
        if not env:
            return
        key = os.environ.get(env, "").strip()
        if not key:
            raise SftpExportError(
                f"{self.where}: environment variable {env} is empty; set it to the ASCII-armored "
                "PGP public key to encrypt to (`gpg --export --armor KEYID`)"
            )
        if "PRIVATE KEY" in key:
            raise SftpExportError(
                f"{self.where}: environment variable {env} holds a private key; give it the "
                "public key only (`gpg --export --armor KEYID`)"
            )
        try:
            encrypt_bytes(key, b"key check")
        except _KEY_ERRORS as exc:
            raise SftpExportError(
                f"{self.where}: the PGP public key in {env} cannot encrypt "
                f"({type(exc).__name__}); it must be an ASCII-armored public key with an "
                "encryption subkey"
            ) from None
        self._public_key = key

    def file_name(self, batch_id: str) -> str:
        stamp = self._now().astimezone(UTC).strftime("%Y%m%d_%H%M%S")
        suffix = ".csv.gpg" if self.encrypt_to_env else ".csv"
        return f"{self.prefix}_{stamp}_{batch_id}{suffix}"

    def render(self, header: list[str], rows: list[list[str]]) -> bytes:
        """The file's bytes: a header, then one row per record, every value quoted; encrypted
        when `encrypt_to_env` is set."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        data = out.getvalue().encode("utf-8")
        if self.encrypt_to_env:
            if self._public_key is None:
                raise SftpExportError("prepare() must run before render(): no encryption key")
            data = encrypt_bytes(self._public_key, data)
        return data

    def upload(self, name: str, data: bytes, *, unless_present: bool = False) -> bool:
        """Upload atomically (temp name, then rename); False when `unless_present` and a file
        of that name and size is already there (an earlier attempt finished)."""
        if self.sftp_factory is None:
            raise SftpExportError(f"{self.where} has no SFTP connection")
        sftp = self.sftp_factory()
        if self.remote_dir:
            sftp.remote_dir = self.remote_dir
        try:
            if unless_present and any(
                f.name == name and f.size == len(data) for f in sftp.list_files()
            ):
                return False
            with tempfile.TemporaryDirectory(prefix="responsys-export-") as folder:
                path = Path(folder) / name
                path.write_bytes(data)
                sftp.upload(path, name)
            return True
        except (SFTPError, UnsafeFileName, OSError) as exc:
            raise SftpExportError(
                f"{self.where}: uploading {name} to {sftp.host}:{sftp.remote_dir} failed: {exc}"
            ) from exc
        finally:
            sftp.close()
