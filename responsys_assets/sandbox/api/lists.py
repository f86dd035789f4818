"""Profile list members (§2.1, §2.2): merge, retrieve and delete, and _MemberIndex, the per-batch
index of members by identifier."""

from __future__ import annotations

import copy
from typing import Any

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import ApiError, _invalid, _row_failure
from responsys_assets.sandbox.api.faults import INJECTED_FAILURE_CODE
from responsys_assets.sandbox.api.parsing import (
    MergeRule,
    _blank,
    _match_value,
    _obj,
    _record_data,
    parse_merge_rule,
)
from responsys_assets.sandbox.api.vocabulary import (
    _EMAIL_RE,
    MAX_QUERY_DELETES,
    SYSTEM_COLUMNS,
    _email_hashes,
    field_name_problem,
)
from responsys_assets.sandbox.store import MEMBER_COLUMNS


class _MemberIndex:
    """Members of one list by each identifier, kept current while a batch is merged."""

    _COLUMNS = ("riid", "customer_id", "email_address", "mobile_number")
    _COLUMNS += ("email_md5_hash", "email_sha256_hash")

    def __init__(self) -> None:
        self._by: dict[str, dict[str, list[dict]]] = {c: {} for c in self._COLUMNS}

    def add(self, member: dict) -> None:
        for col in self._COLUMNS:
            if member.get(col) is not None:
                bucket = self._by[col].setdefault(str(member[col]), [])
                if not any(m is member for m in bucket):
                    bucket.append(member)

    def remove(self, member: dict) -> None:
        for col in self._COLUMNS:
            bucket = self._by[col].get(str(member.get(col)), [])
            bucket[:] = [m for m in bucket if m is not member]

    def find(self, api_column: str, value: str) -> list[dict]:
        return self._by[MEMBER_COLUMNS[api_column]].get(value, [])


class ListEndpoints(_EndpointBase):
    """/lists/{list}/members: merge (sync and async), retrieve, delete by query, RIID or batch."""

    def merge_list(self, call: _Call) -> Any:
        """Merge up to 200 members (§2.1); each row answers with its RIID or MERGEFAILED."""
        body = _obj(call.json(), "request", {"recordData", "mergeRule"}, {"recordData"})
        names, records = _record_data(body["recordData"])
        call.records = len(records)
        rule = parse_merge_rule(body.get("mergeRule"))
        self._need_list(call.params["list"])
        results = self.merge_members(call.params["list"], names, records, rule, call.fail_indexes)
        return {
            "recordData": {
                "fieldNames": ["RIID_"],
                "records": [[str(r)] for r in results],
                "mapTemplateName": None,
            },
            "mergeRule": rule.echo(),
            "links": [
                {
                    "rel": "self",
                    "href": f"/rest/api/v1.3/lists/{call.params['list']}/members",
                    "method": "POST",
                }
            ],
        }

    def merge_members(
        self,
        list_name: str,
        names: list[str],
        records: list[list[str | None]],
        rule: MergeRule,
        fail_indexes: frozenset[int],
    ) -> list[int | str]:
        """The merge itself: one RIID or a MERGEFAILED string per record, one transaction."""
        upper = [n.upper() for n in names]
        if len(set(upper)) != len(upper):
            raise _invalid("fieldNames contains a duplicate (names are case-insensitive)")
        for name in upper:
            if name not in SYSTEM_COLUMNS and (problem := field_name_problem(name)):
                raise _invalid(problem)
        for col in (rule.match1, rule.match2):
            if col and col not in upper:
                raise _invalid(f"match column {col} is not in fieldNames")
        rows = [dict(zip(upper, rec, strict=True)) for rec in records]
        with self.store.lock:
            index = _MemberIndex()
            for col in (rule.match1, rule.match2):
                if col:
                    for m in self._find_by(list_name, col, [_blank(r[col]) for r in rows]):
                        index.add(m)
            results: list[int | str] = []
            inserts: dict[int, dict] = {}
            updates: dict[int, dict] = {}
            for i, row in enumerate(rows):
                if i in fail_indexes:
                    results.append(_row_failure("MERGEFAILED", i, INJECTED_FAILURE_CODE, "fault"))
                    continue
                outcome = self._merge_one(list_name, row, rule, index, inserts, updates)
                results.append(
                    outcome
                    if isinstance(outcome, int)
                    else "MERGEFAILED: " + f"Record {i} = {outcome}"
                )
            self.store.write_members(list_name, list(inserts.values()), list(updates.values()))
        return results

    def _merge_one(
        self,
        list_name: str,
        row: dict[str, str | None],
        rule: MergeRule,
        index: _MemberIndex,
        inserts: dict[int, dict],
        updates: dict[int, dict],
    ) -> int | str:
        v1 = _match_value(rule.match1, row[rule.match1])
        v2 = _match_value(rule.match2, row[rule.match2]) if rule.match2 else None
        if v1 is None:
            return f"MATCH_COLUMN_EMPTY: {rule.match1} is empty"
        if rule.operator == "AND" and v2 is None:
            return f"MATCH_COLUMN_EMPTY: {rule.match2} is empty"
        for col, value in ((rule.match1, v1), (rule.match2, v2)):
            if col == "RIID_" and value is not None and not value.isdigit():
                return f"INVALID_RIID: RIID_ {value!r} is not a number"
        candidates = index.find(rule.match1, v1)
        if rule.operator == "AND":
            col2 = MEMBER_COLUMNS[rule.match2 or ""]
            candidates = [m for m in candidates if str(m.get(col2)) == v2]
        elif not candidates and v2 is not None:
            candidates = index.find(rule.match2 or "", v2)
        if candidates:
            member = candidates[0]
            if rule.update_on_match == "NO_UPDATE":
                return int(member["riid"])
            changed = copy.deepcopy(member)
            problem = self._apply_values(changed, row, rule, inserting=False)
            if problem:
                return problem
            index.remove(member)
            member.clear()
            member.update(changed)
            index.add(member)
            if member["riid"] not in inserts:
                updates[member["riid"]] = member
            return int(member["riid"])
        if not rule.insert_on_no_match:
            return "NO_MATCHING_RECORD: no member matches and insertOnNoMatch is false"
        new: dict[str, Any] = {"fields": {}}
        problem = self._apply_values(new, row, rule, inserting=True)
        if problem:
            return problem
        new["riid"] = self.store.next_riids(1)[0]
        inserts[new["riid"]] = new
        index.add(new)
        return int(new["riid"])

    @staticmethod
    def _apply_values(
        member: dict, row: dict[str, str | None], rule: MergeRule, inserting: bool
    ) -> str | None:
        """Write one record's values into a member dict; returns a failure text or None."""
        for name, raw in row.items():
            value = _blank(raw)
            if name == "RIID_":
                continue
            if name == "EMAIL_PERMISSION_STATUS_":
                if value is None:
                    continue
                if value not in (rule.optin, rule.optout):
                    return f"INVALID_PERMISSION_STATUS: {value!r} is not optinValue/optoutValue"
                member["email_permission_status"] = "I" if value == rule.optin else "O"
            elif name == "EMAIL_FORMAT_":
                if value is None:
                    continue
                if value not in (rule.html, rule.text):
                    return f"INVALID_EMAIL_FORMAT: {value!r} is neither htmlValue nor textValue"
                member["email_format"] = "H" if value == rule.html else "T"
            elif name == "EMAIL_ADDRESS_":
                if value is not None and not _EMAIL_RE.fullmatch(value):
                    return "INVALID_EMAIL_ADDRESS: email address is not valid"
                member["email_address"] = value
                md5, sha256 = _email_hashes(value)
                if "EMAIL_MD5_HASH_" not in row:
                    member["email_md5_hash"] = md5
                if "EMAIL_SHA256_HASH_" not in row:
                    member["email_sha256_hash"] = sha256
            elif name in MEMBER_COLUMNS:
                member[MEMBER_COLUMNS[name]] = _match_value(name, value)
            else:
                member["fields"][name] = value
        if inserting and member.get("email_permission_status") is None:
            member["email_permission_status"] = rule.default_status
        empty = {
            "E": member.get("email_address") is None,
            "M": member.get("mobile_number") is None,
            "P": not member["fields"].get("POSTAL_STREET_1_"),
        }
        for channel in sorted(rule.reject_channels):
            if empty[channel]:
                return f"CHANNEL_EMPTY: channel {channel} is empty (rejectRecordIfChannelEmpty)"
        return None

    def retrieve_member(self, call: _Call) -> Any:
        """One member by qa/id with the fs fields; absent -> 404 RECIPIENT_NOT_FOUND."""
        list_name = call.params["list"]
        column = self._query_attribute(call.one("qa"))
        ident = call.one("id")
        fields = self._fs(call.one("fs"))
        self._need_list(list_name)
        found = self._find_by(list_name, column, [ident])
        if not found:
            raise ApiError(404, "RECIPIENT_NOT_FOUND", f"No recipient found with {column} {ident}")
        member = found[0]
        if fields == ["ALL"]:
            fields = [*MEMBER_COLUMNS, *sorted(member["fields"])]
        return {
            "recordData": {
                "fieldNames": fields,
                "records": [[self._member_value(member, f) for f in fields]],
                "mapTemplateName": None,
            },
            "mergeRule": None,
            "links": [],
        }

    @staticmethod
    def _member_value(member: dict, name: str) -> str | None:
        if name in MEMBER_COLUMNS:
            value = member.get(MEMBER_COLUMNS[name])
            return None if value is None else str(value)
        return member["fields"].get(name)

    def delete_members_query(self, call: _Call) -> Any:
        """DELETE ?qa=&id= removes at most 10 matches; none -> 404 RECIPIENT_NOT_FOUND."""
        list_name = call.params["list"]
        column = self._query_attribute(call.one("qa"))
        ident = call.one("id")
        self._need_list(list_name)
        with self.store.lock:
            found = self._find_by(list_name, column, [ident])
            if not found:
                raise ApiError(
                    404, "RECIPIENT_NOT_FOUND", f"No recipient found with {column} {ident}"
                )
            self.store.delete_members(list_name, [m["riid"] for m in found[:MAX_QUERY_DELETES]])
        remaining = max(0, len(found) - MAX_QUERY_DELETES)
        return {
            "totalMatchedRecords": len(found),
            "remainingRecordCount": remaining,
            "hasMoreRecords": remaining > 0,
        }

    def delete_member(self, call: _Call) -> Any:
        list_name = call.params["list"]
        self._need_list(list_name)
        riid = call.params["riid"]
        if not riid.isdigit():
            raise _invalid(f"RIID {riid!r} is not a number")
        with self.store.lock:
            found = self._find_by(list_name, "RIID_", [riid])
            if found:
                self.store.delete_members(list_name, [int(riid)])
                row = [riid]
            else:
                row = [_row_failure("DELETEFAILED", 0, "RECIPIENT_NOT_FOUND", f"RIID {riid}")]
        return {"recordData": {"fieldNames": ["RIID_"], "records": [row], "mapTemplateName": None}}

    def delete_members_batch(self, call: _Call) -> Any:
        list_name = call.params["list"]
        column, ids = self._delete_ids(call)
        self._need_list(list_name)
        rows = []
        with self.store.lock:
            index = _MemberIndex()
            for m in self._find_by(list_name, column, ids):
                index.add(m)
            doomed: list[int] = []
            for i, ident in enumerate(ids):
                found = index.find(column, ident)
                if i in call.fail_indexes:
                    rows.append([_row_failure("DELETEFAILED", i, INJECTED_FAILURE_CODE, "fault")])
                elif not found:
                    rows.append(
                        [
                            _row_failure(
                                "DELETEFAILED", i, "RECIPIENT_NOT_FOUND", f"{column} {ident}"
                            )
                        ]
                    )
                else:
                    doomed.extend(m["riid"] for m in found)
                    rows.append([str(found[0]["riid"])])
            self.store.delete_members(list_name, dict.fromkeys(doomed))
        return {"recordData": {"fieldNames": ["RIID_"], "records": rows, "mapTemplateName": None}}
