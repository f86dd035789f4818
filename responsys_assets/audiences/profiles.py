"""Contact profiles as of a point in time: identity, event counts, permission and suppression.

The SQL lives in profiles.sql; column meanings are in docs/scores.md. Profiles are rebuilt whole
for an evaluation time `as_of`, so recomputing a past day gives the same rows however many later
events were loaded since.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

PROFILES_SQL = Path(__file__).with_name("profiles.sql")


def normalise_as_of(as_of: datetime) -> datetime:
    """The warehouse stores naive UTC timestamps: convert an aware time, keep a naive one."""
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return as_of


def timestamp_literal(as_of: datetime) -> str:
    """A DuckDB TIMESTAMP literal; built from a datetime, so it is safe to place into SQL."""
    return f"TIMESTAMP '{normalise_as_of(as_of).isoformat(sep=' ', timespec='microseconds')}'"


def render_sql(path: Path, as_of: datetime) -> str:
    return path.read_text(encoding="utf-8").replace("{as_of}", timestamp_literal(as_of))


def build_profiles(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    """Rebuild audiences.profiles from the events and contacts known at `as_of`; returns rows."""
    conn.execute(render_sql(PROFILES_SQL, as_of))
    return conn.execute("select count(*) from audiences.profiles").fetchall()[0][0]
