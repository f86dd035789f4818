"""Reading back what an export wrote, for reconciliation (`reconcile.py` judges).

Expectations come from the warehouse: `exports.last_sent` holds the fields last written per
record; exits come from `exports.sent_records` (an exit either deleted the record, or marked it,
e.g. IN_AUDIENCE = "0"). Records are read with the Retrieve APIs, which have their own, low,
per-minute limits (100/min in test accounts): the client paces them, and the sample is bounded
by `reconcile.sample` (at most 100).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import duckdb

from responsys_assets.config import (
    PetExport,
    ProfileListExport,
    SupplementalTableExport,
)
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.defs.exports.handlers.supplemental_table import MEMBER_COLUMN
from responsys_assets.defs.exports.reconcile import (
    FIELD_DIFFERS,
    MATCH,
    MISSING,
    STILL_PRESENT,
    Comparison,
    Expectation,
    ReconcileResult,
    choose_sample,
    mask,
    reconcile,
)
from responsys_assets.warehouse.retry import retried
from responsys_assets.warehouse.upsert import upsert

SUPPORTED_TYPES = frozenset({"profile_list", "pet", "supplemental_table"})
# Profile-list identifiers we can look a member up by, best first: (column, query attribute).
_LIST_KEYS = (("RIID_", "r"), ("CUSTOMER_ID_", "c"), ("EMAIL_ADDRESS_", "e"))
_PROFILE_KEYS = {"RIID_": "riid", "CUSTOMER_ID_": "customer_id", "EMAIL_ADDRESS_": "email"}


def reconciles(export) -> bool:
    """Whether this export reads back what it wrote (type supported and sample above 0)."""
    return export.type in SUPPORTED_TYPES and export.reconcile.sample > 0


def warehouse_now(conn: duckdb.DuckDBPyConnection) -> datetime:
    """The warehouse clock (UTC), the one the ledger stamps batches with."""
    return conn.execute("select now() at time zone 'UTC'").fetchone()[0]


# --------------------------------------------------------------------------- expectations


def _destination(raw) -> dict:
    """Where a record was written when the export overrides its destination per record."""
    if not raw:
        return {}
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _sent_records(
    conn, export_name: str, since: datetime, size: int, seed: str
) -> list[tuple[str, dict, bool, dict]]:
    """(contact_key, fields, just_sent, destination) of the records in exports.last_sent that
    come first in the sample order (choose_sample's): at most `size`, chosen in SQL, so a
    million-member list costs one bounded query, not a million rows in Python."""
    rows = conn.execute(
        "select contact_key, fields, sent_at >= $since, destination from exports.last_sent "
        "where export = $export "
        "order by sent_at >= $since desc, sha256($seed || '/' || contact_key) limit $size",
        {"since": since, "export": export_name, "seed": seed, "size": size},
    ).fetchall()
    return [
        (key, json.loads(f) if f else {}, bool(new), _destination(d)) for key, f, new, d in rows
    ]


def _exits(
    conn, export_name: str, since: datetime, size: int, seed: str
) -> list[tuple[PendingChange, bool, dict]]:
    """Exits that reached Responsys and are each contact's latest sent change, with the contact's
    profile as it is now (for its identifiers); the first `size` in the sample order."""
    cursor = conn.execute(
        """
        with latest as (
            select s.*, row_number() over (partition by s.contact_key order by s.change_id desc) rn
            from exports.sent_records s where s.export = $export
        )
        select s.change_id, s.contact_key, l.finished_at >= $since,
               (select d.destination from exports.record_destinations d
                where d.export = s.export and d.contact_key = s.contact_key
                  and d.change_id = s.change_id),
               p.*, sc.* exclude (contact_key, as_of)
        from latest s
        join exports.ledger l on l.export = s.export and l.batch_id = s.batch_id
        left join audiences.profiles p on p.contact_key = s.contact_key
        left join audiences.scores sc on sc.contact_key = s.contact_key
        where s.rn = 1 and s.change = 'EXIT' and l.outcome in ('succeeded', 'released')
          and s.batch_id not like 'nocall-%'
          and not exists (select 1 from exports.last_sent t
                          where t.export = s.export and t.contact_key = s.contact_key)
          and not exists (select 1 from exports.rejected_records r where r.export = s.export
                          and r.batch_id = s.batch_id and r.contact_key = s.contact_key)
        order by l.finished_at >= $since desc, sha256($seed || '/' || s.contact_key)
        limit $size
        """,
        {"export": export_name, "since": since, "seed": seed, "size": size},
    )
    names = [d[0] for d in cursor.description]
    exits = []
    for row in cursor.fetchall():
        profile = dict(zip(names[4:], row[4:], strict=True))
        if profile.get("contact_key") is None:
            profile = {}
        change = PendingChange(row[0], row[1], "EXIT", False, profile)
        exits.append((change, bool(row[2]), _destination(row[3])))
    return exits


def _list_lookup(values: dict) -> tuple[str, str, str] | None:
    """(column, query attribute, id) of the best identifier present, or None."""
    for column, attribute in _LIST_KEYS:
        if values.get(column) not in (None, ""):
            return column, attribute, str(values[column])
    return None


def _label(column: str, value: str) -> str:
    return f"{column} {mask(value)}"


def expectations(conn, export, handler, since: datetime, size: int, seed: str) -> list[Expectation]:
    """The records the export's last writes say Responsys should (or should no longer) hold,
    first in the sample order; twice the sample, as a few may have nothing to compare."""
    out: list[Expectation] = []
    rows = _sent_records(conn, export.name, since, 2 * size, seed)
    for key, fields, just_sent, destination in rows:
        expected = _entry_expectation(export, key, fields, just_sent, destination)
        if expected:
            out.append(expected)
    for change, just_sent, destination in _exits(conn, export.name, since, 2 * size, seed):
        expected = _exit_expectation(export, handler, change, just_sent, destination)
        if expected:
            out.append(expected)
    return out


def _entry_expectation(export, key, fields, just_sent, destination) -> Expectation | None:
    if isinstance(export, SupplementalTableExport):
        pk = [(column, fields.get(column)) for column in export.primary_key]
        if any(value in (None, "") for _, value in pk):
            return None
        label = ", ".join(f"{c}={mask(str(v))}" for c, v in pk)
        return Expectation(key, label, (destination, pk), fields, just_sent)
    found = _list_lookup(fields)
    if found is None:
        return None
    column, attribute, ident = found
    if isinstance(export, PetExport) and column != "RIID_":
        return None
    if isinstance(export, ProfileListExport) and export.merge_rule.update_on_match == "NO_UPDATE":
        # Existing members keep their values under NO_UPDATE: only presence can be checked.
        fields = {column: ident}
    return Expectation(
        key, _label(column, ident), (destination, attribute, ident), fields, just_sent
    )


def _exit_expectation(export, handler, change, just_sent, destination) -> Expectation | None:
    """Deleted exits must be absent; marked exits must carry the mark (only the mark and the key
    are compared: the other values were written long ago)."""
    written = handler.fields_for(change)
    if isinstance(export, SupplementalTableExport):
        pk = [(column, written.get(column)) for column in export.primary_key]
        if any(value in (None, "") for _, value in pk):
            return None
        label = ", ".join(f"{c}={mask(str(v))}" for c, v in pk)
        mark = {**dict(pk), MEMBER_COLUMN: written[MEMBER_COLUMN]}
        return Expectation(change.contact_key, label, (destination, pk), mark, just_sent)
    profile = {column: change.profile.get(source) for column, source in _PROFILE_KEYS.items()}
    if profile["RIID_"] in (None, "") and change.contact_key.startswith("riid:"):
        profile["RIID_"] = change.contact_key.split(":", 1)[1]
    found = _list_lookup(profile)
    if found is None:
        return None
    column, attribute, ident = found
    lookup = (destination, attribute, ident)
    label = _label(column, ident)
    if isinstance(export, PetExport):
        if column != "RIID_":
            return None
        if export.mode == "fields":
            return Expectation(change.contact_key, label, lookup, None, just_sent)
        mark = {k: v for k, v in written.items() if k.upper() != "RIID_"}  # the 1/0 column
        return Expectation(change.contact_key, label, lookup, mark, just_sent)
    if export.on_exit == "delete":
        return Expectation(change.contact_key, label, lookup, None, just_sent)
    if export.on_exit == "clear_column" and export.membership_column:
        mark = {export.membership_column: written.get(export.membership_column, "")}
        return Expectation(change.contact_key, label, lookup, mark, just_sent)
    return None


# --------------------------------------------------------------------------- reading


def fetcher(client, export) -> Callable[[Expectation], dict | None]:
    """Fetch one expected record from Responsys (None when it is not there)."""

    def names(expectation: Expectation, key_column: str) -> list[str]:
        return list(expectation.fields) if expectation.fields else [key_column]

    if isinstance(export, SupplementalTableExport):

        def fetch_row(expectation: Expectation) -> dict | None:
            destination, pk = expectation.lookup
            return client.retrieve_supplemental_row(
                destination.get("folder", export.folder),
                destination.get("table", export.table),
                pk,
                names(expectation, pk[0][0]),
            )

        return fetch_row

    if isinstance(export, PetExport):

        def fetch_pet(expectation: Expectation) -> dict | None:
            destination, attribute, ident = expectation.lookup
            return client.retrieve_pet_member(
                destination.get("list", export.list),
                destination.get("pet", export.pet),
                attribute,
                ident,
                names(expectation, "RIID_"),
            )

        return fetch_pet

    def fetch_member(expectation: Expectation) -> dict | None:
        destination, attribute, ident = expectation.lookup
        key_column = next(c for c, a in _LIST_KEYS if a == attribute)
        return client.retrieve_list_member(
            destination.get("list", export.list), attribute, ident, names(expectation, key_column)
        )

    return fetch_member


def comparison_for(export) -> Comparison:
    if isinstance(export, SupplementalTableExport):
        return Comparison(names_case_sensitive=True)
    if isinstance(export, ProfileListExport):
        rule = export.merge_rule
        status = {rule.optin_value: "I", rule.optout_value: "O"}
        return Comparison(stored_as={"EMAIL_PERMISSION_STATUS_": status})
    return Comparison()


def read_back(conn, client, export, handler, *, since: datetime, seed: str) -> ReconcileResult:
    """Sample the export's records (those written since `since` first), read them back, judge."""
    size = export.reconcile.sample
    sample = choose_sample(expectations(conn, export, handler, since, size, seed), size, seed)
    return reconcile(
        export.name, sample, fetcher(client, export), comparison_for(export), sample_size=size
    )


@retried("recording a read-back")
def record(conn: duckdb.DuckDBPyConnection, result: ReconcileResult, run_id: str) -> None:
    """Keep the outcome in exports.reconciliations (one row per export run)."""
    counts = result.counts()
    upsert(
        conn,
        "exports.reconciliations",
        ["export", "run_id"],
        [
            "export",
            "run_id",
            "checked_at",
            "sample_size",
            "checked",
            "matched",
            "missing",
            "differing",
            "still_present",
            "unread",
            "stopped_by",
            "details",
        ],  # fmt: skip
        "select ?::varchar as export, ?::varchar as run_id,"
        " (now() at time zone 'UTC') as checked_at, ?::integer as sample_size,"
        " ?::integer as checked, ?::integer as matched, ?::integer as missing,"
        " ?::integer as differing, ?::integer as still_present, ?::integer as unread,"
        " ?::varchar as stopped_by, ?::json as details",
        [
            result.export,
            run_id,
            result.sample_size,
            result.checked,
            counts[MATCH],
            counts[MISSING],
            counts[FIELD_DIFFERS],
            counts[STILL_PRESENT],
            result.unread,
            result.stopped_by,
            json.dumps(result.details()),
        ],
    )
