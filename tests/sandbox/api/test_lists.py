"""Profile list members: merge rules, row failures, refusals, retrieve and delete."""

from __future__ import annotations

import hashlib

import pytest

from tests.sandbox.api.support import (
    LIST,
    RULE,
    V13,
    assert_error,
    merge,
    post,
)


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


def test_hash_match_updates_but_never_inserts(server, http, token):
    merge(http, token, [["c1", "Ann@Example.com", "Ann"]])
    digest = hashlib.sha256(b"ann@example.com").hexdigest().upper()
    names = ["EMAIL_SHA256_HASH_", "FIRST_NAME"]
    rule = {"matchColumnName1": "EMAIL_SHA256_HASH_", "insertOnNoMatch": False}
    resp = merge(http, token, [[digest, "Annie"], ["0" * 64, "Nobody"]], names=names, **rule)
    rows = [r[0] for r in resp.json()["recordData"]["records"]]
    assert rows[0].isdigit() and rows[1].startswith("MERGEFAILED: Record 1 = NO_MATCHING_RECORD")
    assert [m["fields"]["FIRST_NAME"] for m in server.store.list_members(LIST)] == ["Annie"]
