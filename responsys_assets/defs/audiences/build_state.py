"""What the last build of profiles read, and whether the next one may merge only what changed.

A build records its as_of, the loaded files it read (from responsys.ingested_files) and the row
counts of responsys.events and responsys.contacts. The next build may be incremental when nothing
it has already read can have changed: same SQL, time moving forward by at most a week, no file
reloaded or removed, the tables grown by exactly the new files' rows, and no rows without a RIID
(whose identity resolution can move between contacts). Otherwise it rebuilds in full, and says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

BUILD_SQL = tuple(
    Path(__file__).with_name(name) for name in ("aggregates.sql", "profiles.sql", "merge.sql")
)
# Beyond a week the events crossing window edges are a good part of all events: build in full.
MAX_INCREMENTAL_GAP = timedelta(days=7)


def code_version() -> str:
    """Changes whenever the build SQL (or DuckDB, whose hash() breaks ties) does: aggregates
    stored by another version are not merged."""
    digest = hashlib.sha256(duckdb.__version__.encode())
    for path in BUILD_SQL:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BuildPlan:
    """How the next build runs: `mode` is "full" or "incremental", `reason` says why."""

    mode: str
    reason: str
    previous_as_of: datetime | None = None
    new_files: tuple[str, ...] = ()
    # rows of responsys.events and responsys.contacts, all with a RIID (incremental plans only)
    row_counts: tuple[int, int] | None = None


def sql_string_list(values: tuple[str, ...] | list[str]) -> str:
    """`('a', 'b')` for an IN list (file names come from our own manifest; quotes are doubled)."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


def _table_exists(conn: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?"
            " and database_name = current_database()",
            [schema, name],
        ).fetchall()[0][0]
    )


def _count(conn: duckdb.DuckDBPyConnection, table: str, files: tuple[str, ...] = ()) -> tuple:
    where = f" where source_file in {sql_string_list(files)}" if files else ""
    return conn.execute(
        f"select count(*), count(*) filter (where riid is null) from {table}{where}"
    ).fetchall()[0]


def plan_build(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> BuildPlan:
    """Full or incremental for a build as of `as_of` (naive UTC), and why."""
    row = conn.execute(
        "select as_of, code_version, events, contacts, anonymous from audiences.build_state"
    ).fetchall()
    if not row or not _table_exists(conn, "audiences", "contact_aggregates"):
        return BuildPlan("full", "no previous build")
    previous, version, events, contacts, anonymous = row[0]
    if version != code_version():
        return BuildPlan("full", "the profile SQL changed since the last build")
    # the two hold one row per contact each, and together its aggregates (profiles.py)
    profiles, aggregates = conn.execute(
        "select (select count(*) from audiences.profiles),"
        " (select count(*) from audiences.contact_aggregates)"
    ).fetchall()[0]
    if profiles != aggregates:
        return BuildPlan(
            "full",
            f"audiences.profiles has {profiles} rows and audiences.contact_aggregates "
            f"{aggregates}: one was changed outside a build",
        )
    if as_of < previous:
        return BuildPlan("full", f"as_of is before the last build's ({previous}): a past time")
    if as_of - previous > MAX_INCREMENTAL_GAP:
        return BuildPlan("full", f"the last build ({previous}) is more than 7 days old")
    if anonymous:
        return BuildPlan("full", "rows without a RIID exist: identity resolution is rebuilt")
    changed = conn.execute(
        """
        select b.file_name from audiences.build_files as b
        left join responsys.ingested_files as f
               on f.file_name = b.file_name and f.status = 'loaded'
              and f.ingested_at = b.ingested_at
        where f.file_name is null
        order by 1 limit 1
        """
    ).fetchall()
    if changed:
        return BuildPlan(
            "full", f"file {changed[0][0]} was reloaded or removed since the last build"
        )
    new_files = tuple(
        row[0]
        for row in conn.execute(
            """
            select f.file_name from responsys.ingested_files as f
            where f.status = 'loaded'
              and f.file_name not in (select file_name from audiences.build_files)
            order by 1
            """
        ).fetchall()
    )
    row_counts = []
    for table, before in (("responsys.events", events), ("responsys.contacts", contacts)):
        now = conn.execute(f"select count(*) from {table}").fetchall()[0][0]
        added, anonymous_added = _count(conn, table, new_files) if new_files else (0, 0)
        if now != before + added:
            return BuildPlan(
                "full",
                f"{table} has {now} rows, not {before} + {added} from new files: "
                "rows changed outside the file manifest",
            )
        if anonymous_added:
            return BuildPlan("full", f"new rows in {table} without a RIID")
        row_counts.append(now)
    files = f"{len(new_files)} new file(s)" if new_files else "no new file"
    return BuildPlan(
        "incremental", f"{files} since {previous}", previous, new_files, tuple(row_counts)
    )


def record_build(
    conn: duckdb.DuckDBPyConnection,
    as_of: datetime,
    mode: str,
    reason: str,
    row_counts: tuple[int, int] | None = None,
) -> None:
    """Remember what this build read, for the next plan_build. `row_counts` are the plan's
    (rows without a RIID ruled out there), so an incremental build does not count again."""
    if row_counts is not None:
        events, contacts = row_counts
        anonymous_events = anonymous_contacts = 0
    else:
        events, anonymous_events = _count(conn, "responsys.events")
        contacts, anonymous_contacts = _count(conn, "responsys.contacts")
    conn.execute("delete from audiences.build_state")
    conn.execute(
        "insert into audiences.build_state values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            as_of,
            mode,
            reason,
            code_version(),
            events,
            contacts,
            bool(anonymous_events or anonymous_contacts),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )
    conn.execute("delete from audiences.build_files")
    conn.execute(
        "insert into audiences.build_files select file_name, ingested_at"
        " from responsys.ingested_files where status = 'loaded'"
    )
