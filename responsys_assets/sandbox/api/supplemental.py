"""Folders (§2.7) and supplemental tables (§2.4): create, merge, retrieve, delete rows, drop and
list tables."""

from __future__ import annotations

from typing import Any

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import ApiError, _invalid, _row_failure
from responsys_assets.sandbox.api.faults import INJECTED_FAILURE_CODE
from responsys_assets.sandbox.api.parsing import _blank, _bool, _obj, _record_data, _update_on_match
from responsys_assets.sandbox.api.vocabulary import (
    _FOLDER_NAME_RE,
    _OBJECT_NAME_RE,
    MAX_FIELD_SELECTION_CHARS,
    MAX_RECORDS,
    MAX_SUPP_TABLES,
    SUPP_FIELD_TYPES,
    _typed_value_problem,
)
from responsys_assets.sandbox.store import Store


class SupplementalEndpoints(_EndpointBase):
    """/folders, /folders/{folder}/suppData[/{table}/...] and /suppData."""

    def create_folder(self, call: _Call) -> Any:
        """Create a folder (§2.7); a duplicate is 400 FOLDER_ALREADY_EXISTS."""
        body = _obj(call.json(), "request", {"folderName"}, {"folderName"})
        name = body["folderName"]
        if not isinstance(name, str) or not _FOLDER_NAME_RE.fullmatch(name):
            raise _invalid(
                "folderName must be 1-100 characters of A-Z a-z 0-9 space ! - = @ _ [ ] { }"
            )
        folder_id = self.store.create_folder(name)
        if folder_id is None:
            raise ApiError(400, "FOLDER_ALREADY_EXISTS", f"Folder {name} already exists")
        return {"success": True, "folderId": folder_id, "errorMessage": None}

    def create_supp(self, call: _Call) -> Any:
        """Create a supplemental table (§2.4); a primary key is mandatory; a duplicate is
        400 TABLE_ALREADY_EXISTS."""
        body = _obj(call.json(), "request", {"table", "fields", "primaryKeys"}, {"table", "fields"})
        table = _obj(body["table"], "table", {"objectName"}, {"objectName"})
        name = table["objectName"]
        if not isinstance(name, str) or not _OBJECT_NAME_RE.fullmatch(name):
            raise _invalid("objectName must start with a letter and use only A-Z a-z 0-9 _")
        fields = self._field_defs(
            body["fields"], SUPP_FIELD_TYPES, {"fieldName", "fieldType", "dataExtractionKey"}
        )
        if not fields:
            raise _invalid("fields is empty")
        pks = body.get("primaryKeys")
        if not isinstance(pks, list) or not pks:
            raise _invalid("A primary key is mandatory: primaryKeys is null or empty")
        field_names = [f["fieldName"] for f in fields]
        if len(set(pks)) != len(pks) or not all(pk in field_names for pk in pks):
            raise _invalid("primaryKeys must name distinct fields of the table (case-sensitive)")
        self._need_folder(call.params["folder"])
        if self.store.supp_table_count() >= MAX_SUPP_TABLES:
            raise ApiError(
                400, "SUPP_TABLE_LIMIT_EXCEEDED", f"at most {MAX_SUPP_TABLES} supplemental tables"
            )
        if not self.store.create_supp_table(call.params["folder"], name, fields, pks):
            raise ApiError(400, "TABLE_ALREADY_EXISTS", f"Table {name} already exists")
        return True

    def merge_supp(self, call: _Call) -> Any:
        """Merge supplemental rows (§2.4): case-sensitive fieldNames, every PK column required;
        successful rows are echoed, failures are one-element MERGEFAILED rows."""
        body = _obj(
            call.json(),
            "request",
            {"recordData", "insertOnNoMatch", "updateOnMatch", "matchColumnNames"},
            {"recordData"},
        )
        names, records = _record_data(body["recordData"])
        call.records = len(records)
        if "matchColumnNames" in body:
            raise _invalid("matchColumnNames is only for tables without a primary key")
        insert = _bool(body.get("insertOnNoMatch"), "insertOnNoMatch", True)
        update = _update_on_match(body.get("updateOnMatch"))
        folder, table_name = call.params["folder"], call.params["table"]
        table = self._need_supp(folder, table_name)
        types = {f["fieldName"]: f["fieldType"] for f in table["fields"]}
        if len(set(names)) != len(names):
            raise _invalid("fieldNames contains a duplicate")
        unknown = [n for n in names if n not in types]
        if unknown:
            raise _invalid(f"unknown fields (names are case-sensitive): {', '.join(unknown)}")
        missing = [pk for pk in table["primary_keys"] if pk not in names]
        if missing:
            raise _invalid(f"all primary key columns are required; missing {', '.join(missing)}")
        rows = [dict(zip(names, rec, strict=True)) for rec in records]
        results: list[list[str | None]] = []
        with self.store.lock:
            keys = [Store.supp_key([r[pk] or "" for pk in table["primary_keys"]]) for r in rows]
            existing = self.store.supp_rows_for(folder, table_name, keys)
            writes: dict[str, dict] = {}
            for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
                current = writes.get(key, existing.get(key))
                bad = [
                    f"{n} {p}" for n, v in row.items() if (p := _typed_value_problem(types[n], v))
                ]
                if i in call.fail_indexes:
                    failure = (INJECTED_FAILURE_CODE, "fault")
                elif any(_blank(row[pk]) is None for pk in table["primary_keys"]):
                    failure = ("PRIMARY_KEY_EMPTY", "a primary key value is empty")
                elif bad:
                    failure = ("INVALID_FIELD_VALUE", "; ".join(bad))
                elif current is None and not insert:
                    failure = ("NO_MATCHING_RECORD", "no row matches and insertOnNoMatch is false")
                else:
                    if current is None or update == "REPLACE_ALL":
                        writes[key] = {**(current or {}), **row}
                    results.append([row[n] for n in names])
                    continue
                results.append([_row_failure("MERGEFAILED", i, *failure)])
            self.store.write_supp_rows(folder, table_name, writes)
        return {
            "recordData": {"fieldNames": names, "records": results, "mapTemplateName": None},
            "insertOnNoMatch": insert,
            "updateOnMatch": update,
            "links": [],
        }

    def delete_supp_row(self, call: _Call) -> Any:
        """DELETE ?qa=PK1&qa=PK2&id=v1&id=v2: one row per request."""
        folder, table_name = call.params["folder"], call.params["table"]
        table = self._need_supp(folder, table_name)
        qa, ids = call.query.getlist("qa"), call.query.getlist("id")
        if sorted(qa) != sorted(table["primary_keys"]) or len(ids) != len(qa):
            raise _invalid("qa must list every primary key column once, with one id per qa")
        by_name = dict(zip(qa, ids, strict=True))
        key = Store.supp_key([by_name[pk] for pk in table["primary_keys"]])
        if self.store.delete_supp_row(folder, table_name, key):
            row: list[str | None] = list(ids)
        else:
            row = [_row_failure("DELETEFAILED", 0, "RECORD_NOT_FOUND", "no row has that key")]
        return {"recordData": {"fieldNames": qa, "records": [row], "mapTemplateName": None}}

    def retrieve_supp_row(self, call: _Call) -> Any:
        """GET ?qa=PK1&qa=PK2&id=v1&id=v2&fs=…: one row by its whole primary key (names are
        case-sensitive); the answer echoes recordData plus the merge-only attributes at their
        defaults, as Oracle's sample shows."""
        folder, table_name = call.params["folder"], call.params["table"]
        table = self._need_supp(folder, table_name)
        qa, ids = call.query.getlist("qa"), call.query.getlist("id")
        if sorted(qa) != sorted(table["primary_keys"]) or len(ids) != len(qa):
            raise _invalid("qa must list every primary key column once, with one id per qa")
        fs = call.one("fs")
        if len(fs) > MAX_FIELD_SELECTION_CHARS:
            raise _invalid(f"fs must be at most {MAX_FIELD_SELECTION_CHARS} characters")
        columns = [f["fieldName"] for f in table["fields"]]
        fields = [n.strip() for n in fs.split(",") if n.strip()]
        if [f.lower() for f in fields] == ["all"]:
            fields = columns
        unknown = [f for f in fields if f not in columns]
        if not fields or unknown:
            raise _invalid(f"unknown fields (names are case-sensitive): {', '.join(unknown)}")
        by_name = dict(zip(qa, ids, strict=True))
        key = Store.supp_key([by_name[pk] for pk in table["primary_keys"]])
        row = self.store.supp_rows_for(folder, table_name, [key]).get(key)
        if row is None:
            raise ApiError(404, "RECORD_NOT_FOUND", f"No record in {table_name} has that key")
        return {
            "recordData": {
                "fieldNames": fields,
                "records": [[row.get(f) for f in fields]],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": False,
            "updateOnMatch": None,
            "links": [],
        }

    def drop_supp(self, call: _Call) -> Any:
        self._need_supp(call.params["folder"], call.params["table"])
        self.store.drop_supp_table(call.params["folder"], call.params["table"])
        return True

    def list_supp(self, call: _Call) -> Any:
        """GET /suppData?offset&limit (limit at most 200)."""
        try:
            offset = int(call.query.get("offset", "0"))
            limit = int(call.query.get("limit", str(MAX_RECORDS)))
        except ValueError:
            raise _invalid("offset and limit must be integers") from None
        if offset < 0 or not 1 <= limit <= MAX_RECORDS:
            raise _invalid(f"limit must be between 1 and {MAX_RECORDS}; offset must be >= 0")
        return [
            {
                "table": {"objectName": t["name"], "folderName": t["folder"]},
                "fields": t["fields"],
                "primaryKeys": t["primary_keys"],
            }
            for t in self.store.supp_tables(offset, limit)
        ]
