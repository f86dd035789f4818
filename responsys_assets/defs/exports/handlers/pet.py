"""PET export: audience members written to a profile extension table of a list (§2.3).

Two modes:
- `fields`: the configured profile fields (`fields`: PET column -> profile column) merged into
  the PET, one row per member keyed by RIID; an exit deletes the member's PET row.
- `membership`: one column named after the audience (upper-cased) set to "1" on entry and "0"
  on exit; exits never delete, so other columns of a shared PET survive.

The PET is created on the first run (every column of `field_type`). If it exists but lacks a
column we write, the run stops before sending anything: Responsys adds PET columns only by
hand, and a merge naming an unknown column would fail every row. (A profile list export's side
PETs share `pet_tables.ensure_pet` but drop such a column instead: see list_pets.py.)
"""

from __future__ import annotations

from responsys_assets.config import ConfigError, PetExport
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.defs.exports.ledger import Batch
from responsys_assets.defs.exports.naming import (
    SYSTEM_COLUMNS,
    InvalidResponsysName,
    validate_field_name,
)
from responsys_assets.defs.exports.pet_tables import ensure_pet
from responsys_assets.defs.exports.records import chunks, known_identifiers, record_values
from responsys_assets.lib.responsys import ResponsysError, RowResult

MEMBERSHIP_VALUES = {"ENTER": "1", "EXIT": "0"}
_MEMBERSHIP = "_membership"  # pseudo profile column holding the 1/0 value


class SchemaDrift(ResponsysError):
    """The PET exists without some columns this export writes; detected before any send."""

    def __init__(self, message: str, *, pet: str, missing: list[str]) -> None:
        super().__init__(message, api="list_pets")
        self.pet = pet
        self.missing = missing


def _gone(result: RowResult) -> bool:
    """A delete of a row that is not there has the effect we wanted."""
    text = f"{result.error_code or ''} {result.message or ''}".upper()
    return "NOT_FOUND" in text


class PetHandler(ExportHandler):
    idempotent = True
    sends_exits = True

    def __init__(self, export: PetExport):
        self.export = export
        where = f"export '{export.name}'"
        if export.mode == "membership":
            if export.fields:
                raise ConfigError(
                    f"{where}: fields are not written in mode: membership; remove them or add "
                    "a second export with mode: fields"
                )
            try:
                column = validate_field_name(export.audience.upper(), where=where)
            except InvalidResponsysName as exc:
                raise ConfigError(
                    f"{exc}; in mode: membership the PET column is the audience name "
                    "upper-cased, so the audience needs a name Responsys accepts as a column "
                    "(at most 30 characters, not a reserved word)"
                ) from None
            self.columns = [("RIID_", "riid"), (column, _MEMBERSHIP)]
        else:
            if not export.fields:
                raise ConfigError(f"{where}: mode: fields needs at least one entry in fields")
            self.columns = [("RIID_", "riid")] + [
                (name, source) for name, source in export.fields.items() if name.upper() != "RIID_"
            ]
        # The PET's own columns: system columns such as RIID_ come with every PET.
        self.pet_columns = [name for name, _ in self.columns if name.upper() not in SYSTEM_COLUMNS]

    def prepare(self, client) -> None:
        """Create the PET when missing; refuse a PET that lacks one of our columns."""
        export = self.export
        live, missing = ensure_pet(
            client, export.list, export.pet, export.folder, self.pet_columns, export.field_type
        )
        if missing:
            have = {(name or "").upper() for name, _ in live.fields}
            names = ", ".join(missing)
            raise SchemaDrift(
                f"export '{export.name}': PET '{live.name}' of list '{export.list}' has no "
                f"column {names} (it has {', '.join(sorted(have)) or 'no custom columns'}); "
                "nothing was sent. Responsys does not add PET columns through the API: set "
                f"`pet:` to a new PET name (it is created with every configured column on the "
                f"next run), or add {names} ({export.field_type}) to '{live.name}' by hand in "
                "Responsys, then run again.",
                pet=live.name,
                missing=missing,
            )

    def fields_for(self, change: PendingChange) -> dict:
        profile = known_identifiers(change)
        profile[_MEMBERSHIP] = MEMBERSHIP_VALUES[change.change]
        return record_values(profile, self.columns)

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        merges: list[PendingChange] = []
        deletes: list[PendingChange] = []
        for change in batch.records:
            if known_identifiers(change).get("riid") in (None, ""):
                outcome.rejected.append(
                    (
                        change.contact_key,
                        None,
                        "rejected_record",
                        "no RIID: PET rows are keyed by the profile list's RIID_, and this "
                        "contact is not known to Responsys by RIID yet",
                    )
                )
            elif change.change == "EXIT" and self.export.mode == "fields":
                deletes.append(change)
            else:
                merges.append(change)

        names = [name for name, _ in self.columns]
        for chunk in chunks(merges):
            rows = [self.fields_for(c) for c in chunk]
            results = client.merge_pet_members(
                self.export.list,
                self.export.pet,
                names,
                [[row[n] for n in names] for row in rows],
                match_column_1="RIID",
                insert_on_no_match=True,
                update_on_match="REPLACE_ALL",
                async_mode=self.export.async_api,
            )
            outcome.api_calls += 1
            for change, row, result in zip(chunk, rows, results, strict=True):
                if not result.ok:
                    self._reject(outcome, change, result, "MERGEFAILED")
                elif change.change == "EXIT":
                    outcome.removed.append(change.contact_key)
                else:
                    outcome.sent_fields[change.contact_key] = row

        for chunk in chunks(deletes):
            results = client.delete_pet_members(
                self.export.list,
                self.export.pet,
                "r",
                [str(known_identifiers(c)["riid"]) for c in chunk],
                async_mode=self.export.async_api,
            )
            outcome.api_calls += 1
            for change, result in zip(chunk, results, strict=True):
                if result.ok or _gone(result):
                    outcome.removed.append(change.contact_key)
                else:
                    self._reject(outcome, change, result, "DELETEFAILED")
        return outcome

    @staticmethod
    def _reject(outcome: SendOutcome, change: PendingChange, result: RowResult, default: str):
        outcome.rejected.append(
            (
                change.contact_key,
                change.profile.get("riid"),
                "rejected_record",
                result.message or result.error_code or default,
            )
        )
