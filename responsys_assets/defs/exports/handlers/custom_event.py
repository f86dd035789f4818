"""Custom event export: audience entries, updates and exits raised as a custom event (§2.6).

Each member becomes one recipient of `send_custom_event`, identified by RIID, SHA-256 email hash
or customer id (`identify_by`) in the export's profile list. optionalData carries `callType`
and the configured `properties` as strings, so one Program can branch on the call type:
ADD on entry, REMOVE on exit, and UPDATE (`send_updates`) for a member still in the audience
whose properties differ from the values last sent to them. Sent at most once: an event cannot be
taken back, so a batch whose outcome is unknown is parked for an operator, never resent.
"""

from __future__ import annotations

from responsys_assets.config import ConfigError, CustomEventExport
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.defs.exports.ledger import Batch
from responsys_assets.defs.exports.records import as_text, chunks, known_identifiers
from responsys_assets.lib.responsys import Recipient

CALL_TYPE = "callType"
CALL_TYPES = {"ENTER": "ADD", "UPDATE": "UPDATE", "EXIT": "REMOVE"}
PROPERTY_PREFIX = "optionalData."  # how properties are named in the fields we record

# identify_by -> (Recipient attribute, profile column, Responsys column shown in records)
IDENTIFY_BY = {
    "riid": ("recipient_id", "riid", "RIID_"),
    "email_sha256": ("email_sha256_hash", "email_sha256", "EMAIL_SHA256_HASH_"),
    "customer_id": ("customer_id", "customer_id", "CUSTOMER_ID_"),
}


class CustomEventHandler(ExportHandler):
    idempotent = False

    def __init__(self, export: CustomEventExport):
        self.export = export
        self.attribute, self.id_column, self.id_label = IDENTIFY_BY[export.identify_by]
        clashes = [n for n in export.properties if n == CALL_TYPE or n.endswith("_")]
        if clashes:
            raise ConfigError(
                f"export '{export.name}': properties {', '.join(clashes)} cannot be used as "
                f"optionalData names ('{CALL_TYPE}' is set by the export; names ending in '_' "
                "are Responsys system columns); rename them"
            )

    @property
    def sends_exits(self) -> bool:
        return self.export.send_exits

    @property
    def sends_updates(self) -> bool:
        """No properties, nothing that could change: no UPDATE is ever due."""
        return self.export.send_updates and bool(self.export.properties)

    def update_fields(self, change: PendingChange) -> dict:
        """The properties as they would be sent now, compared with those last sent."""
        profile = known_identifiers(change)
        return {
            f"{PROPERTY_PREFIX}{name}": as_text(profile.get(column))
            for name, column in self.export.properties.items()
        }

    def prepare(self, client) -> None:
        return None

    def _optional_data(self, change: PendingChange, profile: dict) -> list[tuple[str, str]]:
        pairs = [(CALL_TYPE, CALL_TYPES[change.change])]
        pairs += [(name, as_text(profile.get(col))) for name, col in self.export.properties.items()]
        return pairs

    def fields_for(self, change: PendingChange) -> dict:
        profile = known_identifiers(change)
        values = {self.id_label: as_text(profile.get(self.id_column))}
        for name, value in self._optional_data(change, profile):
            values[f"{PROPERTY_PREFIX}{name}"] = value
        return values

    def _recipient(self, change: PendingChange) -> Recipient:
        profile = known_identifiers(change)
        value = profile[self.id_column]
        if self.attribute == "recipient_id":
            value = int(value)
        else:
            value = str(value)
        return Recipient(
            list_name=self.export.list,
            folder_name=self.export.folder,
            optional_data=tuple(self._optional_data(change, profile)),
            **{self.attribute: value},
        )

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        ready: list[PendingChange] = []
        holders: dict[str, str] = {}  # identifier value -> contact_key already in this batch
        for change in batch.records:
            riid = change.profile.get("riid")
            value = as_text(known_identifiers(change).get(self.id_column))
            if not value:
                problem = (
                    f"no {self.id_column} to identify the recipient by "
                    f"(identify_by: {self.export.identify_by})"
                )
            elif value in holders:
                # Responsys fails every copy of a repeated recipient (MULTIPLE_RECIPIENTS_FOUND).
                problem = (
                    f"same {self.id_label} as {holders[value]} in this batch; an event is "
                    "raised once per recipient"
                )
            else:
                holders[value] = change.contact_key
                ready.append(change)
                continue
            outcome.rejected.append((change.contact_key, riid, "rejected_record", problem))

        for chunk in chunks(ready):
            results = client.send_custom_event(
                self.export.event,
                [self._recipient(c) for c in chunk],
                async_mode=self.export.async_api,
            )
            outcome.api_calls += 1
            for change, result in zip(chunk, results, strict=True):
                if not result.ok:
                    outcome.rejected.append(
                        (
                            change.contact_key,
                            change.profile.get("riid"),
                            "rejected_record",
                            result.message or result.error_code or "event not raised",
                        )
                    )
                elif change.change == "EXIT":
                    outcome.removed.append(change.contact_key)
                else:
                    outcome.sent_fields[change.contact_key] = self.fields_for(change)
        return outcome
