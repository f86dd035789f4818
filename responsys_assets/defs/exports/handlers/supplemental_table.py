"""Supplemental table export: one row per audience member in a supplemental table (§2.4).

A row holds the primary-key columns, `source_column` set to the export's name (so several
exports can share one table, e.g. keyed by RIID + CAMPAIGN_ID), the configured `fields`, and
IN_AUDIENCE: "1" on entry, "0" on exit.

Exits are marked, not deleted: the REST client has no supplemental-row delete (Responsys deletes
one row per call, `DELETE …/members?qa=…&id=…`), so filter on IN_AUDIENCE = '1' in Responsys.

Creation: `prepare` creates the folder (one call; FOLDER_ALREADY_EXISTS is fine). The table is
created when the first merge answers 404 TABLE_NOT_FOUND, then that merge is sent again: the
client has no table listing, and the refused merge changed nothing. Every column is STR500.
"""

from __future__ import annotations

from responsys_assets.config import ConfigError, SupplementalTableExport
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.defs.exports.ledger import Batch
from responsys_assets.defs.exports.records import as_text, chunks, known_identifiers
from responsys_assets.lib.responsys import RequestRejected, RowResult

MEMBER_COLUMN = "IN_AUDIENCE"
MEMBERSHIP_VALUES = {"ENTER": "1", "EXIT": "0"}
FIELD_TYPE = "STR500"
# Primary-key columns filled from the profile when `fields` does not map them.
KEY_SOURCES = {
    "RIID": "riid",
    "CUSTOMER_ID": "customer_id",
    "EMAIL_ADDRESS": "email",
    "EMAIL_SHA256_HASH": "email_sha256",
}


class SupplementalTableHandler(ExportHandler):
    idempotent = True
    sends_exits = True

    def __init__(self, export: SupplementalTableExport):
        self.export = export
        where = f"export '{export.name}'"
        if MEMBER_COLUMN in {*export.fields, *export.primary_key, export.source_column}:
            raise ConfigError(f"{where}: {MEMBER_COLUMN} is written by the export; rename yours")
        # table column -> profile column (None: the export's name, in source_column)
        self.sources: dict[str, str | None] = {}
        for column in export.primary_key:
            if column == export.source_column:
                self.sources[column] = None
            elif column in export.fields:
                self.sources[column] = export.fields[column]
            elif column.upper() in KEY_SOURCES:
                self.sources[column] = KEY_SOURCES[column.upper()]
            else:
                raise ConfigError(
                    f"{where}: primary key column {column} has no value; map it to a profile "
                    f"column in fields ({column}: <profile column>)"
                )
        self.sources[export.source_column] = None
        for column, source in export.fields.items():
            self.sources.setdefault(column, source)
        self.names = [*self.sources, MEMBER_COLUMN]
        self._table_ready = False  # set once a merge or a creation proved the table exists

    def prepare(self, client) -> None:
        client.create_folder(self.export.folder)  # False when it exists, which is fine

    def fields_for(self, change: PendingChange) -> dict:
        profile = known_identifiers(change)
        values = {
            column: self.export.name if source is None else as_text(profile.get(source))
            for column, source in self.sources.items()
        }
        values[MEMBER_COLUMN] = MEMBERSHIP_VALUES[change.change]
        return values

    def _merge_once(self, client, records: list[list[str]]) -> list[RowResult]:
        return client.merge_supplemental_rows(
            self.export.folder,
            self.export.table,
            self.names,
            records,
            insert_on_no_match=True,
            update_on_match="REPLACE_ALL",
            async_mode=self.export.async_api,
        )

    def _merge(self, client, records: list[list[str]]) -> tuple[list[RowResult], int]:
        """Merge rows, creating the table on TABLE_NOT_FOUND; returns (results, calls made)."""
        try:
            results = self._merge_once(client, records)
        except RequestRejected as exc:
            if exc.error_code != "TABLE_NOT_FOUND" or self._table_ready:
                raise
        else:
            self._table_ready = True
            return results, 1
        try:
            client.create_supplemental_table(
                self.export.folder,
                self.export.table,
                [(name, FIELD_TYPE) for name in self.names],
                self.export.primary_key,
            )
        except RequestRejected as exc:
            if exc.error_code != "TABLE_ALREADY_EXISTS":  # created meanwhile: fine
                raise
        self._table_ready = True
        return self._merge_once(client, records), 3

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        ready: list[tuple[PendingChange, dict]] = []
        for change in batch.records:
            row = self.fields_for(change)
            empty = [pk for pk in self.export.primary_key if not row[pk]]
            if empty:
                outcome.rejected.append(
                    (
                        change.contact_key,
                        change.profile.get("riid"),
                        "rejected_record",
                        f"primary key column {', '.join(empty)} is empty for this contact",
                    )
                )
            else:
                ready.append((change, row))

        for chunk in chunks(ready):
            results, calls = self._merge(client, [[row[n] for n in self.names] for _, row in chunk])
            outcome.api_calls += calls
            for (change, row), result in zip(chunk, results, strict=True):
                if not result.ok:
                    outcome.rejected.append(
                        (
                            change.contact_key,
                            change.profile.get("riid"),
                            "rejected_record",
                            result.message or result.error_code or "MERGEFAILED",
                        )
                    )
                elif change.change == "EXIT":
                    outcome.removed.append(change.contact_key)
                else:
                    outcome.sent_fields[change.contact_key] = row
        return outcome
