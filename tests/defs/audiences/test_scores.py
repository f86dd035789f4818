"""Scores on hand-built histories with known answers, propensity calibration, past-day recompute."""

from __future__ import annotations

import random

import pytest

from responsys_assets.defs.audiences.profiles import build_profiles
from responsys_assets.defs.audiences.scores import (
    SCORE_COLUMNS,
    CalibrationRow,
    StaleProfilesError,
    build_scores,
    propensity_calibration,
)
from tests.defs.audiences.warehouse import (
    T0,
    add_contact,
    add_event,
    add_events,
    days_ago,
    make_warehouse,
    profile,
)


def _build(conn, as_of=T0):
    build_profiles(conn, as_of)
    build_scores(conn, as_of)


def _scores(conn, key):
    p = profile(conn, key)
    return {name.removesuffix("_score"): p[name] for name in SCORE_COLUMNS}


def test_recency_halves_every_30_days(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "OPEN", T0, riid=1)
    add_event(conn, "CLICK", days_ago(30), riid=2)
    add_event(conn, "OPEN", days_ago(60), riid=3)
    add_event(conn, "SENT", days_ago(1), riid=4)  # never engaged
    _build(conn)
    assert [_scores(conn, f"riid:{n}")["recency"] for n in (1, 2, 3, 4)] == [100, 50, 25, 0]


def test_quantity_frequency_intensity_and_consistency(tmp_path):
    conn = make_warehouse(tmp_path)
    # 4 distinct days in the last 30, 6 opens + 3 clicks + 1 conversion in 90 days.
    for age in (1, 2, 3, 4):
        add_event(conn, "OPEN", days_ago(age, seconds=3600), riid=1)
    add_event(conn, "OPEN", days_ago(4, seconds=7200), riid=1)  # same day as another: 4 days
    add_event(conn, "OPEN", days_ago(60), riid=1)
    for age in (1, 2, 60):
        add_event(conn, "CLICK", days_ago(age, seconds=3600), riid=1)
    add_event(conn, "CONVERT", days_ago(2), riid=1)
    add_event(conn, "OPEN", days_ago(120), riid=1)  # outside every window
    _build(conn)
    s = _scores(conn, "riid:1")
    assert s["quantity"] == 50  # 10 / (10 + 10)
    assert s["frequency"] == 50  # 4 days / (4 + 4)
    assert s["intensity"] == 57  # x = (3 + 1) / 6 = 0.667; x / (x + 0.5)
    # weeks with engagement among the last 12: week 0 (days 1-4 minus an hour) and week 8 (day 60)
    assert s["consistency"] == round(100 * 2 / 12)

    # 6 of 12 weeks engaged -> 50; clicks without opens -> intensity from a denominator of 1
    for week in range(6):
        add_event(conn, "CLICK", days_ago(7 * week + 1), riid=2)
    _build(conn)
    s = _scores(conn, "riid:2")
    assert (s["consistency"], s["intensity"]) == (50, round(100 * 6 / 6.5))


def test_momentum_compares_the_last_two_fortnights(tmp_path):
    conn = make_warehouse(tmp_path)
    for age in (1, 2, 3, 20):
        add_event(conn, "OPEN", days_ago(age), riid=1)  # 3 recent, 1 before: rising
    add_event(conn, "OPEN", days_ago(20), riid=2)  # only the earlier fortnight: falling
    add_event(conn, "OPEN", days_ago(14), riid=3)  # exactly 14 days: the earlier fortnight
    add_event(conn, "SENT", days_ago(1), riid=4)  # no engagement at all: steady
    _build(conn)
    momentum = [_scores(conn, f"riid:{n}")["momentum"] for n in (1, 2, 3, 4)]
    assert momentum == [75, 0, 0, 50]


def test_propensity_is_calibrated_on_the_accounts_last_week(tmp_path):
    conn = make_warehouse(tmp_path)
    ref = days_ago(7)
    # 4 contacts engaged once 3 days before ref ('7d:1-2' a week ago); 3 of them engage again.
    for riid in (1, 2, 3, 4):
        add_event(conn, "OPEN", days_ago(3, now=ref), riid=riid)
    for riid in (1, 2, 3):
        add_event(conn, "CLICK", days_ago(2), riid=riid)
    # 6 contacts sent email but never engaged ('never' a week ago); none engage.
    for riid in range(10, 16):
        add_event(conn, "SENT", days_ago(20), riid=riid)
    add_event(conn, "SENT", days_ago(1), riid=99)  # new this week: not in the calibration
    _build(conn)

    assert propensity_calibration(conn) == [
        CalibrationRow("7d:1-2", 4, 3, 0.75, round(100 * (3 + 10 * 0.3) / 14)),
        CalibrationRow("never", 6, 0, 0.0, round(100 * (0 + 10 * 0.3) / 16)),
    ]
    assert _scores(conn, "riid:1")["propensity"] == 43  # still '7d:1-2' now
    assert _scores(conn, "riid:10")["propensity"] == 19  # 'never'
    assert _scores(conn, "riid:99")["propensity"] == 19
    # riid 4 last engaged 10 days ago: '30d:1-2', a bucket without history -> the account's 30 %
    assert profile(conn, "riid:4")["engagement_bucket"] == "30d:1-2"
    assert _scores(conn, "riid:4")["propensity"] == 30


def test_propensity_is_null_without_a_week_of_history(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "OPEN", days_ago(1), riid=1)
    _build(conn)
    assert _scores(conn, "riid:1")["propensity"] is None
    assert propensity_calibration(conn) == []


def test_scores_stay_within_0_and_100(tmp_path):
    conn = make_warehouse(tmp_path)
    rng = random.Random(7)
    kinds = ["SENT", "OPEN", "CLICK", "CONVERT", "BOUNCE", "OPT_OUT", "OPT_IN", "COMPLAINT"]
    add_events(
        conn,
        [
            (rng.choice(kinds), days_ago(rng.uniform(0, 200)), rng.randint(1, 60), None)
            for _ in range(3000)
        ],
    )
    _build(conn)
    for name in SCORE_COLUMNS:
        low, high = conn.execute(
            f"select min({name}), max({name}) from audiences.scores"
        ).fetchall()[0]
        assert 0 <= low <= high <= 100, name


def test_a_past_day_recomputes_identically_after_later_events(tmp_path):
    conn = make_warehouse(tmp_path)
    rng = random.Random(11)
    add_events(
        conn,
        [
            (
                rng.choice(["SENT", "OPEN", "CLICK", "OPT_OUT", "BOUNCE"]),
                days_ago(rng.uniform(0, 120)),
                rng.randint(1, 40),
                f"p{rng.randint(1, 50)}@example.com" if rng.random() < 0.3 else None,
            )
            for _ in range(400)
        ],
    )
    add_contact(conn, riid=3, permission="O", modified_at=days_ago(4))
    past = days_ago(30)

    def snapshot():
        _build(conn, past)
        return {
            table: conn.execute(f"select * from audiences.{table} order by all").fetchall()
            for table in ("profiles", "scores", "propensity_calibration")
        }

    before = snapshot()
    later = [  # some for new contacts, some by email only
        (
            rng.choice(["SENT", "OPEN", "CLICK", "OPT_IN"]),
            days_ago(rng.uniform(0, 29)),
            rng.choice([None, rng.randint(1, 80)]),
            f"p{rng.randint(1, 50)}@example.com",
        )
        for _ in range(200)
    ]
    add_events(conn, later)
    add_contact(conn, riid=5, permission="O", modified_at=days_ago(1))
    _build(conn)  # today, in between
    assert snapshot() == before
    assert len(before["profiles"]) > 10


def test_scores_refuse_profiles_built_for_another_time(tmp_path):
    conn = make_warehouse(tmp_path)
    add_event(conn, "OPEN", days_ago(1), riid=1)
    build_profiles(conn, T0)
    with pytest.raises(StaleProfilesError, match="build_profiles"):
        build_scores(conn, days_ago(1))
