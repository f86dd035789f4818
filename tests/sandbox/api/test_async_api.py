"""The async API: submit, poll while in progress, results and failures."""

from __future__ import annotations

import time

from tests.sandbox.api.support import (
    ASYNC,
    CAMPAIGN,
    LIST,
    RULE,
    assert_error,
    merge,
    post,
    recipient_data,
)


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
