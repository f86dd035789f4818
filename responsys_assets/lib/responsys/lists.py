"""Profile list members (§2.1, §2.2): merge, batch delete, and retrieve one for reconciliation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from responsys_assets.lib.responsys.apis import _APIS, _segment
from responsys_assets.lib.responsys.batching import _check_records
from responsys_assets.lib.responsys.models import (
    MergeRule,
    RowResult,
    _delete_body,
    _query_attribute,
)


class ListsMixin:
    """ResponsysClient's profile-list calls; they go through its `_call`, `_rows` and
    `_retrieve`."""

    # -- profile lists ---------------------------------------------------------------

    def merge_list_members(
        self,
        list_name: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        merge_rule: MergeRule,
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge up to 200 rows into a profile list (§2.1)."""
        _check_records(field_names, records)
        upper = [f.upper() for f in field_names]
        missing = [c for c in merge_rule.match_columns if c not in upper]
        if missing:
            raise ValueError(f"field_names lacks the match column(s) {missing}")
        api = _APIS["merge_list_members"]
        body = {
            "recordData": {
                "fieldNames": list(field_names),
                "records": [list(r) for r in records],
                "mapTemplateName": None,
            },
            "mergeRule": merge_rule.to_json(),
        }
        path = f"/lists/{_segment(list_name, what='list name')}/members"
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records))

    def delete_list_members(
        self,
        list_name: str,
        query_attribute: str,
        ids: Sequence[str],
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Batch delete up to 200 members by r/e/c/m (§2.2)."""
        body = _delete_body(query_attribute, ids)
        api = _APIS["delete_list_members"]
        path = f"/lists/{_segment(list_name, what='list name')}/members"
        result = self._call(
            api,
            path,
            params={"action": "delete"},
            body=body,
            records=len(ids),
            async_mode=async_mode,
        )
        return self._rows(api, result, len(ids))

    def retrieve_list_member(
        self, list_name: str, query_attribute: str, id: str, field_names: Sequence[str]
    ) -> dict[str, Any] | None:
        """One member's fields (for reconciliation), or None when there is no such member.

        GET /lists/{list}/members?qa=r|e|c|m&id=…&fs=… answers `recordData.fieldNames` and
        `records` (one row per match; the first is returned). Source: Oracle, "Retrieve a member
        of a profile list based on query attribute",
        https://docs.oracle.com/en/cloud/saas/marketing/responsys-develop/API/REST/api-v1.3-lists-listName-members-get.htm
        """
        path = f"/lists/{_segment(list_name, what='list name')}/members"
        params = {"qa": _query_attribute(query_attribute), "id": str(id)}
        return self._retrieve(_APIS["retrieve_list_member"], path, params, field_names)
