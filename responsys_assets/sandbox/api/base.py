"""The base class of the endpoint mixins: store access, the lookups that raise the NOT_FOUND
errors, and the request pieces several resources share (fs, delete ids, field definitions,
recipients)."""

from __future__ import annotations

from typing import Any

from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import ApiError, _bad_content, _invalid
from responsys_assets.sandbox.api.faults import FaultInjector
from responsys_assets.sandbox.api.parsing import _check_count, _obj, _optional_data
from responsys_assets.sandbox.api.settings import EmulatorSettings
from responsys_assets.sandbox.api.vocabulary import (
    _RECIPIENT_KEYS,
    HASH_COLUMNS,
    MAX_DELETE_ID_LENGTH,
    MAX_FIELD_SELECTION_CHARS,
    QUERY_ATTRIBUTES,
    SYSTEM_COLUMNS,
    field_name_problem,
)
from responsys_assets.sandbox.store import MEMBER_COLUMNS, Store


class _EndpointBase:
    """State and helpers every endpoint mixin uses; _Emulator (app.py) sets the attributes."""

    store: Store
    settings: EmulatorSettings
    faults: FaultInjector

    def _need_list(self, name: str) -> None:
        if not self.store.list_exists(name):
            raise ApiError(404, "LIST_NOT_FOUND", f"List {name} not found")

    def _need_folder(self, name: str) -> None:
        if not self.store.folder_exists(name):
            raise ApiError(404, "FOLDER_NOT_FOUND", f"Folder {name} not found")

    def _need_pet(self, list_name: str, pet: str) -> dict:
        self._need_list(list_name)
        found = self.store.pet(list_name, pet)
        if found is None:
            raise ApiError(404, "TABLE_NOT_FOUND", f"Profile extension {pet} not found")
        return found

    def _need_supp(self, folder: str, table: str) -> dict:
        self._need_folder(folder)
        found = self.store.supp_table(folder, table)
        if found is None:
            raise ApiError(404, "TABLE_NOT_FOUND", f"Supplemental table {table} not found")
        return found

    def _find_by(self, list_name: str, column: str, values: list[str]) -> list[dict]:
        if column == "RIID_":
            ints = [int(v) for v in values if v is not None and v.strip().isdigit()]
            return self.store.find_members(list_name, "riid", ints)
        if column in HASH_COLUMNS:
            values = [v.lower() for v in values if v is not None]
        return self.store.find_members(list_name, MEMBER_COLUMNS[column], values)

    def _query_attribute(self, value: str) -> str:
        if value not in QUERY_ATTRIBUTES:
            raise _invalid("qa must be one of r, e, c, m")
        return QUERY_ATTRIBUTES[value]

    @staticmethod
    def _fs(value: str) -> list[str]:
        if len(value) > MAX_FIELD_SELECTION_CHARS:
            raise _invalid(f"fs must be at most {MAX_FIELD_SELECTION_CHARS} characters")
        names = [n.strip().upper() for n in value.split(",") if n.strip()]
        if not names:
            raise _invalid("fs is empty")
        if names == ["ALL"]:
            return names
        for name in names:
            if name not in SYSTEM_COLUMNS and (problem := field_name_problem(name)):
                raise _invalid(problem)
        return names

    def _delete_ids(self, call: _Call) -> tuple[str, list[str]]:
        """Batch-delete body (§2.2). `ids` may be flat or an array of one-element arrays (the
        reference records both shapes)."""
        body = _obj(call.json(), "request", {"queryAttribute", "ids"}, {"queryAttribute", "ids"})
        column = self._query_attribute(body["queryAttribute"])
        ids = body["ids"]
        if not isinstance(ids, list) or not ids:
            raise _invalid("ids is null or empty")
        _check_count(len(ids), "ids")
        call.records = len(ids)
        flat = []
        for item in ids:
            if isinstance(item, list) and len(item) == 1:
                item = item[0]
            if not isinstance(item, str) or not item:
                raise _bad_content("each id must be a non-empty string")
            if len(item) > MAX_DELETE_ID_LENGTH:
                raise _invalid(f"ids must be at most {MAX_DELETE_ID_LENGTH} characters")
            flat.append(item)
        return column, flat

    @staticmethod
    def _field_defs(value: Any, types: frozenset[str], keys: set[str]) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise _invalid("fields must be an array")
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in value:
            item = _obj(item, "fields", keys, {"fieldName", "fieldType"})
            name, ftype = item["fieldName"], item["fieldType"]
            problem = field_name_problem(name)
            if problem:
                raise _invalid(problem)
            if ftype not in types:
                raise _invalid(f"fieldType of {name} must be one of {sorted(types)}")
            if name.upper() in seen:
                raise _invalid(f"field {name} is defined twice (names are case-insensitive)")
            seen.add(name.upper())
            if item.get("dataExtractionKey") is not None and not isinstance(
                item["dataExtractionKey"], bool
            ):
                raise _invalid("dataExtractionKey must be true or false")
            out.append({k: item[k] for k in sorted(item)})
        return out

    def _recipients(self, call: _Call, value: Any) -> list[tuple[dict, list]]:
        if not isinstance(value, list) or not value:
            raise _invalid("recipientData is null or empty")
        _check_count(len(value), "recipients")
        call.records = len(value)
        out = []
        for item in value:
            item = _obj(item, "recipientData", {"recipient", "optionalData"}, {"recipient"})
            recipient = _obj(
                item["recipient"],
                "recipient",
                {*_RECIPIENT_KEYS, "listName", "emailFormat"},
                {"listName"},
            )
            _obj(recipient["listName"], "listName", {"folderName", "objectName"}, {"objectName"})
            if recipient.get("emailFormat") not in (None, "HTML_FORMAT", "TEXT_FORMAT"):
                raise _invalid("emailFormat must be HTML_FORMAT or TEXT_FORMAT")
            for key in _RECIPIENT_KEYS:
                v = recipient.get(key)
                if isinstance(v, bool) or (v is not None and not isinstance(v, (str, int))):
                    raise _bad_content(f"recipient {key} must be a string")
            out.append((recipient, _optional_data(item.get("optionalData"))))
        return out

    def _resolve(self, recipient: dict) -> tuple[dict | None, str | None]:
        """Find a recipient by the first identifier given, in its listName."""
        list_name = recipient["listName"]["objectName"]
        if not self.store.list_exists(list_name):
            return None, f"LIST_NOT_FOUND: List {list_name} not found"
        for key, column in _RECIPIENT_KEYS.items():
            value = recipient.get(key)
            if value in (None, "", -1, 0):
                continue
            found = self._find_by(list_name, column, [str(value)])
            if not found:
                return None, f"RECIPIENT_NOT_FOUND: no recipient with {column} {value}"
            return found[0], None
        return None, "RECIPIENT_NOT_FOUND: the recipient has no identifier"
