"""A real DuckDB warehouse with hand-built events and contacts, for the audiences tests."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from responsys_assets.settings import FileWarehouse, Warehouse
from responsys_assets.warehouse import apply_migrations, open_connection

T0 = datetime(2024, 6, 1, 12, 0, 0)  # the tests' "now"
_lines = itertools.count(2)


def make_warehouse(where: Path | Warehouse) -> duckdb.DuckDBPyConnection:
    """A fresh warehouse with every migration applied: a file in folder `where`, or `where`."""
    if isinstance(where, Path):
        where = FileWarehouse(where / "w.duckdb")
    conn = open_connection(where)
    apply_migrations(conn)
    return conn


def days_ago(days: float, *, seconds: float = 0, now: datetime = T0) -> datetime:
    return now - timedelta(days=days, seconds=seconds)


def add_event(
    conn: duckdb.DuckDBPyConnection,
    event_type: str,
    at: datetime,
    *,
    riid: int | None = None,
    customer_id: str | None = None,
    email: str | None = None,
    attributes: dict | None = None,
) -> None:
    conn.execute(
        "insert into responsys.events (event_type, riid, customer_id, email, account_id,"
        " event_captured_at, event_stored_at, attributes, source_file, source_line)"
        " values (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
        [
            event_type,
            riid,
            customer_id,
            email,
            at,
            at,
            json.dumps(attributes or {}),
            f"1_{event_type}_test.txt",
            next(_lines),
        ],
    )


def add_events(
    conn: duckdb.DuckDBPyConnection, events: list[tuple[str, datetime, int | None, str | None]]
) -> None:
    """Many (event_type, captured_at, riid, email) rows in one statement (executemany is slow)."""
    columns = list(zip(*events, strict=True))
    conn.execute(
        "insert into responsys.events (event_type, event_captured_at, riid, email, source_file,"
        " source_line) select unnest($1), unnest($2), unnest($3), unnest($4), 'bulk.txt', 1",
        [list(column) for column in columns],
    )


def add_contact(
    conn: duckdb.DuckDBPyConnection,
    *,
    riid: int | None = None,
    customer_id: str | None = None,
    email: str | None = None,
    permission: str | None = None,
    modified_at: datetime,
) -> None:
    conn.execute(
        "insert into responsys.contacts (riid, customer_id, email, email_permission_status,"
        " modified_at, source_file, source_line) values (?, ?, ?, ?, ?, '1_CONTACTS_test.txt', ?)",
        [riid, customer_id, email, permission, modified_at, next(_lines)],
    )


def profile(conn: duckdb.DuckDBPyConnection, contact_key: str) -> dict:
    """One row of profiles joined with scores, as a dict."""
    result = conn.execute(
        "select * from audiences.profiles join audiences.scores using (contact_key, as_of)"
        " where contact_key = ?",
        [contact_key],
    )
    names = [column[0] for column in result.description]
    rows = result.fetchall()
    assert len(rows) == 1, f"expected one profile {contact_key!r}, got {len(rows)}"
    return dict(zip(names, rows[0], strict=True))
