"""Exports benchmark: a profile-list backfill of N audience members against the emulator with a
configured mergeListMembers rate limit, then a run with nothing new.

The warehouse rows (profiles, scores, ENTER changes) are written with SQL, the emulator's list is
seeded with the same contacts (`Store.write_members`), and the emulator runs in its own process
(bench/emulator.py). The pipeline itself runs in a child process (`child_main`) for its own
peak RSS. Calls and API_LIMIT_EXCEEDED answers are counted from the emulator's call log.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from common import emit

USER, PASSWORD = "bench_user", "Bench-Pa55-word!"  # a throwaway account of the local emulator
LIST, FOLDER, AUDIENCE, EXPORT = "BENCH_LIST", "Bench", "bench_audience", "bench_list"
FIRST_RIID = 1
SUPPRESSED_EVERY = 50  # 2 % of the audience is suppressed (opted out): never sent
AS_OF = "2026-02-01 00:00:00"
RATE_LIMITED_API = "mergeListMembers"
PROBE_CALLS = 200


def _email(riid_sql: str) -> str:
    return f"'contact' || {riid_sql} || '@example.com'"


def _fill(conn, table: str, values: dict[str, str], n: int) -> None:  # noqa: ANN001
    """Insert n rows (i = 0..n-1): `values` as SQL expressions, neutral values for the other
    NOT NULL columns, null for the rest."""
    schema, name = table.split(".")
    columns = conn.execute(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    neutral = {"BIGINT": "0", "INTEGER": "0", "BOOLEAN": "false", "VARCHAR": "''"}
    select = []
    for column, kind, nullable in columns:
        if column in values:
            select.append(f"{values[column]} as {column}")
        elif nullable == "NO":
            select.append(f"{neutral.get(kind, f'TIMESTAMP {AS_OF!r}')} as {column}")
    conn.execute(f"insert into {table} by name select {', '.join(select)} from range({n}) as t(i)")


def build_warehouse(db_path: Path, members: int) -> None:
    """Profiles, scores and one ENTER per contact, as an audience evaluation leaves them."""
    import duckdb

    from responsys_assets.warehouse import apply_migrations

    conn = duckdb.connect(str(db_path))
    try:
        apply_migrations(conn)
        riid = f"(i + {FIRST_RIID})"
        _fill(
            conn,
            "audiences.profiles",
            {
                "contact_key": f"'riid:' || {riid}",
                "riid": riid,
                "customer_id": f"'C' || lpad({riid}::varchar, 9, '0')",
                "email": _email(riid),
                "email_sha256": f"sha256({_email(riid)})",
                "opens_30d": "i % 7",
                "clicks_30d": "i % 3",
                "last_open_at": f"TIMESTAMP {AS_OF!r} - to_hours(i % 700)",
                "email_permission": "'OPTIN'",
                "suppressed": f"i % {SUPPRESSED_EVERY} = 0",
                "as_of": f"TIMESTAMP {AS_OF!r}",
            },
            members,
        )
        _fill(
            conn,
            "audiences.scores",
            {
                "contact_key": f"'riid:' || {riid}",
                "engagement_bucket": "'7d:3-9'",
                "recency_score": "i % 101",
                "frequency_score": "(i * 7) % 101",
                "propensity_score": "(i * 13) % 101",
                "as_of": f"TIMESTAMP {AS_OF!r}",
            },
            members,
        )
        _fill(
            conn,
            "audiences.membership_changes",
            {
                "change_id": "i + 1",
                "audience": f"'{AUDIENCE}'",
                "contact_key": f"'riid:' || {riid}",
                "riid": riid,
                "email": _email(riid),
                "change": "'ENTER'",
                "changed_at": f"TIMESTAMP {AS_OF!r}",
                "evaluation_id": "1",
                "suppressed": f"i % {SUPPRESSED_EVERY} = 0",
            },
            members,
        )
    finally:
        conn.close()


def seed_emulator(store, members: int) -> None:  # noqa: ANN001
    """The profile list already holds every contact (the export updates them, matched on RIID)."""
    store.ensure_folder(FOLDER)
    store.ensure_list(LIST, FOLDER)
    step = 100_000
    for start in range(0, members, step):
        rows = [
            {
                "riid": FIRST_RIID + i,
                "email_address": f"contact{FIRST_RIID + i}@example.com",
                "customer_id": f"C{FIRST_RIID + i:09d}",
                "email_permission_status": "I",
            }
            for i in range(start, min(members, start + step))
        ]
        store.write_members(LIST, rows, [])


def _export():  # noqa: ANN202
    from responsys_assets.config import MergeRuleConfig, ProfileListExport

    return ProfileListExport(
        type="profile_list",
        name=EXPORT,
        audience=AUDIENCE,
        list=LIST,
        folder=FOLDER,
        merge_rule=MergeRuleConfig(match_column_1="RIID", insert_on_no_match=False),
        fields={"RECENCY_SCORE": "recency_score", "PROPENSITY": "propensity_score"},
    )


def _client(base_url: str):  # noqa: ANN202
    from responsys_assets.lib.responsys import ResponsysClient

    return ResponsysClient(endpoint=base_url, username=USER, password=PASSWORD)


def run_pipeline(db_path: Path, base_url: str) -> dict:
    """In the child: the backfill, then a run with no new changes."""
    import duckdb

    from responsys_assets.defs.exports.handlers.profile_list import ProfileListHandler
    from responsys_assets.defs.exports.runner import run_export

    out: dict = {}
    conn = duckdb.connect(str(db_path))
    handler = ProfileListHandler(_export())
    with _client(base_url) as client:
        for label in ("backfill", "no_changes"):
            started_at = datetime.now().isoformat()
            started = time.perf_counter()
            report = run_export(
                conn, client, name=EXPORT, audience=AUDIENCE, handler=handler, backfill=True
            )
            seconds = time.perf_counter() - started
            out[label] = {
                "started_at": started_at,
                "seconds": seconds,
                "ok": report.ok,
                "stopped_by": report.stopped_by,
                "pending": report.pending,
                "added": report.added,
                "suppressed": report.suppressed,
                "rejected": report.rejected,
                "api_calls": report.api_calls,
                "errors": dict(report.errors),
            }
        out["client_paced_seconds"] = client.stats.paced_seconds
        out["client_throttled"] = client.stats.throttled
    conn.close()
    return out


def probe_emulator(base_url: str, members: int, calls: int) -> dict:
    """The emulator's own speed: merges of 200 existing members back to back, no pacing left
    that could bind (the probe's emulator has a limit far above what it can serve)."""
    from responsys_assets.defs.exports.records import merge_rule

    rule = merge_rule(_export().merge_rule)
    names = ["RIID_", "EMAIL_ADDRESS_", "RECENCY_SCORE", "PROPENSITY"]
    with _client(base_url) as client:
        client.rate_limits()
        started = time.perf_counter()
        for call in range(calls):
            first = FIRST_RIID + (call * 200) % max(members - 200, 1)
            rows = [
                [str(r), f"contact{r}@example.com", str(r % 101), str(r % 37)]
                for r in range(first, first + 200)
            ]
            results = client.merge_list_members(LIST, names, rows, rule)
            if not all(r.ok for r in results):
                raise RuntimeError("probe merge rejected records")
        seconds = time.perf_counter() - started
    return {"calls": calls, "seconds": seconds, "calls_per_minute": calls / seconds * 60}


def measure(work: Path, members: int, limit_per_minute: int) -> tuple[list, dict]:
    """Set up, run the probe and the pipeline; returns RESULTS.md rows and the raw figures."""
    import math

    from common import Row, fmt_seconds, run_child
    from emulator import EmulatorProcess

    from responsys_assets.sandbox.api import default_rate_limits
    from responsys_assets.sandbox.store import Store

    raw: dict = {"members": members, "limit_per_minute": limit_per_minute}
    db_path = work / "export_bench.duckdb"
    started = time.perf_counter()
    build_warehouse(db_path, members)
    raw["build_warehouse_seconds"] = time.perf_counter() - started

    # The emulator's own speed, on a copy of the account with a limit it cannot reach.
    probe_dir = work / "emulator-probe"
    probe_members = min(members, 20_000)
    probe_store = Store(probe_dir / "responsys_emulator.sqlite")
    seed_emulator(probe_store, probe_members)
    probe_store.close()
    unbounded = {**default_rate_limits(), RATE_LIMITED_API: 1_000_000}
    with EmulatorProcess(probe_dir, USER, PASSWORD, unbounded) as emulator:
        probe = run_child(
            [__file__, "probe", emulator.base_url, str(probe_members), str(PROBE_CALLS)],
            timeout=600,
        ).output
    raw["emulator_probe"] = probe

    state_dir = work / "emulator"
    store = Store(state_dir / "responsys_emulator.sqlite")
    started = time.perf_counter()
    seed_emulator(store, members)
    raw["seed_emulator_seconds"] = time.perf_counter() - started
    limits = {**default_rate_limits(), RATE_LIMITED_API: limit_per_minute}
    with EmulatorProcess(state_dir, USER, PASSWORD, limits) as emulator:
        child = run_child([__file__, "run", str(db_path), emulator.base_url], timeout=3600)
    raw["pipeline"] = child.output
    raw["pipeline_peak_rss_mb"] = child.peak_rss_mb

    calls = store.api_calls()
    store.close()
    backfill, quiet = child.output["backfill"], child.output["no_changes"]
    second_started = quiet["started_at"].replace("T", " ")
    merges = [c for c in calls if c["api"] == RATE_LIMITED_API and c["status"] == 200]
    first_run = [c for c in merges if c["at"].replace("T", " ")[:23] < second_started[:23]]
    second_run = [c for c in merges if c not in first_run]
    exceeded = sum(1 for c in calls if c["error_code"] == "API_LIMIT_EXCEEDED")
    records = sum(c["records"] for c in first_run)
    n_calls = len(first_run)
    per_call = records / n_calls if n_calls else 0.0
    seconds = backfill["seconds"]
    raw.update(
        merge_calls=n_calls,
        merge_records=records,
        api_limit_exceeded=exceeded,
        second_run_merge_calls=len(second_run),
    )

    span = 0.0
    if n_calls > 1:
        t0 = datetime.fromisoformat(first_run[0]["at"])
        t1 = datetime.fromisoformat(first_run[-1]["at"])
        span = (t1 - t0).total_seconds()
    calls_per_minute = (n_calls - 1) / span * 60 if span else 0.0
    allowed_records_per_minute = limit_per_minute * 200
    records_per_minute = records / seconds * 60 if seconds else 0.0
    # Responsys counts calls in a sliding minute, so the first `limit` calls may go at once:
    # the earliest the last of N calls can go is after floor((N - 1) / limit) full minutes.
    ideal_seconds = 60.0 * ((math.ceil(records / 200) - 1) // limit_per_minute)
    size = f"{members / 1e6:g}M" if members >= 1_000_000 else f"{members / 1e3:g}k"
    limit_text = f"{limit_per_minute} calls/min configured"
    probe_text = f"emulator alone: {probe['calls_per_minute']:.0f} calls/min ({PROBE_CALLS} merges)"
    rows = [
        Row(
            f"export backfill {size} members: records per call",
            f"{per_call:.1f} ({records:,} records, {n_calls:,} calls)",
            "200 records/call",
            "Responsys API maximum per merge call",
            per_call / 200,
            ">= 195 records/call",
            per_call >= 195,
        ),
        Row(
            f"export backfill {size} members: mergeListMembers calls per minute",
            f"{calls_per_minute:.0f} calls/min (first to last call)",
            f"{limit_per_minute} calls/min",
            f"{limit_text}; {probe_text}",
            calls_per_minute / limit_per_minute,
            ">= 0.90 of the limit",
            calls_per_minute >= 0.9 * limit_per_minute,
        ),
        Row(
            f"export backfill {size} members: sustained records per minute (whole run)",
            f"{records_per_minute:,.0f} records/min",
            f"{allowed_records_per_minute:,} records/min",
            f"{limit_text} x 200 records/call",
            records_per_minute / allowed_records_per_minute,
            ">= 0.90 of the limit",
            records_per_minute >= 0.9 * allowed_records_per_minute,
        ),
        Row(
            f"export backfill {size} members: wall time",
            fmt_seconds(seconds),
            fmt_seconds(ideal_seconds),
            f"earliest a sliding {limit_per_minute}/min window allows "
            f"{math.ceil(records / 200):,} calls",
            ideal_seconds / seconds if seconds else None,
            ">= 0.90 (limit time / ours)",
            seconds > 0 and ideal_seconds / seconds >= 0.9,
        ),
        Row(
            f"export backfill {size} members: API_LIMIT_EXCEEDED answers",
            str(exceeded),
            "0",
            "emulator call log",
            None,
            "= 0",
            exceeded == 0,
        ),
        Row(
            "export run with no changes: wall time (pipeline overhead)",
            fmt_seconds(quiet["seconds"]),
            "1 s",
            "issue's bound",
            quiet["seconds"] / 1.0,
            "< 1 s (ratio < 1)",
            quiet["seconds"] < 1.0,
        ),
        Row(
            "export run with no changes: data calls",
            str(len(second_run)),
            "0",
            "emulator call log",
            None,
            "= 0",
            len(second_run) == 0,
        ),
    ]
    return rows, raw


def child_main(argv: list[str]) -> None:
    if argv[0] == "probe":
        emit(probe_emulator(argv[1], int(argv[2]), int(argv[3])))
    else:
        emit(run_pipeline(Path(argv[1]), argv[2]))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    child_main(sys.argv[1:])
