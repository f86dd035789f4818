"""Request models: the merge rule and recipient JSON, and what they refuse when built."""

from __future__ import annotations

import json

import pytest

from responsys_assets.lib.responsys import (
    MergeRule,
    Recipient,
)
from responsys_assets.lib.responsys.batching import _dumps


def test_merge_rule_json_and_validation():
    rule = MergeRule(
        match_column_1="CUSTOMER_ID_", match_column_2="EMAIL_ADDRESS_", match_operator="AND"
    )
    body = rule.to_json()
    assert body["matchColumnName1"] == "CUSTOMER_ID_" and body["matchColumnName3"] is None
    assert body["defaultPermissionStatus"] == "OPTOUT" and body["optinValue"] == "I"
    with pytest.raises(ValueError, match="only update"):
        MergeRule(match_column_1="EMAIL_SHA256_HASH_")
    with pytest.raises(ValueError, match="cannot be combined"):
        MergeRule(
            match_column_1="EMAIL_SHA256_HASH_",
            match_column_2="EMAIL_ADDRESS_",
            insert_on_no_match=False,
        )
    with pytest.raises(ValueError, match="match column"):
        MergeRule(match_column_1="RIID")
    with pytest.raises(ValueError):
        MergeRule(reject_record_if_channel_empty="E,X")


def test_recipient_json_and_optional_data_rules():
    person = Recipient(
        "CONTACTS", "Marketing", customer_id="c1", optional_data=(("CITY", "Zürich €"),)
    )
    payload = person.to_json()
    assert payload["recipient"] == {
        "customerId": "c1",
        "listName": {"folderName": "Marketing", "objectName": "CONTACTS"},
    }
    encoded = _dumps(payload)
    assert b"Z\\u00fcrich \\u20ac" in encoded
    assert json.loads(encoded)["optionalData"] == [{"name": "CITY", "value": "Zürich €"}]
    with pytest.raises(ValueError, match="system column"):
        Recipient("L", "F", customer_id="c", optional_data=(("EMAIL_ADDRESS_", "x"),)).to_json()
    with pytest.raises(ValueError, match="identifier"):
        Recipient("L", "F")
