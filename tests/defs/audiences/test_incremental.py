"""Incremental builds equal full ones: random event streams, new files and the clock moving on."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest

from responsys_assets.defs.audiences import incremental
from responsys_assets.defs.audiences.build_state import plan_build
from responsys_assets.defs.audiences.incremental import update_profiles
from responsys_assets.defs.audiences.memberships import evaluate_audiences
from responsys_assets.defs.audiences.rules import AudienceDefinition, load_ready_made
from tests.defs.audiences.warehouse import T0, make_warehouse

KINDS = ["SENT"] * 4 + ["OPEN"] * 3 + ["CLICK"] * 2 + [
    "BOUNCE", "CONVERT", "COMPLAINT", "OPT_IN", "OPT_OUT", "SKIPPED",
]  # fmt: skip
AUDIENCES = [
    *load_ready_made(),
    # rules on the clock itself, and on scores that move with it
    AudienceDefinition("stale_openers", "", "last_open_at < as_of - interval 20 days"),
    AudienceDefinition("likely", "", "propensity_score >= 40 and momentum_score > 50"),
    AudienceDefinition("weekly", "", "consistency_score >= 25 or engaged_days_30d >= 3"),
]
TABLES = {
    "profiles": "select * from audiences.profiles",
    "scores": "select * from audiences.scores",
    "propensity_calibration": "select * from audiences.propensity_calibration",
    "memberships": "select * from audiences.memberships",
    "membership_changes": "select * from audiences.membership_changes",
}


def _load_file(conn, name: str, events: list[tuple], contacts: list[tuple] = ()) -> None:
    """Events and contacts rows of one file, with its manifest row, as ingest writes them."""
    if events:
        conn.execute(
            "insert into responsys.events (event_type, riid, email, customer_id, event_captured_at,"
            " attributes, source_file, source_line) select unnest($1), unnest($2), unnest($3),"
            " unnest($4), unnest($5), unnest($6)::json, $7, unnest($8)",
            [*[list(c) for c in zip(*events, strict=True)], name, list(range(2, len(events) + 2))],
        )
    for line, (riid, email, permission, modified_at) in enumerate(contacts, start=2):
        conn.execute(
            "insert into responsys.contacts (riid, email, email_permission_status, modified_at,"
            " source_file, source_line) values (?, ?, ?, ?, ?, ?)",
            [riid, email, permission, modified_at, name, line],
        )
    conn.execute(
        "insert into responsys.ingested_files (file_name, feed, status, row_count, ingested_at)"
        " values (?, 'TEST', 'loaded', ?, now())",
        [name, len(events) + len(contacts)],
    )


def _random_events(rng: random.Random, riids: list[int], start: datetime, end: datetime, n: int):
    span = int((end - start).total_seconds())
    rows = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        riid = rng.choice(riids)
        # whole seconds, so some events share an instant; the email changes now and then
        at = start + timedelta(seconds=rng.randrange(span))
        email = f"r{riid}-{rng.randrange(3)}@example.com" if rng.random() < 0.9 else ""
        attributes = {"BOUNCE_TYPE": rng.choice("HS")} if kind == "BOUNCE" else {}
        rows.append((kind, riid, email, f"C{riid}", at, json.dumps(attributes)))
    return rows


def _evaluate(conn, as_of: datetime, mode: str):
    conn.execute("begin transaction")
    outcome = update_profiles(conn, as_of, mode=mode)
    conn.execute("commit")
    evaluate_audiences(conn, AUDIENCES, as_of)
    return outcome


def _snapshot(conn) -> dict:
    return {name: conn.execute(f"{sql} order by all").fetchall() for name, sql in TABLES.items()}


@pytest.mark.parametrize("seed", range(4))
def test_incremental_equals_a_full_build_at_every_step(tmp_path, seed):
    rng = random.Random(seed)
    (tmp_path / "inc").mkdir()
    (tmp_path / "full").mkdir()
    incremental, full = make_warehouse(tmp_path / "inc"), make_warehouse(tmp_path / "full")
    riids = list(range(1, 301))
    as_of = T0 + timedelta(hours=rng.randrange(24))
    first = _random_events(rng, riids, as_of - timedelta(days=130), as_of + timedelta(days=2), 6000)
    contacts = [
        (r, f"r{r}-0@example.com", rng.choice("IO"), as_of - timedelta(days=rng.randrange(60)))
        for r in rng.sample(riids, 30)
    ]
    files = [("1_ALL_first.txt", first, contacts)]
    modes = []
    for step in range(6):
        for conn in (incremental, full):
            _load_file(conn, *files[-1])
        modes.append(_evaluate(incremental, as_of, "auto").mode)
        _evaluate(full, as_of, "full")
        assert _snapshot(incremental) == _snapshot(full), f"step {step} as of {as_of}"
        # The clock moves on (sometimes past midnight or a week), then a file touching ~2% of
        # the contacts (and a new one) arrives, with some events late and some not yet due.
        previous = as_of
        as_of += timedelta(minutes=rng.choice([10, 60, 7 * 60, 26 * 60, 4 * 24 * 60]))
        touched = [*rng.sample(riids, 6), 1000 + step]
        events = _random_events(
            rng, touched, previous - timedelta(days=3), as_of + timedelta(hours=2), 40
        )
        permission = (touched[0], f"r{touched[0]}-9@example.com", rng.choice("IO"), as_of)
        files.append((f"1_NEW_{step}.txt", events, [permission]))
    assert modes == ["full"] + ["incremental"] * 5
    memberships = incremental.execute("select count(*) from audiences.memberships").fetchall()
    assert memberships[0][0] > 100


def test_incremental_in_small_update_slices_equals_a_full_build(tmp_path, monkeypatch):
    # Large re-derivations are written in slices (one big UPDATE hits a slow path in DuckDB);
    # slices of 3 rows make every step here take that path.
    monkeypatch.setattr(incremental, "UPDATE_SLICE_ROWS", 3)
    test_incremental_equals_a_full_build_at_every_step(tmp_path, seed=1)


def test_incremental_rebuilds_in_full_when_it_cannot_be_sure(tmp_path):
    conn = make_warehouse(tmp_path)
    rng = random.Random(3)
    _load_file(conn, "1_A.txt", _random_events(rng, [1, 2, 3], T0 - timedelta(days=40), T0, 50))
    _evaluate(conn, T0, "auto")
    later = T0 + timedelta(hours=1)
    assert plan_build(conn, later).mode == "incremental"
    assert plan_build(conn, T0 - timedelta(days=1)).reason.startswith("as_of is before")
    assert "more than 7 days" in plan_build(conn, T0 + timedelta(days=8)).reason

    conn.execute("delete from audiences.profiles where riid = 3")
    assert plan_build(conn, later).reason == (
        "audiences.profiles has 2 rows and audiences.contact_aggregates 3: "
        "one was changed outside a build"
    )
    _evaluate(conn, later, "auto")

    conn.execute("update responsys.ingested_files set ingested_at = now() + interval 1 minute")
    assert plan_build(conn, later).reason == (
        "file 1_A.txt was reloaded or removed since the last build"
    )
    _evaluate(conn, later, "auto")

    conn.execute(
        "insert into responsys.events (event_type, riid, event_captured_at, source_file,"
        " source_line) values ('OPEN', 1, ?, 'no_manifest.txt', 2)",
        [later],
    )
    assert "rows changed outside the file manifest" in plan_build(conn, later).reason
    _evaluate(conn, later, "auto")

    _load_file(conn, "1_B.txt", [("OPEN", None, "x@example.com", "", later, "{}")])
    assert plan_build(conn, later).reason == "new rows in responsys.events without a RIID"
    outcome = _evaluate(conn, later + timedelta(minutes=5), "auto")
    assert (outcome.mode, outcome.reason) == ("full", "new rows in responsys.events without a RIID")
    assert plan_build(conn, later + timedelta(minutes=10)).reason == (
        "rows without a RIID exist: identity resolution is rebuilt"
    )
