"""What an export still owes Responsys: the latest unsent audience change per contact.

Reads `audiences.membership_changes` after the export's watermark, keeps each contact's latest
change, and drops it when that change already went out (`exports.sent_records`). A contact who
entered and left before we sent anything therefore yields only the exit, and a resumed run never
sees a change twice.

UPDATEs (custom events) are not membership changes: `pending_updates` finds current members
whose watched fields differ from what was last sent to them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from responsys_assets.warehouse.retry import retried
from responsys_assets.warehouse.upsert import upsert


@dataclass
class PendingChange:
    change_id: int  # the membership change; for an UPDATE, the ENTER that made them a member
    contact_key: str
    change: str  # ENTER | EXIT | UPDATE
    suppressed: bool
    profile: dict = field(default_factory=dict)  # profile + score columns (empty if gone)
    update_id: int | None = None  # an UPDATE's own id (see update_id())

    @property
    def record_id(self) -> int:
        """The key of this record in exports.sent_records (with export and contact_key)."""
        return self.change_id if self.update_id is None else self.update_id


def update_id(contact_key: str, entry_change_id: int, fields: dict) -> int:
    """A negative id for the UPDATE that sends `fields` to a member during one membership.

    Membership change ids are positive, so an UPDATE never collides with an ENTER or EXIT in
    exports.sent_records. The same values for the same membership give the same id: an UPDATE
    already begun (even if its outcome is unknown) is never proposed again.
    """
    text = json.dumps([contact_key, entry_change_id, fields], sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).digest()
    return -(int.from_bytes(digest[:8], "big") >> 2) - 1


def watermark(conn: duckdb.DuckDBPyConnection, export: str) -> int | None:
    row = conn.execute(
        "select last_change_id from exports.watermarks where export = ?", [export]
    ).fetchone()
    return row[0] if row else None


@retried("moving an export's watermark")
def set_watermark(conn: duckdb.DuckDBPyConnection, export: str, change_id: int) -> None:
    upsert(
        conn,
        "exports.watermarks",
        ["export"],
        ["export", "last_change_id", "updated_at"],
        "select ?::varchar as export, ?::bigint as last_change_id,"
        " (now() at time zone 'UTC') as updated_at",
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


def previously_sent(
    conn: duckdb.DuckDBPyConnection, export: str, keys: Collection[str] | None = None
) -> dict[str, dict]:
    """contact_key -> fields last written, for exits, UPDATEs and dry-run diffs; only for `keys`
    when given (a million-member list is not loaded into Python for a run with no changes)."""
    if keys is None:
        rows = conn.execute(
            "select contact_key, fields from exports.last_sent where export = ?", [export]
        ).fetchall()
    elif not keys:
        return {}
    else:
        # An Arrow table, not a list parameter: DuckDB 1.5 binds a 200k-element list in ~12 s.
        conn.register("_previously_sent_keys", pa.table({"contact_key": list(keys)}))
        try:
            rows = conn.execute(
                "select contact_key, fields from exports.last_sent where export = ? and "
                "contact_key in (select contact_key from _previously_sent_keys)",
                [export],
            ).fetchall()
        finally:
            conn.unregister("_previously_sent_keys")
    return {key: json.loads(fields) if fields else {} for key, fields in rows}


def sent_destinations(conn: duckdb.DuckDBPyConnection, export: str) -> dict[str, dict]:
    """contact_key -> the destination of the record's last write (where exits and UPDATEs go).

    Contacts last written before destinations were recorded are left out: they went to the
    configured destination.
    """
    rows = conn.execute(
        "select contact_key, destination from exports.last_sent "
        "where export = ? and destination is not null",
        [export],
    ).fetchall()
    return {key: json.loads(destination) for key, destination in rows}


def pinned_destinations(
    conn: duckdb.DuckDBPyConnection, export: str
) -> dict[tuple[str, int], dict]:
    """(contact_key, record_id) -> destination, for records that are to be sent again.

    A record whose batch may have reached Responsys (interrupted, or released for resend) left
    its destination in exports.record_destinations but no longer has a sent_records row; the
    resend goes to that same destination, whatever the profile says now.
    """
    rows = conn.execute(
        """
        select d.contact_key, d.change_id, d.destination
        from exports.record_destinations d
        where d.export = $export
          and not exists (
              select 1 from exports.sent_records s
              where s.export = d.export and s.contact_key = d.contact_key
                and s.change_id = d.change_id)
        """,
        {"export": export},
    ).fetchall()
    return {(key, change_id): json.loads(destination) for key, change_id, destination in rows}


def pending_updates(
    conn: duckdb.DuckDBPyConnection,
    export: str,
    audience: str,
    upto: int,
    *,
    watched: Callable[[PendingChange], dict],
    before: dict[str, dict],
    busy: Collection[str],
) -> list[PendingChange]:
    """Current members whose `watched` fields differ from what was last sent to them.

    A member is someone whose latest change up to `upto` is an ENTER and who has a last_sent
    row (their entry reached Responsys). Contacts in `busy` (a pending ENTER or EXIT this run)
    are left to that change. `suppressed` is the profile's current consent, so the runner's
    consent filter keeps UPDATEs from suppressed contacts. An UPDATE already recorded in
    exports.sent_records (sent, parked with an unknown outcome, or settled without a call) is
    not proposed again until the values change once more.
    """
    cursor = conn.execute(
        """
        with latest as (
            select c.*, row_number() over (partition by c.contact_key order by c.change_id desc) rn
            from audiences.membership_changes c
            where c.audience = $audience and c.change_id <= $upto
        )
        select l.change_id, l.contact_key, coalesce(p.suppressed, true),
               p.*, s.* exclude (contact_key, as_of)
        from latest l
        join exports.last_sent ls on ls.export = $export and ls.contact_key = l.contact_key
        left join audiences.profiles p on p.contact_key = l.contact_key
        left join audiences.scores s on s.contact_key = l.contact_key
        where l.rn = 1 and l.change = 'ENTER'
        order by l.change_id
        """,
        {"audience": audience, "upto": upto, "export": export},
    )
    names = [d[0] for d in cursor.description]
    candidates: list[PendingChange] = []
    for row in cursor.fetchall():
        if row[1] in busy:
            continue
        profile = dict(zip(names[3:], row[3:], strict=True))
        if profile.get("contact_key") is None:
            profile = {}
        change = PendingChange(row[0], row[1], "UPDATE", bool(row[2]), profile)
        fields = watched(change)
        last = before.get(change.contact_key, {})
        if all(last.get(name) == value for name, value in fields.items()):
            continue
        change.update_id = update_id(change.contact_key, change.change_id, fields)
        candidates.append(change)
    if not candidates:
        return []
    conn.register(
        "_updates",
        pa.table(
            {
                "contact_key": [c.contact_key for c in candidates],
                "change_id": pa.array([c.update_id for c in candidates], pa.int64()),
            }
        ),
    )
    try:
        begun = set(
            conn.execute(
                """
                select s.contact_key, s.change_id from exports.sent_records s
                join _updates u on u.contact_key = s.contact_key and u.change_id = s.change_id
                where s.export = ?
                """,
                [export],
            ).fetchall()
        )
    finally:
        conn.unregister("_updates")
    return [c for c in candidates if (c.contact_key, c.update_id) not in begun]
