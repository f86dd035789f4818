"""Memberships: ENTER/EXIT history over several evaluations, suppression, time-based rules."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import duckdb
import pytest

from responsys_assets.defs.audiences.memberships import (
    AudienceOutcome,
    audience_history,
    evaluate_audiences,
    recompute,
)
from responsys_assets.defs.audiences.profiles import build_profiles
from responsys_assets.defs.audiences.rules import (
    AudienceDefinition,
    AudienceRuleError,
    rule_input_sql,
)
from responsys_assets.defs.audiences.scores import StaleProfilesError, score_deciles
from tests.defs.audiences.warehouse import T0, add_event, days_ago, make_warehouse

CLICKERS = AudienceDefinition("clickers", "clicked in the last 7 days", "clicks_7d > 0")
OPTED_OUT = AudienceDefinition("opted_out", "opted out", "email_permission = 'OPTOUT'")


def _members(conn, audience):
    return conn.execute(
        "select contact_key, entered_at, evaluation_id, suppressed from audiences.memberships"
        " where audience = ? order by contact_key",
        [audience],
    ).fetchall()


def _changes(conn):
    return conn.execute(
        "select change_id, audience, contact_key, change, changed_at, evaluation_id, suppressed"
        " from audiences.membership_changes order by change_id"
    ).fetchall()


def test_enter_stay_exit_and_re_enter(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(1), riid=1, email="a@example.com")
    t1, t2, t3, t4 = T0, T0 + timedelta(days=3), T0 + timedelta(days=10), T0 + timedelta(days=12)

    first = recompute(conn, [CLICKERS], t1)
    assert (first.evaluation_id, first.as_of) == (1, t1)
    assert first.audiences == {"clickers": AudienceOutcome(1, 0, 1, 0)}
    assert _members(conn, "clickers") == [("riid:1", t1, 1, False)]

    second = recompute(conn, [CLICKERS], t2)  # still a clicker: stays, entered_at kept
    assert second.audiences["clickers"] == AudienceOutcome(1, 0, 0, 0)
    assert _members(conn, "clickers") == [("riid:1", t1, 2, False)]

    third = recompute(conn, [CLICKERS], t3)  # the click is now 11 days old
    assert third.audiences["clickers"] == AudienceOutcome(0, 0, 0, 1)
    assert _members(conn, "clickers") == []

    add_event(conn, "CLICK", t4 - timedelta(hours=1), riid=1)
    fourth = recompute(conn, [CLICKERS], t4)
    assert fourth.audiences["clickers"] == AudienceOutcome(1, 0, 1, 0)
    assert _members(conn, "clickers") == [("riid:1", t4, 4, False)]

    changes = _changes(conn)
    assert [(c[3], c[4], c[5]) for c in changes] == [
        ("ENTER", t1, 1),
        ("EXIT", t3, 3),
        ("ENTER", t4, 4),
    ]
    ids = [c[0] for c in changes]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert conn.execute(
        "select evaluation_id, as_of from audiences.evaluations where finished_at is not null"
        " order by 1"
    ).fetchall() == [(1, t1), (2, t2), (3, t3), (4, t4)]
    assert [(row[0], row[2], row[3]) for row in audience_history(conn)] == [
        (1, "clickers", 1),
        (2, "clickers", 1),
        (3, "clickers", 0),
        (4, "clickers", 1),
    ]
    assert set(score_deciles(conn)) >= {"recency_score", "propensity_score"}


def test_time_based_rule_at_the_boundary(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "OPEN", days_ago(30), riid=1)  # exactly 30 days before as_of
    add_event(conn, "OPEN", days_ago(30, seconds=1), riid=2)  # 30 days and 1 second
    stale = AudienceDefinition("stale", "", "last_open_at < as_of - interval 30 days")
    result = recompute(conn, [stale], T0)
    assert result.audiences["stale"].size == 1
    assert [m[0] for m in _members(conn, "stale")] == ["riid:2"]

    # one second later the first contact crosses the boundary too
    recompute(conn, [stale], T0 + timedelta(seconds=1))
    assert [m[0] for m in _members(conn, "stale")] == ["riid:1", "riid:2"]


def test_suppressed_members_are_flagged_for_exports(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(2), riid=1)
    add_event(conn, "CLICK", days_ago(2), riid=2)
    add_event(conn, "OPT_OUT", days_ago(1), riid=2)
    result = recompute(conn, [CLICKERS, OPTED_OUT], T0)
    assert result.audiences["clickers"] == AudienceOutcome(2, 1, 2, 0)
    assert _members(conn, "clickers") == [("riid:1", T0, 1, False), ("riid:2", T0, 1, True)]
    assert [(c[2], c[6]) for c in _changes(conn) if c[1] == "clickers"] == [
        ("riid:1", False),
        ("riid:2", True),
    ]
    assert [m[0] for m in _members(conn, "opted_out")] == ["riid:2"]


def test_an_audience_removed_from_the_config_exits_its_members(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(2), riid=1)
    add_event(conn, "OPT_OUT", days_ago(1), riid=2)
    recompute(conn, [CLICKERS, OPTED_OUT], T0)
    result = recompute(conn, [OPTED_OUT], T0 + timedelta(hours=1))
    assert result.audiences["clickers"] == AudienceOutcome(0, 0, 0, 1, removed=True)
    assert _members(conn, "clickers") == []
    assert [(c[1], c[2], c[3]) for c in _changes(conn)][-1] == ("clickers", "riid:1", "EXIT")
    assert [m[0] for m in _members(conn, "opted_out")] == ["riid:2"]


def test_with_no_audience_left_in_the_config_every_member_exits(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(2), riid=1)
    add_event(conn, "OPT_OUT", days_ago(1), riid=2)
    recompute(conn, [CLICKERS, OPTED_OUT], T0)
    result = recompute(conn, [], T0 + timedelta(hours=1))
    assert result.audiences == {
        "clickers": AudienceOutcome(0, 0, 0, 1, removed=True),
        "opted_out": AudienceOutcome(0, 0, 0, 1, removed=True),
    }
    assert conn.execute("select count(*) from audiences.memberships").fetchone() == (0,)
    assert conn.execute("select count(*) from audiences.contact_audiences").fetchone() == (0,)
    assert [(c[1], c[2], c[3]) for c in _changes(conn)][-2:] == [
        ("clickers", "riid:1", "EXIT"),
        ("opted_out", "riid:2", "EXIT"),
    ]


def test_an_email_only_contact_can_be_a_member(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(1), email="Solo@Example.com")
    recompute(conn, [CLICKERS], T0)
    key = "email:" + hashlib.sha256(b"solo@example.com").hexdigest()
    assert conn.execute(
        "select contact_key, riid, email from audiences.memberships"
    ).fetchall() == [(key, None, "solo@example.com")]


def test_a_bad_rule_stops_before_anything_is_written(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(1), riid=1)
    bad = AudienceDefinition("bad", "", "clicks_7d > 0; delete from audiences.memberships")
    with pytest.raises(AudienceRuleError, match="'bad': more than one statement"):
        recompute(conn, [CLICKERS, bad], T0)
    assert conn.execute("select count(*) from audiences.evaluations").fetchall() == [(0,)]
    assert conn.execute("select count(*) from audiences.profiles").fetchall() == [(0,)]


def test_a_rule_failing_at_run_time_rolls_the_whole_evaluation_back(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(1), riid=1, email="a@example.com")
    recompute(conn, [CLICKERS], T0)
    before = (_members(conn, "clickers"), _changes(conn))
    breaks = AudienceDefinition("breaks", "", "email::integer > 0")  # binds, fails on 'a@...'
    with pytest.raises(duckdb.ConversionException):
        recompute(conn, [CLICKERS, breaks], T0 + timedelta(days=30))
    assert (_members(conn, "clickers"), _changes(conn)) == before
    assert conn.execute("select max(evaluation_id) from audiences.evaluations").fetchall() == [(1,)]


def test_evaluation_refuses_profiles_built_for_another_time(tmp_path, warehouse_location):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(1), riid=1)
    build_profiles(conn, T0)
    with pytest.raises(StaleProfilesError):
        evaluate_audiences(conn, [CLICKERS], T0 + timedelta(days=1))


def _from_scratch(conn, definitions):
    """What memberships must be after an evaluation: every rule run over the rule input."""
    rows = set()
    for d in definitions:
        rows |= set(
            conn.execute(
                f"select ?, contact_key, riid, email, suppressed from ({rule_input_sql()})"
                f" where coalesce(({d.rule}), false)",
                [d.name],
            ).fetchall()
        )
    return rows


def _stored(conn):
    return set(
        conn.execute(
            "select audience, contact_key, riid, email, suppressed from audiences.memberships"
        ).fetchall()
    )


def _per_contact(conn):
    return conn.execute(
        "select contact_key, audiences, riid, email, suppressed"
        " from audiences.contact_audiences order by contact_key"
    ).fetchall()


def _memberships_by_contact(conn):
    return conn.execute(
        "select contact_key, list_sort(list(audience)), any_value(riid), any_value(email),"
        " any_value(suppressed) from audiences.memberships group by contact_key order by 1"
    ).fetchall()


def test_only_changed_contacts_are_diffed_yet_every_change_is_recorded(
    tmp_path, warehouse_location
):
    # Contacts enter, stay, move between audiences, change email, become suppressed and leave
    # everything, over several evaluations; after each, memberships equal the rules run from
    # scratch, the per-contact table equals memberships grouped, and the recorded changes replay
    # to the memberships.
    conn = make_warehouse(warehouse_location)
    recent = AudienceDefinition("recent", "", "opens_7d + clicks_7d > 0")
    sent = AudienceDefinition("sent", "", "sends > 0")
    definitions = [CLICKERS, OPTED_OUT, recent, sent]
    add_event(conn, "CLICK", days_ago(1), riid=1, email="one@example.com")
    add_event(conn, "OPEN", days_ago(6), riid=2, email="two@example.com")
    add_event(conn, "SENT", days_ago(20), riid=3, email="three@example.com")
    add_event(conn, "SENT", days_ago(20), riid=4, email="four@example.com")
    hard = {"BOUNCE_TYPE": "H"}
    steps = [
        (T0, []),
        (T0 + timedelta(hours=30), [("OPT_OUT", 1, None, None), ("CLICK", 3, None, None)]),
        # only the email of 3 changes, then only the suppression of 4 (a hard bounce)
        (T0 + timedelta(days=3), [("SENT", 3, "new-three@example.com", None)]),
        (T0 + timedelta(days=4), [("BOUNCE", 4, None, hard)]),
        (T0 + timedelta(days=12), []),  # the clicks age out
    ]
    for as_of, events in steps:
        for event_type, riid, email, attributes in events:
            at = as_of - timedelta(hours=1)
            add_event(conn, event_type, at, riid=riid, email=email, attributes=attributes)
        recompute(conn, definitions, as_of)
        assert _stored(conn) == _from_scratch(conn, definitions)
        assert _per_contact(conn) == _memberships_by_contact(conn)
    replayed: set[tuple[str, str]] = set()
    for _, audience, key, change, *_ in _changes(conn):
        (replayed.add if change == "ENTER" else replayed.remove)((audience, key))
    assert replayed == {(row[0], row[1]) for row in _stored(conn)}
    assert ("sent", "riid:3", 3, "new-three@example.com", False) in _stored(conn)
    assert ("sent", "riid:4", 4, "four@example.com", True) in _stored(conn)


def test_a_direct_write_to_memberships_is_noticed_by_the_next_evaluation(
    tmp_path, warehouse_location
):
    conn = make_warehouse(warehouse_location)
    add_event(conn, "CLICK", days_ago(1), riid=1)
    add_event(conn, "CLICK", days_ago(1), riid=2)
    recompute(conn, [CLICKERS], T0)
    # someone deletes a member and adds a contact no rule selects
    conn.execute("delete from audiences.memberships where contact_key = 'riid:1'")
    conn.execute(
        "insert into audiences.memberships (audience, contact_key, riid, entered_at,"
        " evaluation_id, suppressed) values ('clickers', 'riid:9', 9, ?, 1, false)",
        [T0],
    )
    result = recompute(conn, [CLICKERS], T0 + timedelta(hours=1))
    assert result.audiences["clickers"] == AudienceOutcome(2, 0, 1, 1)
    assert [(c[2], c[3]) for c in _changes(conn)][-2:] == [
        ("riid:1", "ENTER"),
        ("riid:9", "EXIT"),
    ]
    assert [m[0] for m in _members(conn, "clickers")] == ["riid:1", "riid:2"]
    assert _per_contact(conn) == _memberships_by_contact(conn)
