"""Hybrid transport: a large run of a REST export goes to Responsys as one file instead.

An export with `file_import` sends a run whose records to send exceed `threshold` (typically
the first backfill) as one CSV file into the folder a Connect import job reads; smaller runs
(the deltas) use the REST API as before. The file holds the rows the REST merge would carry,
with the same column names; removals (a profile list's `on_exit: delete`) still go by REST.

Exactly once, through a kill at any point:
1. the records are begun in the ledger as one batch `file-<first>-<last>-<count>`;
2. the file (name, bytes, sha256) is written to exports.file_batches;
3. the batch is settled as succeeded: its records are sent as far as planning is concerned;
4. the file is uploaded (temp name, then rename) and marked uploaded.
A kill before 3 leaves an unsettled batch whose file was never uploaded: the row is discarded
and the records are planned again. A kill after 3 leaves a settled batch: the next run uploads
the same bytes under the same name before it sends anything else (skipping the upload when the
file is already there), and never plans those records again, so there is no second file and
no REST resend. The watermark moves only once the file is uploaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import duckdb

from responsys_assets.config import FileImportConfig
from responsys_assets.defs.exports import ledger
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.defs.exports.connect_files import ConnectFileWriter, SftpExportError
from responsys_assets.defs.exports.handlers.base import SendOutcome
from responsys_assets.lib.sftp import SFTPSource
from responsys_assets.warehouse.retry import with_retries
from responsys_assets.warehouse.upsert import upsert

FILE_BATCH_KIND = "file-"
NOW = ledger.NOW

# (changes to send, outcome to fill) -> ((change, row) pairs for the file, changes left to REST)
RowsForFile = Callable[
    [list[PendingChange], SendOutcome], tuple[list[tuple[PendingChange, dict]], list]
]


FILE_BATCH_COLUMNS = [
    "export", "batch_id", "file_name", "remote_dir", "records", "bytes", "sha256", "content",
    "created_at", "uploaded_at",
]  # fmt: skip


class FileImport:
    """The file side of one export's hybrid transport."""

    def __init__(
        self,
        export_name: str,
        config: FileImportConfig,
        columns: list[str],
        rows_for_file: RowsForFile,
        sftp_factory: Callable[[], SFTPSource] | None,
    ):
        self.export_name = export_name
        self.threshold = config.threshold
        self.columns = columns
        self.rows_for_file = rows_for_file
        self.writer = ConnectFileWriter(
            where=f"export '{export_name}' (file_import)",
            remote_dir=config.remote_dir,
            prefix=config.file_prefix or export_name,
            encrypt_to_env=config.encrypt_to_env,
            sftp_factory=sftp_factory,
        )

    def transport_for(self, records: int) -> tuple[str, str]:
        """('file' or 'rest', why) for a run with `records` records to send."""
        if records > self.threshold:
            return "file", (
                f"{records} records to send > file_import threshold {self.threshold}: one file "
                f"for the Connect import job in {self.writer.remote_dir}"
            )
        return "rest", f"{records} records to send <= file_import threshold {self.threshold}"

    def deliver_outbox(self, conn: duckdb.DuckDBPyConnection, report) -> None:
        """Upload the files earlier runs settled but did not upload; on failure, stop the run.

        Files of batches that were never settled were never uploaded: they are discarded.
        """
        export = self.export_name
        with_retries(
            lambda: conn.execute(
                """
                delete from exports.file_batches f
                where f.export = ? and f.uploaded_at is null and not exists (
                    select 1 from exports.ledger l
                    where l.export = f.export and l.batch_id = f.batch_id
                      and l.outcome = 'succeeded')
                """,
                [export],
            ),
            what="discarding files of unsettled batches",
        )
        pending = conn.execute(
            "select batch_id from exports.file_batches "
            "where export = ? and uploaded_at is null order by created_at",
            [export],
        ).fetchall()
        for (batch_id,) in pending:
            name, data, sha256, records = conn.execute(
                "select file_name, content, sha256, records from exports.file_batches "
                "where export = ? and batch_id = ?",
                [export, batch_id],
            ).fetchone()
            try:
                self._deliver(conn, batch_id, name, data)
            except SftpExportError as exc:
                self._stop(report, exc, name)
                return
            report.details.setdefault("files_from_an_earlier_run", []).append(
                _file_info(name, records, data, sha256) | {"batch_id": batch_id}
            )

    def send(self, conn: duckdb.DuckDBPyConnection, changes: list[PendingChange], report) -> list:
        """Send `changes` as one file; returns the changes that still need REST (removals).

        On failure the run is stopped (report.stopped_by) and nothing is left to REST.
        """
        try:
            self.writer.prepare()
        except SftpExportError as exc:
            self._stop(report, exc, None)
            return []
        outcome = SendOutcome()
        rows, rest = self.rows_for_file(changes, outcome)
        refused = {contact_key for contact_key, *_ in outcome.rejected}
        carried = [change for change, _ in rows] + [c for c in changes if c.contact_key in refused]
        if not carried:
            return rest
        (batch,) = ledger.make_batches(
            self.export_name, carried, size=len(carried), kind=FILE_BATCH_KIND
        )
        data = self.writer.render(self.columns, [[row[c] for c in self.columns] for _, row in rows])
        name = self.writer.file_name(batch.batch_id)
        sha256 = hashlib.sha256(data).hexdigest()
        ledger.begin(conn, batch)
        if rows:
            with_retries(
                lambda: upsert(
                    conn,
                    "exports.file_batches",
                    ["export", "batch_id"],
                    FILE_BATCH_COLUMNS,
                    "select ?::varchar as export, ?::varchar as batch_id, ?::varchar as file_name,"
                    " ?::varchar as remote_dir, ?::bigint as records, ?::bigint as bytes,"
                    f" ?::varchar as sha256, ?::blob as content, {NOW} as created_at,"
                    " null::timestamp as uploaded_at",
                    [
                        self.export_name,
                        batch.batch_id,
                        name,
                        self.writer.remote_dir,
                        len(rows),
                        len(data),
                        sha256,
                        data,
                    ],
                ),
                what="keeping the file until its upload",
            )
        ledger.settle(
            conn,
            batch,
            "succeeded",
            sent_fields=outcome.sent_fields,
            removed=outcome.removed,
            rejected=outcome.rejected,
        )
        report.batches += 1
        report.added += len(outcome.sent_fields)
        report.removed += len(outcome.removed)
        report.rejected += len(outcome.rejected)
        for _, _, error_class, _ in outcome.rejected:
            report.errors[error_class] += 1
        if not rows:
            return rest
        report.details["file"] = _file_info(name, len(rows), data, sha256) | {
            "batch_id": batch.batch_id
        }
        try:
            self._deliver(conn, batch.batch_id, name, data)
        except SftpExportError as exc:
            self._stop(report, exc, name)
            return []
        return rest

    def _deliver(self, conn, batch_id: str, name: str, data: bytes) -> None:
        self.writer.upload(name, data, unless_present=True)
        with_retries(
            lambda: conn.execute(
                f"update exports.file_batches set uploaded_at = {NOW}, content = null "
                "where export = ? and batch_id = ?",
                [self.export_name, batch_id],
            ),
            what="recording an uploaded file",
        )

    @staticmethod
    def _stop(report, exc: SftpExportError, name: str | None) -> None:
        report.errors["sftp"] += 1
        kept = (
            f"; {name} is kept in exports.file_batches and uploaded before anything else on the "
            "next run (its records are not sent again)"
            if name
            else ""
        )
        report.stopped_by = f"{type(exc).__name__}: {exc}{kept}"


def _file_info(name: str, records: int, data: bytes, sha256: str) -> dict:
    return {"file_name": name, "records": records, "bytes": len(data), "sha256": sha256}
