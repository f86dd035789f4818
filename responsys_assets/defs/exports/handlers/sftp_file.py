"""SFTP file export: audience changes as a CSV file for a Responsys Connect import job.

`connect_files.ConnectFileWriter` writes and uploads such files; the hybrid transport of REST
exports (file_import.py) uses it too.

One file per batch, named `<file_prefix or export name>_<UTC yyyymmdd_HHMMSS>_<batch_id>.csv`,
with a header of the `fields` keys plus ACTION (ENTER or EXIT), every value quoted, UTF-8.
With `encrypt_to_env` the file is PGP-encrypted to the armored public key held in that
environment variable and named `.csv.gpg`. Uploads are atomic (temp name, then rename), so
the Connect job never picks up half a file. Resending a batch writes a new file with the same
rows, which an import job merges again to the same result: the export is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from responsys_assets.config import ConfigError, SftpFileExport
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.defs.exports.connect_files import ConnectFileWriter
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.defs.exports.ledger import Batch
from responsys_assets.defs.exports.records import known_identifiers, record_values
from responsys_assets.lib.sftp import SFTPSource

ACTION_COLUMN = "ACTION"


class SftpFileHandler(ExportHandler):
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
        self.export = export
        self.columns = list(export.fields.items())
        self.writer = ConnectFileWriter(
            where=where,
            remote_dir=export.remote_dir,
            prefix=export.file_prefix or export.name,
            encrypt_to_env=export.encrypt_to_env,
            sftp_factory=sftp_factory,
            now=now,
        )

    @property
    def sftp_factory(self) -> Callable[[], SFTPSource] | None:
        return self.writer.sftp_factory

    def prepare(self, client) -> None:
        self.writer.prepare()

    def fields_for(self, change: PendingChange) -> dict:
        values = record_values(known_identifiers(change), self.columns)
        values[ACTION_COLUMN] = change.change
        return values

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

        header = [name for name, _ in self.columns] + [ACTION_COLUMN]
        data = self.writer.render(header, [[row[n] for n in header] for _, row in written])
        self.writer.upload(self.writer.file_name(batch.batch_id), data)
        outcome.api_calls = 1

        for change, row in written:
            if change.change == "EXIT":
                outcome.removed.append(change.contact_key)
            else:
                outcome.sent_fields[change.contact_key] = row
        return outcome
