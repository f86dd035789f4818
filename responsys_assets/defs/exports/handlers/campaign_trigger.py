"""Campaign trigger export: members entering an audience get a merge-trigger email.

Sent at most once per (export, contact, audience entry): the runner records each entry before
the call, and a batch whose outcome is unknown is parked for an operator, never resent.
"""

from __future__ import annotations

from responsys_assets.config import CampaignTriggerExport
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.defs.exports.ledger import Batch
from responsys_assets.defs.exports.records import (
    as_text,
    chunks,
    list_columns,
    matchable,
    merge_rule,
    record_values,
)


class CampaignTriggerHandler(ExportHandler):
    idempotent = False
    sends_exits = False

    def __init__(self, export: CampaignTriggerExport):
        self.export = export
        self.columns = list_columns(export.merge_rule, {})
        self.rule = merge_rule(export.merge_rule)

    def prepare(self, client) -> None:
        return None

    def fields_for(self, change) -> dict:
        values = record_values(change.profile, self.columns)
        for name, column in self.export.optional_data.items():
            values[f"optionalData.{name}"] = as_text(change.profile.get(column))
        return values

    def send(self, client, batch: Batch) -> SendOutcome:
        outcome = SendOutcome()
        ready = matchable(batch.records, self.export.merge_rule, outcome)
        names = [target for target, _ in self.columns]
        for chunk in chunks(ready):
            rows = [record_values(c.profile, self.columns) for c in chunk]
            optional = [
                [
                    (name, as_text(c.profile.get(col)))
                    for name, col in self.export.optional_data.items()
                ]
                for c in chunk
            ]
            results = client.merge_trigger_email(
                self.export.campaign,
                self.export.list,
                self.export.folder,
                names,
                [[row[n] for n in names] for row in rows],
                optional,
                self.rule,
                async_mode=self.export.async_api,
            )
            outcome.api_calls += 1
            for change, result in zip(chunk, results, strict=True):
                if result.ok:
                    outcome.sent_fields[change.contact_key] = self.fields_for(change)
                else:
                    outcome.rejected.append(
                        (
                            change.contact_key,
                            change.profile.get("riid"),
                            "rejected_record",
                            result.message or result.error_code or "not sent",
                        )
                    )
        return outcome
