"""Folders and supplemental tables: create, merge, list and refusals."""

from __future__ import annotations

from tests.sandbox.api.support import (
    FOLDER,
    V13,
    assert_error,
    post,
)


def test_folders(http, token):
    resp = post(http, token, f"{V13}/folders", {"folderName": "Exports [v2] {a}"})
    body = resp.json()
    assert resp.status_code == 200 and body["success"] is True and body["errorMessage"] is None
    assert isinstance(body["folderId"], int)
    assert_error(
        post(http, token, f"{V13}/folders", {"folderName": "Exports [v2] {a}"}),
        400,
        "FOLDER_ALREADY_EXISTS",
    )
    assert_error(
        post(http, token, f"{V13}/folders", {"folderName": "bad/name"}), 400, "INVALID_PARAMETER"
    )
    assert_error(
        post(http, token, f"{V13}/folders", {"folderName": "x" * 101}), 400, "INVALID_PARAMETER"
    )


def test_supplemental_table_create_merge_and_list(server, http, token):
    table = {
        "table": {"objectName": "ORDERS"},
        "fields": [
            {"fieldName": "ORDER_ID", "fieldType": "STR100", "dataExtractionKey": False},
            {"fieldName": "AMOUNT", "fieldType": "NUMBER", "dataExtractionKey": False},
        ],
        "primaryKeys": ["ORDER_ID"],
    }
    path = f"{V13}/folders/{FOLDER}/suppData"
    assert_error(post(http, token, path, {**table, "primaryKeys": []}), 400, "INVALID_PARAMETER")
    assert_error(post(http, token, f"{V13}/folders/NOPE/suppData", table), 404, "FOLDER_NOT_FOUND")
    assert post(http, token, path, table).json() is True
    assert_error(post(http, token, path, table), 400, "TABLE_ALREADY_EXISTS")
    members = f"{path}/ORDERS/members"

    def supp(names, rows, **kw):
        body = {"recordData": {"fieldNames": names, "records": rows, "mapTemplateName": None}}
        return post(
            http,
            token,
            members,
            {**body, "insertOnNoMatch": True, "updateOnMatch": "REPLACE_ALL", **kw},
        )

    resp = supp(["ORDER_ID", "AMOUNT"], [["o1", "9.5"], ["", "1"], ["o2", "lots"]])
    assert resp.status_code == 200
    rows = resp.json()["recordData"]["records"]
    assert rows[0] == ["o1", "9.5"]
    assert rows[1][0].startswith("MERGEFAILED: Record 1 = PRIMARY_KEY_EMPTY")
    assert rows[2][0].startswith("MERGEFAILED: Record 2 = INVALID_FIELD_VALUE")
    assert_error(supp(["order_id", "AMOUNT"], [["o1", "1"]]), 400, "INVALID_PARAMETER")
    assert_error(supp(["AMOUNT"], [["1"]]), 400, "INVALID_PARAMETER")
    assert_error(
        post(
            http,
            token,
            f"{path}/NOPE/members",
            {"recordData": {"fieldNames": ["A"], "records": [["1"]]}},
        ),
        404,
        "TABLE_NOT_FOUND",
    )
    assert [r["pk"] for r in server.store.supp_rows(FOLDER, "ORDERS")] == [["o1"]]
    listed = http.get(f"{V13}/suppData", params={"limit": 10}, headers={"Authorization": token})
    assert listed.json()[0]["table"] == {"objectName": "ORDERS", "folderName": FOLDER}
    too_many = http.get(f"{V13}/suppData", params={"limit": 201}, headers={"Authorization": token})
    assert_error(too_many, 400, "INVALID_PARAMETER")
