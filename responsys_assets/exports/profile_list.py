"""Profile list export: audience members merged into a Responsys profile list.

Entries are merged with the configured merge rule; exits either delete the member, clear a
membership column, or are kept. Suppressed contacts (opted out, hard bounced, complained) are
never merged, so nobody is (re)added as opted-in by us.
"""

from __future__ import annotations

from responsys_assets.config import ProfileListExport
from responsys_assets.exports.ledger import Batch
from responsys_assets.exports.records import (
    chunks,
    list_columns,
    matchable,
    merge_rule,
    record_values,
)
from responsys_assets.exports.runner import SendOutcome


class ProfileListHandler:
    idempotent = True

    def __init__(self, export: ProfileListExport):
        self.export = export
        fields = dict(export.fields)
        if export.on_exit == "clear_column" and export.membership_column:
            fields[export.membership_column] = "_membership"
        self.columns = list_columns(export.merge_rule, fields)
        self.rule = merge_rule(export.merge_rule)

    @property
    def sends_exits(self) -> bool:
        return self.export.on_exit != "keep"

    def prepare(self, client) -> None:
        return None

    def fields_for(self, change) -> dict:
        profile = dict(change.profile, _membership="1" if change.change == "ENTER" else "")
        return record_values(profile, self.columns)

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        merges = [
            c for c in batch.records if c.change == "ENTER" or self.export.on_exit == "clear_column"
        ]
        exits = [c for c in batch.records if c.change == "EXIT" and self.export.on_exit == "delete"]
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
