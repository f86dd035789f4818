"""Tables beside a profile list: profile extension tables (PETs, §2.3), and folders and
supplemental tables (§2.4, §2.7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from responsys_assets.lib.responsys.apis import _APIS, _segment
from responsys_assets.lib.responsys.batching import _check_records
from responsys_assets.lib.responsys.errors import RequestRejected
from responsys_assets.lib.responsys.models import (
    _PET_MATCH_COLUMNS,
    LIST_KEY_COLUMNS,
    PET_FIELD_TYPES,
    PetInfo,
    RowResult,
    _delete_body,
    _query_attribute,
)


class TablesMixin:
    """ResponsysClient's PET, folder and supplemental-table calls; they go through its
    `_call`, `_rows`, `_retrieve`, `_failed` and `_redact`."""

    # -- profile extension tables ----------------------------------------------------

    def list_pets(self, list_name: str) -> list[PetInfo]:
        """The PETs of a profile list (§2.3)."""
        path = f"/lists/{_segment(list_name, what='list name')}/listExtensions"
        body = self._call(_APIS["list_pets"], path)
        pets = []
        for item in body if isinstance(body, list) else []:
            ext = item.get("profileExtension") or {}
            fields = [(f.get("fieldName"), f.get("fieldType")) for f in item.get("fields") or []]
            pets.append(PetInfo(ext.get("objectName"), ext.get("folderName"), fields))
        return pets

    def create_pet(
        self, list_name: str, pet_name: str, folder: str, fields: Sequence[tuple[str, str]]
    ) -> None:
        """Create a PET with typed fields (STR500, STR4000, INTEGER, NUMBER, TIMESTAMP)."""
        for name, kind in fields:
            if kind not in PET_FIELD_TYPES:
                raise ValueError(
                    f"PET field {name!r} type {kind!r} not in {sorted(PET_FIELD_TYPES)}"
                )
        body = {
            "profileExtension": {"objectName": pet_name, "folderName": folder},
            "fields": [{"fieldName": n, "fieldType": t} for n, t in fields],
        }
        path = f"/lists/{_segment(list_name, what='list name')}/listExtensions"
        self._call(_APIS["create_pet"], path, body=body)

    def merge_pet_members(
        self,
        list_name: str,
        pet_name: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        *,
        match_column_1: str = "RIID",
        match_column_2: str | None = None,
        insert_on_no_match: bool = True,
        update_on_match: str = "REPLACE_ALL",
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge up to 200 rows into a PET (§2.3): flat body, match names without '_'."""
        _check_records(field_names, records)
        for column in [match_column_1] + ([match_column_2] if match_column_2 else []):
            if column not in _PET_MATCH_COLUMNS:
                raise ValueError(
                    f"PET match column {column!r} must be one of {sorted(_PET_MATCH_COLUMNS)} "
                    "(no trailing underscore)"
                )
        if not LIST_KEY_COLUMNS & {f.upper() for f in field_names}:
            raise ValueError(f"PET field_names need a list key: one of {sorted(LIST_KEY_COLUMNS)}")
        if match_column_1.endswith("HASH") and insert_on_no_match:
            raise ValueError("a hash match never inserts: set insert_on_no_match=False")
        if update_on_match not in ("REPLACE_ALL", "NO_UPDATE"):
            raise ValueError("update_on_match must be REPLACE_ALL or NO_UPDATE")
        api = _APIS["merge_pet_members"]
        body = {
            "recordData": {
                "fieldNames": list(field_names),
                "records": [list(r) for r in records],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": insert_on_no_match,
            "updateOnMatch": update_on_match,
            "matchColumnName1": match_column_1,
            "matchColumnName2": match_column_2,
        }
        path = self._pet_path(list_name, pet_name)
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records))

    def delete_pet_members(
        self,
        list_name: str,
        pet_name: str,
        query_attribute: str,
        ids: Sequence[str],
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Batch delete up to 200 PET rows by r/e/c/m (§2.3)."""
        body = _delete_body(query_attribute, ids)
        api = _APIS["delete_pet_members"]
        result = self._call(
            api,
            self._pet_path(list_name, pet_name),
            params={"action": "delete"},
            body=body,
            records=len(ids),
            async_mode=async_mode,
        )
        return self._rows(api, result, len(ids))

    def retrieve_pet_member(
        self,
        list_name: str,
        pet_name: str,
        query_attribute: str,
        id: str,
        field_names: Sequence[str],
    ) -> dict[str, Any] | None:
        """One PET row (for reconciliation), or None when the member has no row.

        GET /lists/{list}/listExtensions/{pet}/members?qa=r|e|c|m&id=…&fs=…; the id is matched
        in the parent profile list. Source: Oracle, "Retrieve Profile Extension Recipient using a
        query attribute",
        https://docs.oracle.com/en/cloud/saas/marketing/responsys-rest-api/op-rest-api-v1.3-lists-listname-listextensions-petname-members-get.html
        """
        params = {"qa": _query_attribute(query_attribute), "id": str(id)}
        return self._retrieve(
            _APIS["retrieve_pet_member"], self._pet_path(list_name, pet_name), params, field_names
        )

    @staticmethod
    def _pet_path(list_name: str, pet_name: str) -> str:
        return (
            f"/lists/{_segment(list_name, what='list name')}/listExtensions/"
            f"{_segment(pet_name, what='PET name')}/members"
        )

    # -- folders and supplemental tables -----------------------------------------------

    def create_folder(self, name: str) -> bool:
        """Create a folder; True if created, False if it already existed (§2.7)."""
        api = _APIS["create_folder"]
        exists = frozenset({"FOLDER_ALREADY_EXISTS"})
        try:
            body = self._call(api, "/folders", body={"folderName": name}, expected_codes=exists)
        except RequestRejected as exc:
            if exc.error_code in exists:
                return False
            raise
        if isinstance(body, dict) and body.get("success") is False:
            message = str(body.get("errorMessage") or "")
            if "FOLDER_ALREADY_EXISTS" in message or "already exists" in message.lower():
                return False
            raise self._failed(
                RequestRejected(f"create_folder: {self._redact(message)}", api=api.name)
            )
        return True

    def create_supplemental_table(
        self,
        folder: str,
        table: str,
        fields: Sequence[tuple[str, str]],
        primary_keys: Sequence[str],
    ) -> None:
        """Create a supplemental table (§2.4); a primary key is mandatory."""
        names = [n for n, _ in fields]
        if not primary_keys or not set(primary_keys) <= set(names):
            raise ValueError("primary_keys must be a non-empty subset of the field names")
        body = {
            "table": {"objectName": table},
            "fields": [
                {"fieldName": n, "fieldType": t, "dataExtractionKey": False} for n, t in fields
            ],
            "primaryKeys": list(primary_keys),
        }
        path = f"/folders/{_segment(folder, what='folder name')}/suppData"
        self._call(_APIS["create_supplemental_table"], path, body=body)

    def merge_supplemental_rows(
        self,
        folder: str,
        table: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        insert_on_no_match: bool = True,
        update_on_match: str = "REPLACE_ALL",
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge up to 200 rows into a supplemental table (§2.4); field names are case-sensitive."""
        _check_records(field_names, records)
        if update_on_match not in ("REPLACE_ALL", "NO_UPDATE"):
            raise ValueError("update_on_match must be REPLACE_ALL or NO_UPDATE")
        api = _APIS["merge_supplemental_rows"]
        body = {
            "recordData": {
                "fieldNames": list(field_names),
                "records": [list(r) for r in records],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": insert_on_no_match,
            "updateOnMatch": update_on_match,
        }
        path = (
            f"/folders/{_segment(folder, what='folder name')}/suppData/"
            f"{_segment(table, what='table name')}/members"
        )
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records))

    def retrieve_supplemental_row(
        self,
        folder: str,
        table: str,
        primary_key: Sequence[tuple[str, str]],
        field_names: Sequence[str],
    ) -> dict[str, Any] | None:
        """One supplemental-table row by its whole primary key, or None when there is none.

        GET /folders/{folder}/suppData/{table}/members?qa=PK1&qa=PK2&id=v1&id=v2&fs=…: every
        primary-key column once as `qa`, its value as `id` in the same order; names are
        case-sensitive. Source: Oracle, "Retrieve Supplemental Table member based on a query
        attribute",
        https://docs.oracle.com/en/cloud/saas/marketing/responsys-develop/API/REST/api-v1.3-folders-folderName-suppData-tableName-members-get.htm
        """
        if not primary_key:
            raise ValueError("primary_key needs every primary-key column and its value")
        params = [("qa", column) for column, _ in primary_key]
        params += [("id", str(value)) for _, value in primary_key]
        path = (
            f"/folders/{_segment(folder, what='folder name')}/suppData/"
            f"{_segment(table, what='table name')}/members"
        )
        return self._retrieve(_APIS["retrieve_supplemental_row"], path, params, field_names)
