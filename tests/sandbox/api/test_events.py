"""Custom events: triggers and recipients repeated in one call."""

from __future__ import annotations

from tests.sandbox.api.support import (
    EVENT,
    V13,
    assert_error,
    merge,
    post,
    recipient_data,
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
