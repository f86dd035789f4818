"""Profile extension tables (§2.3): list, create, merge, retrieve and delete PET rows."""

from __future__ import annotations

from typing import Any

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import ApiError, _invalid, _row_failure
from responsys_assets.sandbox.api.faults import INJECTED_FAILURE_CODE
from responsys_assets.sandbox.api.lists import _MemberIndex
from responsys_assets.sandbox.api.parsing import (
    _blank,
    _bool,
    _match_value,
    _obj,
    _record_data,
    _update_on_match,
)
from responsys_assets.sandbox.api.vocabulary import (
    _OBJECT_NAME_RE,
    HASH_COLUMNS,
    LIST_MATCH_COLUMNS,
    PET_FIELD_TYPES,
    PET_LIST_KEYS,
    PET_MATCH_COLUMNS,
    _typed_value_problem,
)


class PetEndpoints(_EndpointBase):
    """/lists/{list}/listExtensions[/{pet}/members]."""

    def list_pets(self, call: _Call) -> Any:
        self._need_list(call.params["list"])
        return [
            {
                "profileExtension": {"objectName": p["name"], "folderName": p["folder"]},
                "fields": p["fields"],
            }
            for p in self.store.pets(call.params["list"])
        ]

    def create_pet(self, call: _Call) -> Any:
        """Create a PET (§2.3); a duplicate name gives 400 PROFILE_EXTENSION_ALREADY_EXISTS."""
        body = _obj(call.json(), "request", {"profileExtension", "fields"}, {"profileExtension"})
        pe = _obj(
            body["profileExtension"],
            "profileExtension",
            {"objectName", "folderName"},
            {"objectName", "folderName"},
        )
        name, folder = pe["objectName"], pe["folderName"]
        if not isinstance(name, str) or not _OBJECT_NAME_RE.fullmatch(name):
            raise _invalid("objectName must start with a letter and use only A-Z a-z 0-9 _")
        fields = self._field_defs(body.get("fields"), PET_FIELD_TYPES, {"fieldName", "fieldType"})
        self._need_list(call.params["list"])
        if not isinstance(folder, str):
            raise _invalid("folderName must be a string")
        self._need_folder(folder)
        if not self.store.create_pet(call.params["list"], name, folder, fields):
            raise ApiError(
                400, "PROFILE_EXTENSION_ALREADY_EXISTS", f"Profile extension {name} already exists"
            )
        return True

    def _pet_match(self, value: Any, name: str, required: bool) -> str | None:
        if value in (None, "") and not required:
            return None
        if value not in PET_MATCH_COLUMNS:
            raise _invalid("Match Column is null")
        return value

    def merge_pet(self, call: _Call) -> Any:
        """Merge PET rows (§2.3): flat body, match names without the trailing underscore."""
        body = _obj(
            call.json(),
            "request",
            {
                "recordData",
                "insertOnNoMatch",
                "updateOnMatch",
                "matchColumnName1",
                "matchColumnName2",
            },
            {"recordData"},
        )
        names, records = _record_data(body["recordData"])
        call.records = len(records)
        match1 = self._pet_match(body.get("matchColumnName1"), "matchColumnName1", True)
        match2 = self._pet_match(body.get("matchColumnName2"), "matchColumnName2", False)
        insert = _bool(body.get("insertOnNoMatch"), "insertOnNoMatch", True)
        update = _update_on_match(body.get("updateOnMatch"))
        list_name, pet_name = call.params["list"], call.params["pet"]
        pet = self._need_pet(list_name, pet_name)
        types = {f["fieldName"].upper(): f["fieldType"] for f in pet["fields"]}
        upper = [n.upper() for n in names]
        if len(set(upper)) != len(upper):
            raise _invalid("fieldNames contains a duplicate (names are case-insensitive)")
        unknown = [n for n in upper if n not in types and n not in LIST_MATCH_COLUMNS]
        if unknown:
            raise _invalid(f"fields not in profile extension {pet_name}: {', '.join(unknown)}")
        keys = [PET_MATCH_COLUMNS[m] for m in (match1, match2) if m]
        for key in keys:
            if key not in upper:
                raise _invalid(f"match column {key} is not in fieldNames")
        rows = [dict(zip(upper, rec, strict=True)) for rec in records]
        has_list_key = bool(PET_LIST_KEYS & set(upper))
        never_insert = bool(set(keys) & HASH_COLUMNS)
        results: list[str] = []
        with self.store.lock:
            index = _MemberIndex()
            for key in keys:
                for m in self._find_by(list_name, key, [_blank(r[key]) for r in rows]):
                    index.add(m)
            riids = {}
            for i, row in enumerate(rows):
                member = None
                for key in keys:
                    value = _match_value(key, row[key])
                    if value is not None and index.find(key, value):
                        member = index.find(key, value)[0]
                        break
                riids[i] = member
            existing = self.store.pet_rows_for(
                list_name, pet_name, [m["riid"] for m in riids.values() if m]
            )
            writes: dict[int, dict] = {}
            for i, row in enumerate(rows):
                member = riids[i]
                if i in call.fail_indexes:
                    failure = (INJECTED_FAILURE_CODE, "fault")
                elif not has_list_key:
                    failure = (
                        "NO_LIST_KEY",
                        "fieldNames must contain RIID_, EMAIL_ADDRESS_ or CUSTOMER_ID_",
                    )
                elif _blank(row[keys[0]]) is None:
                    failure = ("MATCH_COLUMN_EMPTY", f"{keys[0]} is empty")
                elif member is None:
                    failure = ("RECIPIENT_NOT_FOUND", "no profile list member matches")
                else:
                    riid = int(member["riid"])
                    current = writes.get(riid, existing.get(riid))
                    failure = None
                    if current is None and (not insert or never_insert):
                        failure = (
                            "NO_MATCHING_RECORD",
                            "no PET row matches and insertOnNoMatch is false",
                        )
                    elif current is not None and update == "NO_UPDATE":
                        results.append(str(riid))
                        continue
                    else:
                        values = {n: v for n, v in row.items() if n in types}
                        bad = [
                            f"{n} {p}"
                            for n, v in values.items()
                            if (p := _typed_value_problem(types[n], v))
                        ]
                        if bad:
                            failure = ("INVALID_FIELD_VALUE", "; ".join(bad))
                        else:
                            writes[riid] = {**(current or {}), **values}
                            results.append(str(riid))
                            continue
                results.append(_row_failure("MERGEFAILED", i, *failure))
            self.store.write_pet_rows(list_name, pet_name, writes)
        return {
            "recordData": {
                "fieldNames": ["RIID_"],
                "records": [[r] for r in results],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": insert,
            "updateOnMatch": update,
            "matchColumnName1": match1,
            "matchColumnName2": match2,
            "links": [],
        }

    def retrieve_pet_row(self, call: _Call) -> Any:
        """One PET row by qa/id with the fs fields; absent -> 404 RECIPIENT_NOT_FOUND."""
        list_name, pet_name = call.params["list"], call.params["pet"]
        column = self._query_attribute(call.one("qa"))
        ident = call.one("id")
        fields = self._fs(call.one("fs"))
        pet = self._need_pet(list_name, pet_name)
        pet_fields = [f["fieldName"].upper() for f in pet["fields"]]
        if fields == ["ALL"]:
            fields = ["RIID_", *pet_fields]
        unknown = [f for f in fields if f != "RIID_" and f not in pet_fields]
        if unknown:
            raise _invalid(f"fields not in profile extension {pet_name}: {', '.join(unknown)}")
        found = self._find_by(list_name, column, [ident])
        rows = self.store.pet_rows_for(list_name, pet_name, [m["riid"] for m in found])
        riid = next((m["riid"] for m in found if m["riid"] in rows), None)
        if riid is None:
            raise ApiError(404, "RECIPIENT_NOT_FOUND", f"No {pet_name} row for {column} {ident}")
        values = rows[riid]
        record = [str(riid) if f == "RIID_" else values.get(f) for f in fields]
        return {"recordData": {"fieldNames": fields, "records": [record], "mapTemplateName": None}}

    def delete_pet_batch(self, call: _Call) -> Any:
        list_name, pet_name = call.params["list"], call.params["pet"]
        column, ids = self._delete_ids(call)
        self._need_pet(list_name, pet_name)
        rows = []
        with self.store.lock:
            index = _MemberIndex()
            for m in self._find_by(list_name, column, ids):
                index.add(m)
            candidates = [m["riid"] for i in ids for m in index.find(column, i)]
            existing = self.store.pet_rows_for(list_name, pet_name, candidates)
            doomed = []
            for i, ident in enumerate(ids):
                hits = [m["riid"] for m in index.find(column, ident) if m["riid"] in existing]
                if i in call.fail_indexes:
                    rows.append([_row_failure("DELETEFAILED", i, INJECTED_FAILURE_CODE, "fault")])
                elif not hits:
                    rows.append(
                        [
                            _row_failure(
                                "DELETEFAILED", i, "RECIPIENT_NOT_FOUND", f"{column} {ident}"
                            )
                        ]
                    )
                else:
                    doomed.extend(hits)
                    rows.append([str(hits[0])])
            self.store.delete_pet_rows(list_name, pet_name, dict.fromkeys(doomed))
        return {"recordData": {"fieldNames": ["RIID_"], "records": rows, "mapTemplateName": None}}

    def delete_pet_row(self, call: _Call) -> Any:
        list_name, pet_name, riid = call.params["list"], call.params["pet"], call.params["riid"]
        self._need_pet(list_name, pet_name)
        if not riid.isdigit():
            raise _invalid(f"RIID {riid!r} is not a number")
        with self.store.lock:
            if self.store.pet_rows_for(list_name, pet_name, [int(riid)]):
                self.store.delete_pet_rows(list_name, pet_name, [int(riid)])
                row = [riid]
            else:
                row = [_row_failure("DELETEFAILED", 0, "RECIPIENT_NOT_FOUND", f"RIID {riid}")]
        return {"recordData": {"fieldNames": ["RIID_"], "records": [row], "mapTemplateName": None}}
