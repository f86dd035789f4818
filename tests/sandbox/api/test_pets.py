"""Profile extension tables: create, list, merge, retrieve, delete and name rules."""

from __future__ import annotations

import pytest

from responsys_assets.sandbox.api import field_name_problem
from tests.sandbox.api.support import (
    FOLDER,
    LIST,
    RULE,
    V13,
    assert_error,
    merge,
    post,
)


def create_pet(http, token, fields=None, name="SCORES_PET"):
    body = {
        "profileExtension": {"objectName": name, "folderName": FOLDER},
        "fields": fields or [{"fieldName": "SCORE", "fieldType": "NUMBER"}],
    }
    return post(http, token, f"{V13}/lists/{LIST}/listExtensions", body)


def pet_merge(http, token, names, rows, **kw):
    body = {
        "recordData": {"fieldNames": names, "records": rows, "mapTemplateName": None},
        "insertOnNoMatch": True,
        "updateOnMatch": "REPLACE_ALL",
        "matchColumnName1": "CUSTOMER_ID",
        "matchColumnName2": "",
        **kw,
    }
    return post(http, token, f"{V13}/lists/{LIST}/listExtensions/SCORES_PET/members", body)


def test_pet_create_list_merge_retrieve(server, http, token):
    resp = create_pet(http, token)
    assert resp.status_code == 200 and resp.json() is True
    assert_error(create_pet(http, token), 400, "PROFILE_EXTENSION_ALREADY_EXISTS")
    listed = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert listed.json() == [
        {
            "profileExtension": {"objectName": "SCORES_PET", "folderName": FOLDER},
            "fields": [{"fieldName": "SCORE", "fieldType": "NUMBER"}],
        }
    ]
    merge(http, token, [["c1", "a@example.com", "Ann"]])
    names = ["CUSTOMER_ID_", "SCORE"]
    resp = pet_merge(http, token, names, [["c1", "0.5"], ["ghost", "1"], ["c1", "abc"]])
    rows = [r[0] for r in resp.json()["recordData"]["records"]]
    assert rows[0].isdigit()
    assert rows[1].startswith("MERGEFAILED: Record 1 = RECIPIENT_NOT_FOUND")
    assert rows[2].startswith("MERGEFAILED: Record 2 = INVALID_FIELD_VALUE")
    assert server.store.pet_rows(LIST, "SCORES_PET")[0]["fields"] == {"SCORE": "0.5"}
    got = http.get(
        f"{V13}/lists/{LIST}/listExtensions/SCORES_PET/members",
        params={"qa": "c", "id": "c1", "fs": "RIID_,SCORE"},
        headers={"Authorization": token},
    )
    assert got.json()["recordData"]["records"] == [[rows[0], "0.5"]]
    deleted = post(
        http,
        token,
        f"{V13}/lists/{LIST}/listExtensions/SCORES_PET/members?action=delete",
        {"queryAttribute": "c", "ids": ["c1"]},
    )
    assert deleted.json()["recordData"]["records"] == [[rows[0]]]
    assert server.store.pet_rows(LIST, "SCORES_PET") == []


def test_pet_merge_refusals(http, token):
    create_pet(http, token)
    merge(http, token, [["c1", "a@example.com", "Ann"]])
    body = assert_error(
        pet_merge(http, token, ["CUSTOMER_ID_", "SCORE"], [["c1", "1"]], matchColumnName1="RIID_"),
        400,
        "INVALID_PARAMETER",
    )
    assert body["detail"] == "Match Column is null"
    assert_error(
        pet_merge(http, token, ["CUSTOMER_ID_", "OTHER"], [["c1", "1"]]), 400, "INVALID_PARAMETER"
    )
    assert_error(
        pet_merge(http, token, ["CUSTOMER_ID_", "SCORE"], [["c1", "1"]], mergeRule=RULE),
        400,
        "INVALID_REQUEST_CONTENT",
    )
    no_insert = pet_merge(
        http, token, ["CUSTOMER_ID_", "SCORE"], [["c1", "1"]], insertOnNoMatch=False
    )
    assert no_insert.json()["recordData"]["records"][0][0].startswith(
        "MERGEFAILED: Record 0 = NO_MATCHING_RECORD"
    )
    no_key = pet_merge(
        http, token, ["MOBILE_NUMBER_", "SCORE"], [["+1555", "1"]], matchColumnName1="MOBILE_NUMBER"
    )
    assert no_key.json()["recordData"]["records"][0][0].startswith(
        "MERGEFAILED: Record 0 = NO_LIST_KEY"
    )
    unknown = post(
        http,
        token,
        f"{V13}/lists/{LIST}/listExtensions/NOPE/members",
        {
            "recordData": {"fieldNames": ["CUSTOMER_ID_"], "records": [["c1"]]},
            "matchColumnName1": "CUSTOMER_ID",
        },
    )
    assert_error(unknown, 404, "TABLE_NOT_FOUND")


@pytest.mark.parametrize(
    "name",
    ["ID", "DATE", "user", "E", "SCORE_", "1ST", "A_VERY_LONG_FIELD_NAME_OVER_30_CHARS", "NA-ME"],
)
def test_pet_field_names_follow_section_4(http, token, name):
    assert field_name_problem(name) is not None
    resp = create_pet(http, token, fields=[{"fieldName": name, "fieldType": "STR500"}])
    assert_error(resp, 400, "INVALID_PARAMETER")


def test_pet_field_type_must_be_documented(http, token):
    resp = create_pet(http, token, fields=[{"fieldName": "SCORE", "fieldType": "STR255"}])
    assert_error(resp, 400, "INVALID_PARAMETER")
    assert field_name_problem("LOYALTY_TIER$1") is None
