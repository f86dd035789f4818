"""Contact profiles as of a point in time: identity, event counts, permission and suppression.

Two steps, both SQL: aggregates.sql turns events and contacts-file rows into one row of sums and
maxima per contact, and profiles.sql derives the profile columns from those. Profiles keep the
sums and maxima they show; audiences.contact_aggregates keeps the rest (latest email and
customer id, day/week masks, permission facts) for the next incremental build. A full build
reads every event once; incremental.py merges only what changed. Column meanings are in
docs/scores.md. Only facts at or before `as_of` count, so recomputing a past day gives the same
rows however many later events were loaded since.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from responsys_assets.defs.audiences.build_state import record_build

AGGREGATES_SQL = Path(__file__).with_name("aggregates.sql")
PROFILES_SQL = Path(__file__).with_name("profiles.sql")
# Aggregate columns audiences.profiles carries unchanged. They are stored there only:
# audiences.contact_aggregates keeps the rest, so an incremental build writes each changed value
# once (DuckDB's commit rewrites every column with a changed value, in every row group).
AGGREGATES_IN_PROFILES = (
    "riid",
    "first_seen_at",
    "last_seen_at",
    "sends",
    "opens",
    "clicks",
    "bounces",
    "conversions",
    "complaints",
    "opens_7d",
    "opens_30d",
    "opens_90d",
    "clicks_7d",
    "clicks_30d",
    "clicks_90d",
    "conversions_30d",
    "conversions_90d",
    "engagements_14d",
    "engagements_prev_14d",
    "last_sent_at",
    "last_open_at",
    "last_click_at",
    "last_conversion_at",
    "last_bounce_at",
    "last_hard_bounce_at",
    "last_complaint_at",
    "prior_last_engaged_at",
    "prior_engagements_30d",
)


def normalise_as_of(as_of: datetime) -> datetime:
    """The warehouse stores naive UTC timestamps: convert an aware time, keep a naive one."""
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return as_of


def timestamp_literal(as_of: datetime) -> str:
    """A DuckDB TIMESTAMP literal; built from a datetime, so it is safe to place into SQL."""
    return f"TIMESTAMP '{normalise_as_of(as_of).isoformat(sep=' ', timespec='microseconds')}'"


def render_sql(path: Path, as_of: datetime, **names: str) -> str:
    """The SQL file with {as_of} and the relation names in `names` filled in (ours, never input)."""
    sql = path.read_text(encoding="utf-8").replace("{as_of}", timestamp_literal(as_of))
    for key, value in names.items():
        sql = sql.replace("{" + key + "}", value)
    return sql


def aggregate_contacts(
    conn: duckdb.DuckDBPyConnection,
    as_of: datetime,
    *,
    events: str = "responsys.events",
    contacts: str = "responsys.contacts",
    target: str = "_contact_aggregates",
) -> None:
    """Per-contact aggregates as of `as_of` of the rows in `events` and `contacts` into `target`."""
    conn.execute(render_sql(AGGREGATES_SQL, as_of, events=events, contacts=contacts, target=target))


def profile_rows_sql(as_of: datetime, aggregates: str) -> str:
    """A SELECT of profile rows as of `as_of` for the contacts in the relation `aggregates`."""
    return render_sql(PROFILES_SQL, as_of, aggregates=aggregates)


def stored_aggregates_sql(keys: str) -> str:
    """Every aggregate column of the contacts in the relation `keys` (one with contact_key), as
    stored: audiences.contact_aggregates with the columns it leaves to audiences.profiles."""
    copied = ", ".join(f"p.{column}" for column in AGGREGATES_IN_PROFILES)
    return (
        f"(select a.*, {copied} from audiences.contact_aggregates as a"
        " join audiences.profiles as p using (contact_key)"
        f" where a.contact_key in (select contact_key from {keys}))"
    )


def build_profiles(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    """Rebuild audiences.profiles in full from the events and contacts known at `as_of`."""
    aggregate_contacts(conn, as_of)
    conn.execute(
        "create or replace table audiences.profiles as "
        + profile_rows_sql(as_of, "_contact_aggregates")
    )
    conn.execute(
        "create or replace table audiences.contact_aggregates as select * exclude ("
        + ", ".join(AGGREGATES_IN_PROFILES)
        + ") from _contact_aggregates"
    )
    conn.execute("drop table _contact_aggregates")
    record_build(conn, normalise_as_of(as_of), "full", "a full build was asked for")
    return conn.execute("select count(*) from audiences.profiles").fetchall()[0][0]
