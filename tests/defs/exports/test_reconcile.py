"""Reconciliation logic without I/O: sampling, value comparison, classification."""

from __future__ import annotations

import pytest

from responsys_assets.defs.exports.reconcile import (
    FIELD_DIFFERS,
    MATCH,
    MISSING,
    STILL_PRESENT,
    Comparison,
    Expectation,
    FieldDifference,
    choose_sample,
    compare,
    judge,
    mask,
    reconcile,
)
from responsys_assets.lib.responsys import ResponsysThrottled

LIST_RULES = Comparison(stored_as={"EMAIL_PERMISSION_STATUS_": {"Y": "I", "N": "O"}})


def expect(key: str, fields: dict | None = None, *, just_sent=False) -> Expectation:
    return Expectation(key, f"RIID_ {key}", ("r", key), fields, just_sent)


def test_sample_is_bounded_deterministic_and_favours_just_sent():
    older = [expect(f"old{i}") for i in range(50)]
    recent = [expect(f"new{i}", just_sent=True) for i in range(5)]
    sample = choose_sample(older + recent, 8, seed="run-1")
    assert len(sample) == 8
    assert {e.contact_key for e in sample[:5]} == {f"new{i}" for i in range(5)}
    assert all(not e.just_sent for e in sample[5:])
    assert choose_sample(list(reversed(older + recent)), 8, seed="run-1") == sample
    other_run = choose_sample(older + recent, 8, seed="run-2")
    assert {e.contact_key for e in other_run[:5]} == {f"new{i}" for i in range(5)}
    assert [e.contact_key for e in other_run[5:]] != [e.contact_key for e in sample[5:]]
    assert choose_sample(older, 0, seed="run-1") == []
    assert len(choose_sample(older[:3], 20, seed="x")) == 3


def test_empty_and_null_are_the_same_value_but_other_differences_are_not():
    sent = {"RIID_": "101", "CITY_": "", "SCORE": "7"}
    assert compare(sent, {"RIID_": "101", "CITY_": None, "SCORE": "7"}, LIST_RULES) == []
    assert compare(sent, {"RIID_": "101", "SCORE": "7"}, LIST_RULES) == []  # not returned = empty
    assert compare(sent, {"RIID_": "101", "CITY_": None, "SCORE": "7.0"}, LIST_RULES) == [
        FieldDifference("SCORE", "7", "7.0")
    ]
    assert compare(sent, {"RIID_": "101", "CITY_": "Lyon", "SCORE": "7"}, LIST_RULES) == [
        FieldDifference("CITY_", None, "Lyon")
    ]
    assert compare({"CITY_": "Lyon"}, {"CITY_": " Lyon"}, LIST_RULES) == [
        FieldDifference("CITY_", "Lyon", " Lyon")
    ]


def test_field_names_ignore_case_except_in_supplemental_tables():
    assert compare({"city_": "Lyon"}, {"CITY_": "Lyon"}, LIST_RULES) == []
    supp = Comparison(names_case_sensitive=True)
    assert compare({"Clicks": "3"}, {"Clicks": "3"}, supp) == []
    assert compare({"Clicks": "3"}, {"CLICKS": "3"}, supp) == [FieldDifference("Clicks", "3", None)]


def test_permission_status_is_compared_as_stored():
    assert (
        compare({"EMAIL_PERMISSION_STATUS_": "Y"}, {"EMAIL_PERMISSION_STATUS_": "I"}, LIST_RULES)
        == []
    )
    assert compare(
        {"EMAIL_PERMISSION_STATUS_": "Y"}, {"EMAIL_PERMISSION_STATUS_": "O"}, LIST_RULES
    ) == [FieldDifference("EMAIL_PERMISSION_STATUS_", "I", "O")]


@pytest.mark.parametrize(
    ("fields", "actual", "status"),
    [
        ({"RIID_": "1", "CITY_": "Lyon"}, {"RIID_": "1", "CITY_": "Lyon"}, MATCH),
        ({"RIID_": "1", "CITY_": "Lyon"}, None, MISSING),
        ({"RIID_": "1", "CITY_": "Lyon"}, {"RIID_": "1", "CITY_": "Paris"}, FIELD_DIFFERS),
        (None, None, MATCH),  # deleted on exit, and gone
        (None, {"RIID_": "1"}, STILL_PRESENT),  # deleted on exit, still there
    ],
)
def test_judge(fields, actual, status):
    outcome = judge(expect("1", fields), actual, LIST_RULES)
    assert outcome.status == status
    assert bool(outcome.differences) == (status == FIELD_DIFFERS)


def test_reconcile_names_records_and_fields_without_emails():
    sample = [
        expect("1", {"RIID_": "1", "EMAIL_ADDRESS_": "ann@example.com", "CITY_": "Lyon"}),
        expect("2", {"RIID_": "2", "CITY_": "Nice"}),
        expect("3", None),
    ]
    stored = {
        "1": {"RIID_": "1", "EMAIL_ADDRESS_": "ann.b@example.com", "CITY_": "Lyon"},
        "2": None,
        "3": {"RIID_": "3"},
    }
    result = reconcile("vip", sample, lambda e: stored[e.lookup[1]], LIST_RULES, sample_size=20)
    assert result.checked == 3 and not result.passed
    assert result.counts() == {MATCH: 0, MISSING: 1, FIELD_DIFFERS: 1, STILL_PRESENT: 1}
    assert result.summary() == [
        "RIID_ 1: field_differs EMAIL_ADDRESS_",
        f"RIID_ 2: {MISSING}",
        f"RIID_ 3: {STILL_PRESENT}",
    ]
    details = result.details()
    assert "@" not in str(details)
    emails = details[0]["fields"][0]
    assert emails["field"] == "EMAIL_ADDRESS_" and emails["expected"] != emails["actual"]
    assert result.metadata()["reconcile_drifted"] == 3


def test_a_read_error_stops_the_read_back_and_fails_the_check():
    calls = []

    def fetch(e):
        calls.append(e.contact_key)
        if len(calls) == 2:
            raise ResponsysThrottled("retrieve_list_member: API_LIMIT_EXCEEDED", api="x")
        return {"RIID_": e.contact_key}

    sample = [expect(str(i), {"RIID_": str(i)}) for i in range(5)]
    result = reconcile("vip", sample, fetch, LIST_RULES, sample_size=5)
    assert calls == ["0", "1"]
    assert result.checked == 1 and result.unread == 4
    assert result.stopped_by.startswith("throttled") and not result.passed


def test_nothing_drifted_passes():
    sample = [expect(str(i), {"RIID_": str(i)}) for i in range(3)]
    result = reconcile("vip", sample, lambda e: {"RIID_": e.contact_key}, LIST_RULES, sample_size=3)
    assert result.passed and result.drifted == [] and result.summary() == []


def test_mask_hides_emails_but_keeps_them_distinguishable():
    assert mask("riid:101") == "riid:101"
    assert mask(None) is None
    a, b = mask("ann@example.com"), mask("ben@example.com")
    assert "@" not in a and a != b and a == mask("ann@example.com")
