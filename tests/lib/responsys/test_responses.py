"""Reading Responsys answers: per-row and per-recipient results, the ratelimit table."""

from __future__ import annotations

import pytest

from responsys_assets.lib.responsys import (
    OutcomeUnknown,
    RowResult,
    parse_recipient_results,
    parse_record_rows,
)
from responsys_assets.lib.responsys.apis import _rate_key
from responsys_assets.lib.responsys.responses import _parse_rate_limits


def test_parse_merge_rows_with_failures():
    body = {
        "recordData": {
            "fieldNames": ["RIID_"],
            "records": [
                ["101"],
                ["MERGEFAILED: Record 1 = INVALID_EMAIL: bad address x@y.com"],
                ["103"],
                ["MERGEFAILED: something odd"],
            ],
            "mapTemplateName": None,
        },
        "mergeRule": {},
        "links": [],
    }
    rows = parse_record_rows(body, 4)
    assert rows[0] == RowResult(0, True, 101, None, None)
    assert rows[1].ok is False and rows[1].error_code == "INVALID_EMAIL" and rows[1].riid is None
    assert rows[1].index == 1 and rows[1].message.startswith("MERGEFAILED:")
    assert rows[2] == RowResult(2, True, 103, None, None)
    assert rows[3].error_code == "MERGEFAILED"


def test_parse_delete_rows_and_echoed_supplemental_rows():
    deleted = parse_record_rows(
        {"recordData": {"fieldNames": ["RIID_"], "records": [["5"], ["DELETEFAILED: NO_RECORD"]]}},
        2,
    )
    assert [r.ok for r in deleted] == [True, False]
    assert deleted[1].error_code == "NO_RECORD"
    echoed = parse_record_rows(
        {"recordData": {"fieldNames": ["ORDER_ID", "AMOUNT"], "records": [["o1", "3"]]}}, 1
    )
    assert echoed == [RowResult(0, True, None, None, None)]


def test_row_count_mismatch_is_outcome_unknown():
    with pytest.raises(OutcomeUnknown) as info:
        parse_record_rows({"recordData": {"fieldNames": ["RIID_"], "records": [["1"]]}}, 2)
    assert info.value.records == 2
    with pytest.raises(OutcomeUnknown):
        parse_record_rows({"unexpected": True}, 1)


def test_parse_recipient_results():
    rows = parse_recipient_results(
        [
            {"recipientId": 7, "success": True, "errorMessage": None},
            {"recipientId": -1, "success": False, "errorMessage": "RECIPIENT_NOT_FOUND: none"},
            {"recipientId": 9, "success": False, "errorMessage": "Campaign is not active"},
            {"recipientId": -1, "success": True, "errorMessage": None},
        ],
        4,
    )
    assert rows[0] == RowResult(0, True, 7, None, None)
    assert rows[1].ok is False and rows[1].riid is None
    assert rows[1].error_code == "RECIPIENT_NOT_FOUND"
    assert rows[2].ok is False and rows[2].riid == 9 and rows[2].error_code == "FAILED"
    assert rows[3].ok is False and rows[3].error_code == "RECIPIENT_NOT_RESOLVED"
    with pytest.raises(OutcomeUnknown):
        parse_recipient_results([], 1)


def test_parse_rate_limits():
    body = [
        {
            "limit": 1000,
            "api": "mergeListMembers",
            "resource_path": "/lists/{listName}/members",
            "verb": "POST",
            "description": "Merge List Recipients",
        },
        {
            "limit": "60",
            "api": "x",
            "resource_path": "/rest/api/v1.3/lists/{list}/members",
            "verb": "post",
        },
        {"limit": None, "api": "broken"},
        "junk",
    ]
    limits = _parse_rate_limits(body)
    assert limits == {_rate_key("POST", "/lists/{listName}/members"): 60}
    assert _parse_rate_limits({"not": "a list"}) == {}
