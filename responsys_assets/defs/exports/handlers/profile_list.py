"""Profile list export: audience members merged into a Responsys profile list.

Entries are merged with the configured merge rule; exits either delete the member, clear a
membership column, or are kept. Suppressed contacts (opted out, hard bounced, complained) are
never merged, so nobody is (re)added as opted-in by us.

Optional: `file_import` sends a large run (typically the backfill) as one file for a Connect
import job (file_import.py); `user_fields_pet` and `segments_pet` write extra profile fields and
audience memberships into PETs of the list after the list batches (list_pets.py).
"""

from __future__ import annotations

from collections.abc import Callable

from responsys_assets.config import ProfileListExport
from responsys_assets.defs.exports.file_import import FileImport
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.defs.exports.ledger import Batch
from responsys_assets.defs.exports.list_pets import ListPets
from responsys_assets.defs.exports.records import (
    chunks,
    list_columns,
    matchable,
    merge_rule,
    record_values,
)
from responsys_assets.lib.sftp import SFTPSource


class ProfileListHandler(ExportHandler):
    idempotent = True
    chooses_transport = True  # REST calls, or one Connect file for a large run

    def __init__(
        self,
        export: ProfileListExport,
        sftp_factory: Callable[[], SFTPSource] | None = None,
    ):
        """`sftp_factory` (a fresh SFTPSource per call) is used only with `file_import`."""
        self.export = export
        fields = dict(export.fields)
        if export.on_exit == "clear_column" and export.membership_column:
            fields[export.membership_column] = "_membership"
        self.columns = list_columns(export.merge_rule, fields)
        self.rule = merge_rule(export.merge_rule)
        self.file_import = (
            FileImport(
                export.name,
                export.file_import,
                [target for target, _ in self.columns],
                self.rows_for_file,
                sftp_factory,
            )
            if export.file_import
            else None
        )
        self.side_pets = ListPets(export)

    @property
    def sends_exits(self) -> bool:
        return self.export.on_exit != "keep"

    def prepare(self, client) -> None:
        return None

    def fields_for(self, change) -> dict:
        profile = dict(change.profile, _membership="1" if change.change == "ENTER" else "")
        return record_values(profile, self.columns)

    def _merges_and_deletes(self, changes: list) -> tuple[list, list]:
        merges = [
            c for c in changes if c.change == "ENTER" or self.export.on_exit == "clear_column"
        ]
        deletes = [c for c in changes if c.change == "EXIT" and self.export.on_exit == "delete"]
        return merges, deletes

    def rows_for_file(self, changes: list, outcome: SendOutcome) -> tuple[list, list]:
        """The rows a Connect import would merge, as the REST merge would send them, and the
        changes left to REST (deletions: an import job only merges)."""
        merges, deletes = self._merges_and_deletes(changes)
        rows = [(c, self.fields_for(c)) for c in matchable(merges, self.export.merge_rule, outcome)]
        for change, row in rows:
            if change.change == "EXIT":
                outcome.removed.append(change.contact_key)
            else:
                outcome.sent_fields[change.contact_key] = row
        return rows, deletes

    def follow_up(self, conn, client, report) -> None:
        """After the list batches: the side PETs' rows (list_pets.py). Not after a file run:
        the Connect job has not imported the members yet, so their rows wait a run."""
        if report.transport == "file" and self.side_pets.pets:
            report.details["side_pets"] = "left to the next run: the file is not imported yet"
            return
        self.side_pets.sync(conn, client, report)

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        merges, exits = self._merges_and_deletes(batch.records)
        ready = matchable(merges, self.export.merge_rule, outcome)
        names = [target for target, _ in self.columns]
        for chunk in chunks(ready):
            rows = [self.fields_for(c) for c in chunk]
            results = client.merge_list_members(
                self.export.list,
                names,
                [[row[n] for n in names] for row in rows],
                self.rule,
                async_mode=self.export.async_api,
            )
            outcome.api_calls += 1
            for change, row, result in zip(chunk, rows, results, strict=True):
                if result.ok:
                    if change.change == "EXIT":
                        outcome.removed.append(change.contact_key)
                    else:
                        outcome.sent_fields[change.contact_key] = row
                else:
                    outcome.rejected.append(
                        (
                            change.contact_key,
                            change.profile.get("riid"),
                            "rejected_record",
                            result.message or result.error_code or "MERGEFAILED",
                        )
                    )
        by_riid = [c for c in exits if c.profile.get("riid") is not None]
        by_email = [c for c in exits if c.profile.get("riid") is None and c.profile.get("email")]
        for attribute, group, key in (("r", by_riid, "riid"), ("e", by_email, "email")):
            for chunk in chunks(group):
                results = client.delete_list_members(
                    self.export.list,
                    attribute,
                    [str(c.profile[key]) for c in chunk],
                    async_mode=self.export.async_api,
                )
                outcome.api_calls += 1
                for change, result in zip(chunk, results, strict=True):
                    # A member already gone is removed as far as we are concerned.
                    outcome.removed.append(change.contact_key)
                    if not result.ok and "NOT_FOUND" not in (result.message or "").upper():
                        outcome.rejected.append(
                            (
                                change.contact_key,
                                change.profile.get("riid"),
                                "rejected_record",
                                result.message or "DELETEFAILED",
                            )
                        )
        return outcome
