"""Email campaign triggers and custom events (§2.5, §2.6), answered per recipient."""

from __future__ import annotations

from collections.abc import Sequence

from responsys_assets.lib.responsys.apis import _APIS, _segment
from responsys_assets.lib.responsys.batching import _check_count, _check_records
from responsys_assets.lib.responsys.models import (
    MergeRule,
    Recipient,
    RowResult,
    _optional_data_json,
)


class CampaignsMixin:
    """ResponsysClient's trigger and custom-event calls; they go through its `_call`,
    `_rows` and `_log`."""

    # -- email triggers and custom events ----------------------------------------------

    def merge_trigger_email(
        self,
        campaign: str,
        list_name: str,
        folder: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        optional_data: Sequence[Sequence[tuple[str, str]]],
        merge_rule: MergeRule,
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge rows into the campaign's profile list and send the email (§2.5).

        The documented body names no list: Responsys uses the campaign's list. `list_name` and
        `folder` only label logs and errors so a mismatch is visible to the operator.
        """
        _check_records(field_names, records)
        if len(optional_data) != len(records):
            raise ValueError("optional_data needs one entry (possibly empty) per record")
        api = _APIS["merge_trigger_email"]
        body = {
            "mergeTriggerRecordData": {
                "fieldNames": list(field_names),
                "mergeTriggerRecords": [
                    {"fieldValues": list(r), "optionalData": _optional_data_json(o)}
                    for r, o in zip(records, optional_data, strict=True)
                ],
            },
            "mergeRule": merge_rule.to_json(),
        }
        path = f"/campaigns/{_segment(campaign, what='campaign name')}/email"
        self._log.info(
            "responsys merge_trigger_email: campaign %s, list %s/%s, %d records",
            campaign,
            folder,
            list_name,
            len(records),
        )
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records), recipients=True)

    def trigger_email(
        self, campaign: str, recipients: Sequence[Recipient], *, async_mode: bool = False
    ) -> list[RowResult]:
        """Send a campaign to existing list members (§2.5)."""
        _check_count(len(recipients), "recipients")
        api = _APIS["trigger_email"]
        body = {"recipientData": [r.to_json() for r in recipients]}
        path = f"/campaigns/{_segment(campaign, what='campaign name')}/email"
        result = self._call(api, path, body=body, records=len(recipients), async_mode=async_mode)
        return self._rows(api, result, len(recipients), recipients=True)

    def send_custom_event(
        self, event_name: str, recipients: Sequence[Recipient], *, async_mode: bool = False
    ) -> list[RowResult]:
        """Raise a custom event for up to 200 recipients (§2.6)."""
        _check_count(len(recipients), "recipients")
        api = _APIS["send_custom_event"]
        body = {
            "customEvent": {
                "eventStringDataMapping": None,
                "eventNumberDataMapping": None,
                "eventDateDataMapping": None,
            },
            "recipientData": [r.to_json() for r in recipients],
        }
        path = f"/events/{_segment(event_name, what='event name')}"
        result = self._call(api, path, body=body, records=len(recipients), async_mode=async_mode)
        return self._rows(api, result, len(recipients), recipients=True)
