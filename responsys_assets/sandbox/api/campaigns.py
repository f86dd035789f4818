"""Email campaign sends (§2.5): trigger to existing recipients, or merge-trigger (merge into the
campaign's profile list, then send)."""

from __future__ import annotations

from typing import Any

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import ApiError, _bad_content, _invalid
from responsys_assets.sandbox.api.faults import INJECTED_FAILURE_CODE
from responsys_assets.sandbox.api.parsing import (
    _check_count,
    _field_names,
    _obj,
    _optional_data,
    _row_values,
    parse_merge_rule,
)


class CampaignEndpoints(_EndpointBase):
    """POST /campaigns/{campaign}/email; merge-trigger merges through
    ListEndpoints.merge_members, which _Emulator also inherits."""

    def email(self, call: _Call) -> Any:
        """Trigger or merge-trigger a campaign (§2.5). Non-ASCII must arrive as \\uXXXX escapes:
        a raw non-ASCII byte anywhere in the body is 400 INVALID_REQUEST_CONTENT."""
        if not call.body.isascii():
            raise _bad_content("Non-ASCII characters must be escaped as \\uXXXX")
        body = call.json()
        if isinstance(body, dict) and "mergeTriggerRecordData" in body:
            return self._merge_trigger(call, body)
        body = _obj(body, "request", {"recipientData"}, {"recipientData"})
        recipients = self._recipients(call, body["recipientData"])
        campaign = self._need_campaign(call.params["campaign"])
        results: list[dict[str, Any]] = []
        sends: list[tuple[int, str | None, list]] = []
        for i, (recipient, optional) in enumerate(recipients):
            member, error = self._resolve(recipient)
            if i in call.fail_indexes:
                error = f"{INJECTED_FAILURE_CODE}: fault"
            results.append(self._send(member, error, optional, sends))
        self.store.record_email_sends(campaign["name"], sends)
        return results

    def _need_campaign(self, name: str) -> dict:
        campaign = self.store.campaign(name)
        if campaign is None:
            raise ApiError(404, "CAMPAIGN_NOT_FOUND", f"Campaign {name} not found")
        return campaign

    @staticmethod
    def _send(member: dict | None, error: str | None, optional: list, sends: list) -> dict:
        if member is None or error:
            riid = -1 if member is None else int(member["riid"])
            return {"recipientId": riid, "success": False, "errorMessage": error}
        if member.get("email_permission_status") == "O":
            return {
                "recipientId": int(member["riid"]),
                "success": False,
                "errorMessage": "RECIPIENT_OPTED_OUT: the recipient has opted out of email",
            }
        sends.append((int(member["riid"]), member.get("email_address"), optional))
        return {"recipientId": int(member["riid"]), "success": True, "errorMessage": None}

    def _merge_trigger(self, call: _Call, body: dict) -> Any:
        body = _obj(body, "request", {"mergeTriggerRecordData", "mergeRule"}, {"mergeRule"})
        data = _obj(
            body["mergeTriggerRecordData"],
            "mergeTriggerRecordData",
            {"fieldNames", "mergeTriggerRecords"},
            {"fieldNames", "mergeTriggerRecords"},
        )
        names = _field_names(data["fieldNames"])
        items = data["mergeTriggerRecords"]
        if not isinstance(items, list) or not items:
            raise _invalid("mergeTriggerRecords is empty")
        _check_count(len(items), "records")
        call.records = len(items)
        records, optionals = [], []
        for item in items:
            item = _obj(
                item, "mergeTriggerRecords", {"fieldValues", "optionalData"}, {"fieldValues"}
            )
            records.append(_row_values(item["fieldValues"], len(names), "fieldValues"))
            optionals.append(_optional_data(item.get("optionalData")))
        rule = parse_merge_rule(body["mergeRule"])
        campaign = self._need_campaign(call.params["campaign"])
        list_name = campaign["list"]
        if list_name is None:
            lists = self.store.list_names()
            if len(lists) != 1:
                raise _invalid(f"Campaign {campaign['name']} has no profile list")
            list_name = lists[0]
        self._need_list(list_name)
        merged = self.merge_members(list_name, names, records, rule, call.fail_indexes)
        riids = [r for r in merged if isinstance(r, int)]
        members = {m["riid"]: m for m in self.store.find_members(list_name, "riid", riids)}
        results, sends = [], []
        for outcome, optional in zip(merged, optionals, strict=True):
            if isinstance(outcome, int):
                results.append(self._send(members.get(outcome), None, optional, sends))
            else:
                results.append({"recipientId": -1, "success": False, "errorMessage": outcome})
        self.store.record_email_sends(campaign["name"], sends)
        return results
