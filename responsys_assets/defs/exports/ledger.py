"""The export ledger: every batch is written down before it is sent and settled after.

Outcomes: `pending` (written, call under way), `succeeded`, `failed` (Responsys certainly did
not act: safe to send again), `unknown` (sent, no answer: never resent automatically) and
`released` (an operator decided). A crash leaves `pending`; the next run turns it into
`unknown` for sends that must not repeat (emails, events) and resends it for idempotent merges.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from responsys_assets.warehouse.retry import retried
from responsys_assets.warehouse.transaction import rollback, transaction
from responsys_assets.warehouse.upsert import upsert

NOW = "(now() at time zone 'UTC')"


@contextmanager
def _rows_table(conn: duckdb.DuckDBPyConnection, columns: dict[str, list]) -> Iterator[None]:
    """`columns` as the table `_rows`, for one statement over many rows.

    DuckDB's executemany runs one statement per row (about 5 ms each); a batch of 200 records
    would spend a second on bookkeeping for a 0.1 s API call.
    """
    conn.register("_rows", pa.table(columns))
    try:
        yield
    finally:
        conn.unregister("_rows")


def _insert_rows(conn: duckdb.DuckDBPyConnection, sql: str, columns: dict[str, list]) -> None:
    """Run `sql` (which selects from `_rows`) over many rows in one statement."""
    with _rows_table(conn, columns):
        conn.execute(sql)


LEDGER_COLUMNS = [
    "export", "batch_id", "first_change", "last_change", "records", "attempt", "outcome",
    "error_class", "error", "api_calls", "started_at", "finished_at", "destination",
]  # fmt: skip


def _upsert_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    keys: list[str],
    columns: list[str],
    source: str,
    rows: dict[str, list],
) -> None:
    """`upsert` the many rows `source` selects from `_rows`."""
    with _rows_table(conn, rows):
        upsert(conn, table, keys, columns, source)


@dataclass(frozen=True)
class Batch:
    export: str
    batch_id: str
    records: list  # list[PendingChange]
    destination: dict | None = None  # the names every record goes to (exports/destinations.py)
    pinned: bool = False  # keep each record's destination for a resend (per-record overrides)

    @property
    def first_change(self) -> int:
        return min(r.change_id for r in self.records)

    @property
    def last_change(self) -> int:
        return max(r.change_id for r in self.records)


def make_batches(
    export: str,
    records: list,
    size: int = 200,
    kind: str = "",
    destination: dict | None = None,
    *,
    pinned: bool = False,
) -> list[Batch]:
    batches = []
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        first, last = chunk[0].change_id, chunk[-1].change_id
        batch_id = f"{kind}{first}-{last}-{len(chunk)}"
        ids = [r.record_id for r in chunk]
        if ids != [r.change_id for r in chunk]:
            # UPDATEs: the same members can be updated again with other values; the id must
            # differ, or the new batch would overwrite the old one's ledger row.
            digest = hashlib.sha256(json.dumps(sorted(ids)).encode()).hexdigest()[:8]
            batch_id = f"{batch_id}-{digest}"
        batches.append(Batch(export, batch_id, chunk, destination, pinned))
    return batches


def _destination_json(batch: Batch) -> str | None:
    return json.dumps(batch.destination, sort_keys=True) if batch.destination else None


def _quote(text: str) -> str:
    """A SQL string literal (export names and batch ids come from our own config and code)."""
    return "'" + text.replace("'", "''") + "'"


@retried("recording an export batch before its call")
def begin(conn: duckdb.DuckDBPyConnection, batch: Batch) -> int:
    """Record the batch and its records as pending, committed before any call; returns attempt."""
    conn.execute("begin transaction")
    try:
        row = conn.execute(
            "select attempt from exports.ledger where export = ? and batch_id = ?",
            [batch.export, batch.batch_id],
        ).fetchone()
        attempt = (row[0] if row else 0) + 1
        upsert(
            conn,
            "exports.ledger",
            ["export", "batch_id"],
            LEDGER_COLUMNS,
            f"""
            select ?::varchar as export, ?::varchar as batch_id, ?::bigint as first_change,
                   ?::bigint as last_change, ?::integer as records, ?::integer as attempt,
                   'pending' as outcome, null::varchar as error_class, null::varchar as error,
                   null::integer as api_calls, {NOW} as started_at,
                   null::timestamp as finished_at, ?::json as destination
            """,
            [
                batch.export,
                batch.batch_id,
                batch.first_change,
                batch.last_change,
                len(batch.records),
                attempt,
                _destination_json(batch),
            ],
        )
        rows = {
            "export": [batch.export] * len(batch.records),
            "contact_key": [r.contact_key for r in batch.records],
            "change_id": pa.array([r.record_id for r in batch.records], pa.int64()),
            "change": [r.change for r in batch.records],
            "batch_id": [batch.batch_id] * len(batch.records),
        }
        _upsert_rows(
            conn,
            "exports.sent_records",
            ["export", "contact_key", "change_id"],
            ["export", "contact_key", "change_id", "change", "batch_id"],
            "select export, contact_key, change_id, change, batch_id from _rows",
            rows,
        )
        if batch.pinned and batch.destination:
            # A resend of these records goes to the same place (see 005_destinations.sql).
            _upsert_rows(
                conn,
                "exports.record_destinations",
                ["export", "contact_key", "change_id"],
                ["export", "contact_key", "change_id", "batch_id", "destination"],
                "select export, contact_key, change_id, batch_id, "
                f"{_quote(_destination_json(batch))}::json as destination from _rows",
                rows,
            )
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return attempt


@retried("settling an export batch")
def settle(
    conn: duckdb.DuckDBPyConnection,
    batch: Batch,
    outcome: str,
    *,
    error_class: str | None = None,
    error: str | None = None,
    api_calls: int = 0,
    sent_fields: dict[str, dict] | None = None,
    removed: list[str] | None = None,
    rejected: list[tuple[str, int | None, str, str]] | None = None,
) -> None:
    """Record the outcome; a failed batch's records are released so a later run resends them."""
    conn.execute("begin transaction")
    try:
        conn.execute(
            f"""
            update exports.ledger
            set outcome = ?, error_class = ?, error = ?, api_calls = ?, finished_at = {NOW}
            where export = ? and batch_id = ?
            """,
            [outcome, error_class, error, api_calls, batch.export, batch.batch_id],
        )
        if outcome == "failed":
            # Responsys certainly did not act: the records are resolved afresh next time.
            for table in ("sent_records", "record_destinations"):
                conn.execute(
                    f"delete from exports.{table} where export = ? and batch_id = ?",
                    [batch.export, batch.batch_id],
                )
        if sent_fields:
            destination = _destination_json(batch)
            _upsert_rows(
                conn,
                "exports.last_sent",
                ["export", "contact_key"],
                ["export", "contact_key", "fields", "sent_at", "destination"],
                f"select {_quote(batch.export)} as export, contact_key, fields::json as fields, "
                f"{NOW} as sent_at, "
                f"{_quote(destination) if destination else 'null'}::json as destination "
                "from _rows",
                {
                    "contact_key": list(sent_fields),
                    "fields": [json.dumps(f, default=str) for f in sent_fields.values()],
                },
            )
        if removed:
            _insert_rows(
                conn,
                f"delete from exports.last_sent where export = {_quote(batch.export)} "
                "and contact_key in (select contact_key from _rows)",
                {"contact_key": list(removed)},
            )
        if rejected:
            _insert_rows(
                conn,
                f"insert into exports.rejected_records select {_quote(batch.export)}, "
                f"{_quote(batch.batch_id)}, contact_key, riid, error_class, message, {NOW} "
                "from _rows",
                {
                    "contact_key": [r[0] for r in rejected],
                    "riid": pa.array([r[1] for r in rejected], pa.int64()),
                    "error_class": [r[2] for r in rejected],
                    "message": [r[3] for r in rejected],
                },
            )
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise


@retried("settling interrupted export batches")
def recover_interrupted(conn: duckdb.DuckDBPyConnection, export: str, *, idempotent: bool) -> int:
    """Settle batches a crash left `pending`: resend idempotent ones, park the others."""
    with transaction(conn):
        return _recover_interrupted(conn, export, idempotent=idempotent)


def _recover_interrupted(conn: duckdb.DuckDBPyConnection, export: str, *, idempotent: bool) -> int:
    rows = conn.execute(
        "select batch_id from exports.ledger where export = ? and outcome = 'pending'", [export]
    ).fetchall()
    for (batch_id,) in rows:
        if idempotent:
            conn.execute(
                "update exports.ledger set outcome = 'failed', error_class = 'interrupted' "
                "where export = ? and batch_id = ?",
                [export, batch_id],
            )
            conn.execute(
                "delete from exports.sent_records where export = ? and batch_id = ?",
                [export, batch_id],
            )
        else:
            conn.execute(
                "update exports.ledger set outcome = 'unknown', error_class = 'interrupted', "
                "error = 'the run stopped while this batch was being sent; it may or may not "
                "have reached Responsys' where export = ? and batch_id = ?",
                [export, batch_id],
            )
    return len(rows)


def unknown_batches(conn: duckdb.DuckDBPyConnection, export: str | None = None) -> list[tuple]:
    sql = "select export, batch_id, records, error from exports.ledger where outcome = 'unknown'"
    params: list = []
    if export:
        sql += " and export = ?"
        params.append(export)
    return conn.execute(sql + " order by export, batch_id", params).fetchall()


@retried("releasing an export batch")
def release(conn: duckdb.DuckDBPyConnection, export: str, batch_id: str, *, resend: bool) -> bool:
    """Operator decision on an `unknown` batch: resend it, or accept it as delivered."""
    with transaction(conn):
        return _release(conn, export, batch_id, resend=resend)


def _release(conn: duckdb.DuckDBPyConnection, export: str, batch_id: str, *, resend: bool) -> bool:
    row = conn.execute(
        "select outcome, first_change from exports.ledger where export = ? and batch_id = ?",
        [export, batch_id],
    ).fetchone()
    if not row or row[0] != "unknown":
        return False
    conn.execute(
        "update exports.ledger set outcome = ? where export = ? and batch_id = ?",
        ["failed" if resend else "released", export, batch_id],
    )
    if resend:
        conn.execute(
            "delete from exports.sent_records where export = ? and batch_id = ?", [export, batch_id]
        )
        # The watermark may already be past these changes: move it back so the next run sees
        # them again (sent_records keeps everything else from going out twice).
        conn.execute(
            "update exports.watermarks set last_change_id = least(last_change_id, ?) "
            "where export = ?",
            [row[1] - 1, export],
        )
    return True
