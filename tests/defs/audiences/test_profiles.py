"""Profiles: identity resolution, counts and windows, permission and suppression, as of a time."""

from __future__ import annotations

import hashlib

from responsys_assets.defs.audiences.profiles import build_profiles
from responsys_assets.defs.audiences.scores import build_scores
from tests.defs.audiences.warehouse import (
    T0,
    add_contact,
    add_event,
    days_ago,
    make_warehouse,
    profile,
)


def _build(conn, as_of=T0):
    build_profiles(conn, as_of)
    build_scores(conn, as_of)


def test_identity_resolves_email_and_customer_only_events_to_the_riid(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "SENT", days_ago(10), riid=7, customer_id="C-7", email="Ann@Example.com ")
    add_event(conn, "OPEN", days_ago(9), email="  ann@example.COM")  # email only, same address
    add_event(conn, "CLICK", days_ago(8), customer_id="C-7")  # customer id only
    _build(conn)

    ann = profile(conn, "riid:7")
    assert (ann["riid"], ann["customer_id"], ann["email"]) == (7, "C-7", "ann@example.com")
    assert ann["email_sha256"] == hashlib.sha256(b"ann@example.com").hexdigest()
    assert (ann["sends"], ann["opens"], ann["clicks"]) == (1, 1, 1)
    assert (ann["first_seen_at"], ann["last_seen_at"]) == (days_ago(10), days_ago(8))
    assert conn.execute("select count(*) from audiences.profiles").fetchall()[0][0] == 1


def test_contacts_without_riid_are_kept(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "SENT", days_ago(3), email=" Bob@Example.com")
    add_contact(
        conn, customer_id="C-9", email="cat@example.com", permission="I", modified_at=days_ago(2)
    )
    _build(conn)

    sha = hashlib.sha256(b"bob@example.com").hexdigest()
    bob = profile(conn, f"email:{sha}")
    assert (bob["riid"], bob["email"], bob["email_sha256"], bob["sends"]) == (
        None,
        "bob@example.com",
        sha,
        1,
    )
    cat = profile(conn, "cust:C-9")
    assert (cat["email"], cat["email_permission"], cat["sends"]) == ("cat@example.com", "OPTIN", 0)


def test_counts_windows_and_last_times_end_at_as_of(tmp_path):
    conn = make_warehouse(tmp_path)
    for age in (6, 7, 29, 89, 100):
        add_event(conn, "OPEN", days_ago(age), riid=1)
    add_event(conn, "CLICK", days_ago(7, seconds=-1), riid=1)  # 1 s inside the 7-day window
    add_event(conn, "CLICK", days_ago(30), riid=1)  # exactly 30 days: outside clicks_30d
    add_event(conn, "CONVERT", days_ago(20), riid=1)
    add_event(conn, "BOUNCE", days_ago(50), riid=1, attributes={"BOUNCE_TYPE": "S"})
    add_event(conn, "OPEN", days_ago(-1), riid=1)  # after as_of: not counted
    _build(conn)

    p = profile(conn, "riid:1")
    assert (p["opens"], p["opens_7d"], p["opens_30d"], p["opens_90d"]) == (5, 1, 3, 4)
    assert (p["clicks"], p["clicks_7d"], p["clicks_30d"], p["clicks_90d"]) == (2, 1, 1, 2)
    assert (p["conversions"], p["conversions_30d"], p["bounces"]) == (1, 1, 1)
    assert p["last_open_at"] == days_ago(6)
    assert p["last_click_at"] == days_ago(7, seconds=-1)
    assert p["last_engaged_at"] == days_ago(6)
    assert p["last_conversion_at"] == days_ago(20)
    assert p["last_bounce_at"] == days_ago(50)
    assert p["last_seen_at"] == days_ago(6)
    assert not p["hard_bounced"] and not p["suppressed"]


def test_opt_out_then_back_in(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "OPT_OUT", days_ago(10), riid=1)
    _build(conn, days_ago(5))
    p = profile(conn, "riid:1")
    assert (p["email_permission"], p["permission_changed_at"], p["suppressed"]) == (
        "OPTOUT",
        days_ago(10),
        True,
    )

    add_event(conn, "OPT_IN", days_ago(2), riid=1)
    _build(conn)
    p = profile(conn, "riid:1")
    assert (p["email_permission"], p["permission_changed_at"], p["suppressed"]) == (
        "OPTIN",
        days_ago(2),
        False,
    )


def test_the_most_recent_fact_wins_between_events_and_the_contacts_file(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "OPT_IN", days_ago(10), riid=1)
    add_contact(conn, riid=1, permission="O", modified_at=days_ago(3))  # newer: wins
    add_event(conn, "OPT_OUT", days_ago(5), riid=2)
    add_contact(conn, riid=2, permission="I", modified_at=days_ago(20))  # older: loses
    add_contact(conn, riid=3, permission="I", modified_at=days_ago(1))  # only the file
    _build(conn)

    assert profile(conn, "riid:1")["email_permission"] == "OPTOUT"
    assert profile(conn, "riid:1")["permission_changed_at"] == days_ago(3)
    assert profile(conn, "riid:2")["email_permission"] == "OPTOUT"
    assert profile(conn, "riid:3")["email_permission"] == "OPTIN"

    # A file fact dated after as_of is not known yet at as_of.
    add_contact(conn, riid=2, permission="I", modified_at=days_ago(-1))
    _build(conn)
    assert profile(conn, "riid:2")["email_permission"] == "OPTOUT"


def test_hard_bounce_and_complaint_flags(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "BOUNCE", days_ago(5), riid=1, attributes={"BOUNCE_TYPE": "H"})
    add_event(conn, "BOUNCE", days_ago(5), riid=2, attributes={"BOUNCE_TYPE": "S"})
    add_event(conn, "BOUNCE", days_ago(5), riid=3, attributes={"BOUNCE_TYPE": "H"})
    add_event(conn, "OPEN", days_ago(1), riid=3)  # the address works again
    add_event(conn, "COMPLAINT", days_ago(5), riid=4)
    add_event(conn, "COMPLAINT", days_ago(5), riid=5)
    add_event(conn, "OPT_IN", days_ago(1), riid=5)  # re-subscribed after complaining
    _build(conn)

    flags = {
        key: (p["hard_bounced"], p["complained"], p["suppressed"])
        for key in ("riid:1", "riid:2", "riid:3", "riid:4", "riid:5")
        for p in [profile(conn, key)]
    }
    assert flags == {
        "riid:1": (True, False, True),
        "riid:2": (False, False, False),
        "riid:3": (False, False, False),
        "riid:4": (False, True, True),
        "riid:5": (False, False, False),
    }
    assert profile(conn, "riid:1")["last_hard_bounce_at"] == days_ago(5)


def test_migration_declares_the_columns_the_builds_write(tmp_path):
    conn = make_warehouse(tmp_path)
    tables = ("profiles", "scores", "propensity_calibration")

    def columns():
        return {table: conn.execute(f"describe audiences.{table}").fetchall() for table in tables}

    declared = {t: [(c[0], c[1]) for c in cols] for t, cols in columns().items()}
    add_event(conn, "OPEN", days_ago(10), riid=1)
    _build(conn)
    built = {t: [(c[0], c[1]) for c in cols] for t, cols in columns().items()}
    assert built == declared
