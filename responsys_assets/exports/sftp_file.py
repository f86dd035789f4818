"""SFTP file export: audience changes as a CSV file for a Responsys Connect import job.

One file per batch, named `<file_prefix or export name>_<UTC yyyymmdd_HHMMSS>_<batch_id>.csv`,
with a header of the `fields` keys plus ACTION (ENTER or EXIT), every value quoted, UTF-8.
With `encrypt_to_env` the file is PGP-encrypted to the armored public key held in that
environment variable and named `.csv.gpg`. Uploads are atomic (temp name, then rename), so
the Connect job never picks up half a file. Resending a batch writes a new file with the same
rows, which an import job merges again to the same result: the export is idempotent.
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

from responsys_assets.config import ConfigError, SftpFileExport
from responsys_assets.exports.changes import PendingChange
from responsys_assets.exports.custom_event import known_identifiers
from responsys_assets.exports.ledger import Batch
from responsys_assets.exports.records import record_values
from responsys_assets.exports.runner import SendOutcome
from responsys_assets.ingest.landing import UnsafeFileName
from responsys_assets.resources.responsys_api import ResponsysError
from responsys_assets.resources.sftp import SFTPError, SFTPSource
from responsys_assets.sandbox.pgp_key import encrypt_bytes

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgpy 0.6.0 imports ciphers cryptography deprecated
    from pgpy.errors import PGPError

ACTION_COLUMN = "ACTION"
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# What pgpy raises on a key blob it cannot use (see also ingest/decrypt.py).
_KEY_ERRORS = (PGPError, ValueError, TypeError, KeyError, IndexError, NotImplementedError)


class SftpExportError(ResponsysError):
    """The export file could not be prepared or uploaded; nothing of the batch was delivered.

    A ResponsysError so the runner settles the batch as failed and stops the export cleanly.
    """


class SftpFileHandler:
    idempotent = True
    sends_exits = True

    def __init__(
        self,
        export: SftpFileExport,
        sftp_factory: Callable[[], SFTPSource] | None = None,
        *,
        now: Callable[[], datetime] | None = None,
    ):
        """`sftp_factory` returns a fresh, unconnected SFTPSource; the handler closes it."""
        where = f"export '{export.name}'"
        if not export.fields:
            raise ConfigError(f"{where}: fields is empty; the file needs at least one column")
        if ACTION_COLUMN in {name.upper() for name in export.fields}:
            raise ConfigError(f"{where}: {ACTION_COLUMN} is written by the export; rename yours")
        prefix = export.file_prefix or export.name
        if not _PREFIX_RE.fullmatch(prefix):
            raise ConfigError(
                f"{where}: file_prefix {prefix!r} may use only letters, digits, '_' and '-'"
            )
        self.export = export
        self.sftp_factory = sftp_factory
        self.prefix = prefix
        self.columns = list(export.fields.items())
        self._now = now or (lambda: datetime.now(UTC))
        self._public_key: str | None = None

    def prepare(self, client) -> None:
        """Check the SFTP connection is configured and the encryption key is usable."""
        where = f"export '{self.export.name}'"
        if self.sftp_factory is None:
            raise SftpExportError(
                f"{where} uploads files over SFTP but was given no SFTP connection; pass "
                "sftp_factory to handler_for()"
            )
        env = self.export.encrypt_to_env
        if not env:
            return
        key = os.environ.get(env, "").strip()
        if not key:
            raise SftpExportError(
                f"{where}: environment variable {env} is empty; set it to the ASCII-armored "
                "PGP public key to encrypt to (`gpg --export --armor KEYID`)"
            )
        if "PRIVATE KEY" in key:
            raise SftpExportError(
                f"{where}: environment variable {env} holds a private key; give it the "
                "public key only (`gpg --export --armor KEYID`)"
            )
        try:
            encrypt_bytes(key, b"key check")
        except _KEY_ERRORS as exc:
            raise SftpExportError(
                f"{where}: the PGP public key in {env} cannot encrypt ({type(exc).__name__}); "
                "it must be an ASCII-armored public key with an encryption subkey"
            ) from None
        self._public_key = key

    def fields_for(self, change: PendingChange) -> dict:
        values = record_values(known_identifiers(change), self.columns)
        values[ACTION_COLUMN] = change.change
        return values

    def file_name(self, batch_id: str) -> str:
        stamp = self._now().astimezone(UTC).strftime("%Y%m%d_%H%M%S")
        suffix = ".csv.gpg" if self.export.encrypt_to_env else ".csv"
        return f"{self.prefix}_{stamp}_{batch_id}{suffix}"

    def render_csv(self, rows: list[dict]) -> bytes:
        """The file's bytes: a header, then one row per record, every value quoted."""
        header = [name for name, _ in self.columns] + [ACTION_COLUMN]
        out = io.StringIO(newline="")
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([row[name] for name in header] for row in rows)
        return out.getvalue().encode("utf-8")

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        written: list[tuple[PendingChange, dict]] = []
        for change in batch.records:
            row = self.fields_for(change)
            if not any(row[name] for name, _ in self.columns):
                outcome.rejected.append(
                    (
                        change.contact_key,
                        change.profile.get("riid"),
                        "rejected_record",
                        "every configured field is empty; the import could not match the row",
                    )
                )
            else:
                written.append((change, row))
        if not written:
            return outcome

        data = self.render_csv([row for _, row in written])
        if self.export.encrypt_to_env:
            if self._public_key is None:
                raise SftpExportError("prepare() must run before send(): no encryption key")
            data = encrypt_bytes(self._public_key, data)
        self._upload(self.file_name(batch.batch_id), data)
        outcome.api_calls = 1

        for change, row in written:
            if change.change == "EXIT":
                outcome.removed.append(change.contact_key)
            else:
                outcome.sent_fields[change.contact_key] = row
        return outcome

    def _upload(self, name: str, data: bytes) -> None:
        if self.sftp_factory is None:
            raise SftpExportError(f"export '{self.export.name}' has no SFTP connection")
        sftp = self.sftp_factory()
        if self.export.remote_dir:
            sftp.remote_dir = self.export.remote_dir
        try:
            with tempfile.TemporaryDirectory(prefix="responsys-export-") as folder:
                path = Path(folder) / name
                path.write_bytes(data)
                sftp.upload(path, name)
        except (SFTPError, UnsafeFileName, OSError) as exc:
            raise SftpExportError(
                f"export '{self.export.name}': uploading {name} to {sftp.host}:{sftp.remote_dir} "
                f"failed: {exc}"
            ) from exc
        finally:
            sftp.close()
