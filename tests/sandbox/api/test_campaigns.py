"""Email campaign sends: trigger, merge-trigger, opted-out and non-ASCII bodies."""

from __future__ import annotations

import json

from tests.sandbox.api.support import (
    CAMPAIGN,
    RULE,
    V13,
    assert_error,
    merge,
    post,
    recipient_data,
)


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
