"""The Responsys emulator over real HTTP on 127.0.0.1: documented answers, strict refusals and
every injectable fault."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responsys_assets.sandbox.api import (
    EmulatorServer,
    EmulatorSettings,
    field_name_problem,
)

USER, PASSWORD = "api_user", "s3cret-Pass!"
LIST, FOLDER, CAMPAIGN, EVENT = "CONTACTS_LIST", "Sandbox", "WELCOME", "SCORE_CHANGED"
V13 = "/rest/api/v1.3"
ASYNC = "/rest/asyncApi/v1.3"
RULE = {
    "insertOnNoMatch": True,
    "updateOnMatch": "REPLACE_ALL",
    "matchColumnName1": "CUSTOMER_ID_",
    "matchColumnName2": None,
    "matchColumnName3": None,
    "matchOperator": "NONE",
    "optinValue": "I",
    "optoutValue": "O",
    "htmlValue": "H",
    "textValue": "T",
    "defaultPermissionStatus": "OPTIN",
    "rejectRecordIfChannelEmpty": "",
}


def _start(tmp_path: Path, **settings: object) -> EmulatorServer:
    server = EmulatorServer(
        tmp_path / "state",
        EmulatorSettings(
            username=USER, password=PASSWORD, async_processing_seconds=0.3, **settings
        ),
    )
    server.store.ensure_list(LIST, FOLDER)
    server.store.ensure_campaign(CAMPAIGN, LIST)
    server.store.ensure_custom_event(EVENT)
    server.faults.capacity_window_seconds = 0.5
    server.start()
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    server = _start(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        yield client


def login(http: httpx.Client) -> str:
    resp = http.post(
        f"{V13}/auth/token",
        data={"user_name": USER, "password": PASSWORD, "auth_type": "password"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["authToken"]


@pytest.fixture
def token(http: httpx.Client) -> str:
    return login(http)


def post(http: httpx.Client, token: str, path: str, body: object, **kw: object) -> httpx.Response:
    return http.post(
        path,
        content=json.dumps(body),
        headers={"Authorization": token, "Content-Type": "application/json"},
        **kw,
    )


def merge(http: httpx.Client, token: str, rows: list[list], names=None, **rule) -> httpx.Response:
    names = names or ["CUSTOMER_ID_", "EMAIL_ADDRESS_", "FIRST_NAME"]
    body = {
        "recordData": {"fieldNames": names, "records": rows, "mapTemplateName": None},
        "mergeRule": {**RULE, **rule},
    }
    return post(http, token, f"{V13}/lists/{LIST}/members", body)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"type", "title", "errorCode", "detail", "errorDetails"}
    assert body["errorCode"] == code and body["type"] == "" and body["errorDetails"] == []
    return body


# --- authentication ----------------------------------------------------------------------------
def test_login_returns_token_issued_at_and_own_endpoint(server, http):
    resp = http.post(
        f"{V13}/auth/token",
        data={"user_name": USER, "password": PASSWORD, "auth_type": "password"},
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["endPoint"] == server.base_url
    assert abs(body["issuedAt"] - time.time() * 1000) < 60_000
    assert len(body["authToken"]) > 20


def test_login_wrong_password_is_401(http):
    resp = http.post(
        f"{V13}/auth/token", data={"user_name": USER, "password": "nope", "auth_type": "password"}
    )
    assert_error(resp, 401, "INVALID_USER_NAME_PASSWORD")
    assert PASSWORD not in resp.text


def test_login_credentials_in_query_string_are_refused(http):
    resp = http.post(
        f"{V13}/auth/token",
        params={"user_name": USER, "password": PASSWORD, "auth_type": "password"},
    )
    assert_error(resp, 400, "INVALID_PARAMETER")


def test_bearer_prefix_and_missing_token_are_not_valid(http, token):
    for header in (f"Bearer {token}", ""):
        resp = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": header})
        body = assert_error(resp, 500, "UNEXPECTED_EXCEPTION")
        assert body["detail"] == "Not a valid authentication token"
    ok = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert ok.status_code == 200 and ok.json() == []


def test_refresh_gives_a_new_working_token(http, token):
    resp = http.post(
        f"{V13}/auth/token", data={"auth_type": "token"}, headers={"Authorization": token}
    )
    assert resp.status_code == 200
    fresh = resp.json()["authToken"]
    assert fresh != token
    assert http.get("/rest/api/ratelimit", headers={"Authorization": fresh}).status_code == 200
    bad = http.post(
        f"{V13}/auth/token", data={"auth_type": "token"}, headers={"Authorization": "Bearer x"}
    )
    assert_error(bad, 500, "UNEXPECTED_EXCEPTION")


def test_ratelimit_lists_apis_and_v13_path_is_404(http, token):
    resp = http.get("/rest/api/ratelimit", headers={"Authorization": token})
    limits = {e["api"]: e for e in resp.json()}
    assert limits["login"]["limit"] == 10
    assert limits["mergeListMembers"]["resource_path"] == f"{V13}/lists/{{list}}/members"
    assert set(limits["mergeListMembers"]) == {
        "limit",
        "api",
        "resource_path",
        "verb",
        "description",
    }
    assert "asyncMergeTriggerEmail" in limits
    assert_error(
        http.get(f"{V13}/ratelimit", headers={"Authorization": token}), 404, "RESOURCE_NOT_FOUND"
    )


# --- profile list ------------------------------------------------------------------------------
def test_merge_inserts_updates_and_reports_row_failures(server, http, token):
    resp = merge(
        http,
        token,
        [["c1", "a@example.com", "Ann"], ["c2", "not-an-email", "Bob"], ["", "c@example.com", "C"]],
    )
    assert resp.status_code == 200, resp.text
    rows = [r[0] for r in resp.json()["recordData"]["records"]]
    assert resp.json()["recordData"]["fieldNames"] == ["RIID_"]
    assert rows[0].isdigit()
    assert rows[1].startswith("MERGEFAILED: Record 1 = INVALID_EMAIL_ADDRESS")
    assert rows[2].startswith("MERGEFAILED: Record 2 = MATCH_COLUMN_EMPTY")
    again = merge(http, token, [["c1", "a2@example.com", "Annie"], ["c9", "z@example.com", "Z"]])
    riids = [r[0] for r in again.json()["recordData"]["records"]]
    assert riids[0] == rows[0] and riids[1].isdigit() and int(riids[1]) > int(rows[0])
    members = {m["customer_id"]: m for m in server.store.list_members(LIST)}
    assert set(members) == {"c1", "c9"}
    assert members["c1"]["email_address"] == "a2@example.com"
    assert members["c1"]["fields"] == {"FIRST_NAME": "Annie"}
    assert members["c1"]["email_permission_status"] == "I"
    assert len(members["c1"]["email_sha256_hash"]) == 64


def test_merge_no_insert_and_no_update_rules(http, token):
    merge(http, token, [["c1", "a@example.com", "Ann"]])
    no_insert = merge(http, token, [["zz", "z@example.com", "Z"]], insertOnNoMatch=False)
    assert no_insert.json()["recordData"]["records"][0][0].startswith(
        "MERGEFAILED: Record 0 = NO_MATCHING_RECORD"
    )
    no_update = merge(http, token, [["c1", "new@example.com", "X"]], updateOnMatch="NO_UPDATE")
    riid = no_update.json()["recordData"]["records"][0][0]
    got = http.get(
        f"{V13}/lists/{LIST}/members",
        params={"qa": "r", "id": riid, "fs": "EMAIL_ADDRESS_,FIRST_NAME"},
        headers={"Authorization": token},
    )
    assert got.json()["recordData"]["records"] == [["a@example.com", "Ann"]]


def test_more_than_200_records_is_recipient_limit_exceeded(http, token):
    rows = [[f"c{i}", f"u{i}@example.com", "N"] for i in range(201)]
    assert_error(merge(http, token, rows), 400, "RECIPIENT_LIMIT_EXCEEDED")
    assert merge(http, token, rows[:200]).status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        {"matchColumnName1": "CUSTOMER_ID"},
        {"matchColumnName1": None},
        {"matchColumnName3": "EMAIL_ADDRESS_"},
        {"matchOperator": "OR"},
        {"matchOperator": "AND"},
        {"updateOnMatch": "MERGE"},
        {"insertOnNoMatch": "true"},
        {"defaultPermissionStatus": "IN"},
        {"rejectRecordIfChannelEmpty": "E,X"},
        {"matchColumnName1": "EMAIL_MD5_HASH_"},
        {"matchColumnName1": "EMAIL_MD5_HASH_", "matchColumnName2": "EMAIL_ADDRESS_"},
    ],
)
def test_bad_merge_rule_is_invalid_parameter(http, token, rule):
    assert_error(
        merge(http, token, [["c1", "a@example.com", "A"]], **rule), 400, "INVALID_PARAMETER"
    )


def test_malformed_bodies_are_refused(http, token):
    path = f"{V13}/lists/{LIST}/members"
    auth = {"Authorization": token}
    assert_error(
        http.post(path, content=b"{}", headers={**auth, "Content-Type": "text/plain"}),
        400,
        "INVALID_REQUEST_CONTENT",
    )
    assert_error(
        http.post(path, content=b"{not json", headers={**auth, "Content-Type": "application/json"}),
        400,
        "INVALID_REQUEST_CONTENT",
    )
    body = {"recordData": {"fieldNames": ["CUSTOMER_ID_"], "records": [[1]]}, "mergeRule": RULE}
    assert_error(post(http, token, path, body), 400, "INVALID_REQUEST_CONTENT")
    body = {"recordData": {"fieldNames": ["CUSTOMER_ID_"], "records": [["1"]]}, "mergeRul": RULE}
    assert_error(post(http, token, path, body), 400, "INVALID_REQUEST_CONTENT")


def test_unknown_list_is_404(http, token):
    body = {"recordData": {"fieldNames": ["CUSTOMER_ID_"], "records": [["1"]]}, "mergeRule": RULE}
    assert_error(post(http, token, f"{V13}/lists/NOPE/members", body), 404, "LIST_NOT_FOUND")


def test_retrieve_and_delete_members(server, http, token):
    merge(http, token, [["c1", "a@example.com", "Ann"], ["c2", "b@example.com", "Bob"]])
    merge(http, token, [["c3", "c@example.com", "Cy"]])
    auth = {"Authorization": token}
    got = http.get(
        f"{V13}/lists/{LIST}/members",
        params={"qa": "c", "id": "c1", "fs": "RIID_,first_name"},
        headers=auth,
    )
    assert got.status_code == 200
    assert got.json()["recordData"]["fieldNames"] == ["RIID_", "FIRST_NAME"]
    missing = http.get(
        f"{V13}/lists/{LIST}/members",
        params={"qa": "e", "id": "x@y.com", "fs": "RIID_"},
        headers=auth,
    )
    assert_error(missing, 404, "RECIPIENT_NOT_FOUND")
    batch = post(
        http,
        token,
        f"{V13}/lists/{LIST}/members?action=delete",
        {"queryAttribute": "c", "ids": ["c1", "nobody"]},
    )
    rows = batch.json()["recordData"]["records"]
    assert rows[0][0].isdigit() and rows[1][0].startswith("DELETEFAILED: Record 1")
    one = http.delete(
        f"{V13}/lists/{LIST}/members", params={"qa": "e", "id": "b@example.com"}, headers=auth
    )
    assert one.json() == {
        "totalMatchedRecords": 1,
        "remainingRecordCount": 0,
        "hasMoreRecords": False,
    }
    assert [m["customer_id"] for m in server.store.list_members(LIST)] == ["c3"]


# --- profile extension tables ------------------------------------------------------------------
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


# --- folders and supplemental tables -----------------------------------------------------------
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


# --- email triggers and custom events ----------------------------------------------------------
def test_merge_trigger_sends_and_skips_opted_out(server, http, token):
    body = {
        "mergeTriggerRecordData": {
            "fieldNames": ["CUSTOMER_ID_", "EMAIL_ADDRESS_", "EMAIL_PERMISSION_STATUS_"],
            "mergeTriggerRecords": [
                {
                    "fieldValues": ["c1", "a@example.com", "I"],
                    "optionalData": [{"name": "OFFER", "value": "10%"}],
                },
                {"fieldValues": ["c2", "b@example.com", "O"], "optionalData": []},
                {"fieldValues": ["c3", "bad", "I"]},
            ],
        },
        "mergeRule": RULE,
    }
    resp = post(http, token, f"{V13}/campaigns/{CAMPAIGN}/email", body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (
        out[0]["success"] is True and out[0]["errorMessage"] is None and out[0]["recipientId"] > 0
    )
    assert out[1]["success"] is False and out[1]["recipientId"] > 0 and out[1]["errorMessage"]
    assert out[2] == {"recipientId": -1, "success": False, "errorMessage": out[2]["errorMessage"]}
    assert out[2]["errorMessage"].startswith("MERGEFAILED")
    sends = server.store.email_sends(CAMPAIGN)
    assert [(s["email"], s["optional_data"]) for s in sends] == [
        ("a@example.com", [{"name": "OFFER", "value": "10%"}])
    ]
    assert_error(post(http, token, f"{V13}/campaigns/NOPE/email", body), 404, "CAMPAIGN_NOT_FOUND")


def recipient_data(*ids: str, optional=None) -> list[dict]:
    return [
        {
            "recipient": {
                "customerId": i,
                "listName": {"folderName": FOLDER, "objectName": LIST},
                "emailFormat": "HTML_FORMAT",
            },
            "optionalData": optional or [],
        }
        for i in ids
    ]


def test_trigger_existing_members_and_unresolved(server, http, token):
    merge(http, token, [["c1", "a@example.com", "Ann"]])
    resp = post(
        http,
        token,
        f"{V13}/campaigns/{CAMPAIGN}/email",
        {"recipientData": recipient_data("c1", "ghost")},
    )
    out = resp.json()
    assert out[0]["success"] is True
    assert out[1]["recipientId"] == -1 and out[1]["success"] is False
    assert len(server.store.email_sends()) == 1


def test_optional_data_non_ascii_must_be_escaped(server, http, token):
    merge(http, token, [["c1", "a@example.com", "Ann"]])
    body = {"recipientData": recipient_data("c1", optional=[{"name": "CITY", "value": "Zürich €"}])}
    headers = {"Authorization": token, "Content-Type": "application/json"}
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    resp = http.post(f"{V13}/campaigns/{CAMPAIGN}/email", content=raw, headers=headers)
    assert_error(resp, 400, "INVALID_REQUEST_CONTENT")
    escaped = json.dumps(body, ensure_ascii=True).encode("ascii")
    resp = http.post(f"{V13}/campaigns/{CAMPAIGN}/email", content=escaped, headers=headers)
    assert resp.status_code == 200 and resp.json()[0]["success"] is True
    assert server.store.email_sends()[0]["optional_data"][0]["value"] == "Zürich €"
    system = {
        "recipientData": recipient_data("c1", optional=[{"name": "EMAIL_ADDRESS_", "value": "x"}])
    }
    assert_error(
        post(http, token, f"{V13}/campaigns/{CAMPAIGN}/email", system), 400, "INVALID_PARAMETER"
    )


def test_custom_event_and_duplicate_recipients(server, http, token):
    merge(http, token, [["c1", "a@example.com", "A"], ["c2", "b@example.com", "B"]])
    body = {
        "customEvent": {
            "eventStringDataMapping": None,
            "eventNumberDataMapping": None,
            "eventDateDataMapping": None,
        },
        "recipientData": recipient_data("c1", "c2", "c1"),
    }
    out = post(http, token, f"{V13}/events/{EVENT}", body).json()
    assert [r["success"] for r in out] == [False, True, False]
    assert out[0]["errorMessage"].startswith("MULTIPLE_RECIPIENTS_FOUND")
    assert len(server.store.custom_events(EVENT)) == 1
    assert_error(post(http, token, f"{V13}/events/NOPE", body), 404, "EVENT_NOT_FOUND")


# --- throttling and faults ---------------------------------------------------------------------
def test_rate_limit_triggers_after_configured_calls(tmp_path):
    server = _start(tmp_path, rate_limits={"getProfileExtensions": 3})
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
            token = login(http)
            codes = [
                http.get(
                    f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token}
                ).status_code
                for _ in range(5)
            ]
        assert codes == [200, 200, 200, 401, 401]
        calls = server.store.api_calls("getProfileExtensions")
        assert [c["error_code"] for c in calls].count("API_LIMIT_EXCEEDED") == 2
    finally:
        server.stop()


def test_fault_rate_limit_and_server_error(server, http, token):
    server.faults.inject("rate_limit", api="mergeListMembers")
    assert_error(merge(http, token, [["c1", "a@example.com", "A"]]), 401, "API_LIMIT_EXCEEDED")
    server.faults.inject("server_error", count=2)
    for _ in range(2):
        resp = merge(http, token, [["c1", "a@example.com", "A"]])
        assert resp.status_code == 503
        with pytest.raises(json.JSONDecodeError):
            resp.json()
    assert server.store.list_members(LIST) == []
    assert merge(http, token, [["c1", "a@example.com", "A"]]).status_code == 200


def test_fault_capacity_persists_for_its_window(server, http, token):
    server.faults.inject("capacity")
    auth = {"Authorization": token}
    first = http.get(f"{V13}/lists/{LIST}/listExtensions", headers=auth)
    assert_error(first, 401, "INTERNAL_CAPACITY_LIMIT_EXCEEDED")
    assert_error(
        merge(http, token, [["c1", "a@example.com", "A"]]), 401, "INTERNAL_CAPACITY_LIMIT_EXCEEDED"
    )
    time.sleep(0.6)
    assert http.get(f"{V13}/lists/{LIST}/listExtensions", headers=auth).status_code == 200


def test_fault_expired_token(server, http, token):
    server.faults.inject("expired_token")
    resp = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert_error(resp, 500, "UNEXPECTED_EXCEPTION")
    fresh = login(http)
    assert (
        http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": fresh}).status_code
        == 200
    )


def test_fault_slow(server, http, token):
    server.faults.inject("slow", delay_seconds=0.4, api="getProfileExtensions")
    started = time.monotonic()
    resp = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert resp.status_code == 200 and time.monotonic() - started >= 0.4


def test_fault_merge_failed_rows(server, http, token):
    server.faults.inject("merge_failed", record_indexes=[1, 2])
    rows = [[f"c{i}", f"u{i}@example.com", "N"] for i in range(4)]
    out = [r[0] for r in merge(http, token, rows).json()["recordData"]["records"]]
    assert out[0].isdigit() and out[3].isdigit()
    assert out[1].startswith("MERGEFAILED: Record 1 = ") and out[2].startswith(
        "MERGEFAILED: Record 2 = "
    )
    assert len(server.store.list_members(LIST)) == 2


def test_fault_drop_after_send_applies_the_write(server, http, token):
    server.faults.inject("drop_after_send", api="mergeListMembers")
    with pytest.raises(httpx.TransportError):
        merge(http, token, [["c1", "a@example.com", "A"]])
    assert [m["customer_id"] for m in server.store.list_members(LIST)] == ["c1"]
    assert server.store.api_calls("mergeListMembers")[-1]["error_code"] == "CONNECTION_DROPPED"


def test_payload_too_large_drops_the_connection(tmp_path):
    server = _start(tmp_path, max_body_bytes=50_000)
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
            token = login(http)
            rows = [[f"c{i}", f"u{i}@example.com", "x" * 400] for i in range(200)]
            with pytest.raises(httpx.TransportError):
                merge(http, token, rows)
        assert server.store.list_members(LIST) == []
    finally:
        server.stop()


# --- async -------------------------------------------------------------------------------------
def test_async_merge_submit_and_poll(server, http, token):
    body = {
        "recordData": {
            "fieldNames": ["CUSTOMER_ID_", "EMAIL_ADDRESS_"],
            "records": [["c1", "a@example.com"]],
        },
        "mergeRule": RULE,
    }
    resp = post(http, token, f"{ASYNC}/lists/{LIST}/members", body)
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert (
        accepted["status"] == "REQUEST_ACCEPTED" and accepted["apiName"] == "asyncMergeListMembers"
    )
    href = accepted["links"][0]["href"]
    assert href == f"{ASYNC}/requests/{accepted['requestId']}"
    early = http.get(href, headers={"Authorization": token}).json()
    assert (
        early["status"] == "IN_PROGRESS" and early["response"]["errorCode"] == "PROCESSING_REQUEST"
    )
    deadline = time.monotonic() + 5
    while early["status"] == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.1)
        early = http.get(href, headers={"Authorization": token}).json()
    assert early["status"] == "SUCCESS"
    assert early["response"]["recordData"]["records"][0][0].isdigit()

    failing = post(http, token, f"{ASYNC}/lists/NOPE/members", body).json()
    time.sleep(0.35)
    polled = post(
        http, token, f"{ASYNC}/requests", {"requestIds": [failing["requestId"], "unknown"]}
    )
    assert polled.status_code == 200
    first, second = polled.json()
    assert first["status"] == "FAILURE" and first["response"]["errorCode"] == "LIST_NOT_FOUND"
    assert second["status"] == "UNKNOWN"
    many = ",".join([accepted["requestId"], failing["requestId"]])
    assert len(http.get(f"{ASYNC}/requests/{many}", headers={"Authorization": token}).json()) == 2

    too_many = {
        **body,
        "recordData": {**body["recordData"], "records": [["c", "a@example.com"]] * 201},
    }
    assert_error(
        post(http, token, f"{ASYNC}/lists/{LIST}/members", too_many),
        400,
        "RECIPIENT_LIMIT_EXCEEDED",
    )


def test_async_trigger_email(server, http, token):
    merge(http, token, [["c1", "a@example.com", "A"]])
    resp = post(
        http, token, f"{ASYNC}/campaigns/{CAMPAIGN}/email", {"recipientData": recipient_data("c1")}
    )
    assert resp.status_code == 202 and resp.json()["apiName"] == "asyncTriggerEmail"
    assert len(server.store.email_sends()) == 1


# --- persistence -------------------------------------------------------------------------------
def test_state_persists_across_restart(tmp_path):
    server = _start(tmp_path)
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
            riid = merge(http, login(http), [["c1", "a@example.com", "A"]]).json()
    finally:
        server.stop()
    again = _start(tmp_path)
    try:
        with httpx.Client(base_url=again.base_url, timeout=5.0) as http:
            token = login(http)
            got = http.get(
                f"{V13}/lists/{LIST}/members",
                params={"qa": "c", "id": "c1", "fs": "RIID_"},
                headers={"Authorization": token},
            )
            assert got.json()["recordData"]["records"] == [riid["recordData"]["records"][0]]
            new = merge(http, token, [["c2", "b@example.com", "B"]]).json()
        assert int(new["recordData"]["records"][0][0]) > int(riid["recordData"]["records"][0][0])
        assert again.store.counts()["list_members"] == 2
    finally:
        again.stop()


def test_hash_match_updates_but_never_inserts(server, http, token):
    merge(http, token, [["c1", "Ann@Example.com", "Ann"]])
    digest = hashlib.sha256(b"ann@example.com").hexdigest().upper()
    names = ["EMAIL_SHA256_HASH_", "FIRST_NAME"]
    rule = {"matchColumnName1": "EMAIL_SHA256_HASH_", "insertOnNoMatch": False}
    resp = merge(http, token, [[digest, "Annie"], ["0" * 64, "Nobody"]], names=names, **rule)
    rows = [r[0] for r in resp.json()["recordData"]["records"]]
    assert rows[0].isdigit() and rows[1].startswith("MERGEFAILED: Record 1 = NO_MATCHING_RECORD")
    assert [m["fields"]["FIRST_NAME"] for m in server.store.list_members(LIST)] == ["Annie"]
