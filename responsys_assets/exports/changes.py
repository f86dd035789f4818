"""What an export still owes Responsys: the latest unsent audience change per contact.

Reads `audiences.membership_changes` after the export's watermark, keeps each contact's latest
change, and drops it when that change already went out (`exports.sent_records`). A contact who
entered and left before we sent anything therefore yields only the exit, and a resumed run never
sees a change twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb


@dataclass
class PendingChange:
    change_id: int
    contact_key: str
    change: str  # ENTER | EXIT
    suppressed: bool
    profile: dict = field(default_factory=dict)  # profile + score columns (empty if gone)


def watermark(conn: duckdb.DuckDBPyConnection, export: str) -> int | None:
    row = conn.execute(
        "select last_change_id from exports.watermarks where export = ?", [export]
    ).fetchone()
    return row[0] if row else None


def set_watermark(conn: duckdb.DuckDBPyConnection, export: str, change_id: int) -> None:
    conn.execute(
        """
        insert or replace into exports.watermarks values (?, ?, (now() at time zone 'UTC'))
        """,
        [export, change_id],
    )


def latest_change_id(conn: duckdb.DuckDBPyConnection, audience: str) -> int:
    row = conn.execute(
        "select coalesce(max(change_id), 0) from audiences.membership_changes where audience = ?",
        [audience],
    ).fetchone()
    return int(row[0])


def pending_changes(
    conn: duckdb.DuckDBPyConnection,
    export: str,
    audience: str,
    after: int,
    upto: int,
) -> list[PendingChange]:
    """Latest change per contact in (after, upto], minus what was already sent."""
    cursor = conn.execute(
        """
        with latest as (
            select c.*, row_number() over (partition by c.contact_key order by c.change_id desc) rn
            from audiences.membership_changes c
            where c.audience = $audience and c.change_id > $after and c.change_id <= $upto
        )
        select l.change_id, l.contact_key, l.change, coalesce(l.suppressed, false),
               p.*, s.* exclude (contact_key, as_of)
        from latest l
        left join audiences.profiles p on p.contact_key = l.contact_key
        left join audiences.scores s on s.contact_key = l.contact_key
        where l.rn = 1
          and not exists (
              select 1 from exports.sent_records s
              where s.export = $export and s.contact_key = l.contact_key
                and s.change_id = l.change_id)
        order by l.change_id
        """,
        {"audience": audience, "after": after, "upto": upto, "export": export},
    )
    names = [d[0] for d in cursor.description]
    pending = []
    for row in cursor.fetchall():
        profile = dict(zip(names[4:], row[4:], strict=True))
        if profile.get("contact_key") is None:
            profile = {}
        pending.append(PendingChange(row[0], row[1], row[2], bool(row[3]), profile))
    return pending


def previously_sent(conn: duckdb.DuckDBPyConnection, export: str) -> dict[str, dict]:
    """contact_key -> fields last written, for exits and dry-run diffs."""
    import json

    rows = conn.execute(
        "select contact_key, fields from exports.last_sent where export = ?", [export]
    ).fetchall()
    return {key: json.loads(fields) if fields else {} for key, fields in rows}
