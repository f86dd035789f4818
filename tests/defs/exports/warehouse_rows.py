"""A small real DuckDB warehouse for export tests: every migration applied, rows inserted by hand.

The audiences code that normally fills these tables is built elsewhere, so tests write profiles,
scores and membership changes directly, filling NOT NULL columns they do not care about.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from responsys_assets.settings import Warehouse
from responsys_assets.warehouse import apply_migrations, open_connection

AS_OF = "2025-01-15 12:00:00"
_DEFAULTS = {"BIGINT": 0, "INTEGER": 0, "BOOLEAN": False, "TIMESTAMP": AS_OF, "VARCHAR": ""}


def sha256(text: str) -> str:
    """The hex SHA-256 Responsys matches as EMAIL_SHA256_HASH_."""
    return hashlib.sha256(text.encode()).hexdigest()


def open_warehouse(where: Warehouse | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB file (a path) or any warehouse, every migration applied."""
    conn = open_connection(where)
    apply_migrations(conn)
    return conn


def _insert(conn: duckdb.DuckDBPyConnection, table: str, values: dict) -> None:
    """Insert one row: `values`, plus a neutral value for every other NOT NULL column."""
    schema, name = table.split(".")
    required = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? and is_nullable = 'NO'",
        [schema, name],
    ).fetchall()
    row = {column: _DEFAULTS[kind] for column, kind in required if column not in values}
    row.update(values)
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"insert into {table} ({columns}) values ({marks})", list(row.values()))


def add_contact(
    conn: duckdb.DuckDBPyConnection,
    contact_key: str,
    *,
    riid: int | None = None,
    email: str | None = None,
    email_sha256: str | None = None,
    customer_id: str | None = None,
    suppressed: bool = False,
    recency_score: int = 50,
) -> None:
    """A profile and its scores."""
    _insert(
        conn,
        "audiences.profiles",
        {
            "contact_key": contact_key,
            "riid": riid,
            "email": email,
            "email_sha256": email_sha256,
            "customer_id": customer_id,
            "suppressed": suppressed,
        },
    )
    _insert(
        conn,
        "audiences.scores",
        {"contact_key": contact_key, "engagement_bucket": "warm", "recency_score": recency_score},
    )


def add_change(
    conn: duckdb.DuckDBPyConnection,
    audience: str,
    contact_key: str,
    change: str,
    *,
    suppressed: bool = False,
) -> int:
    """Append an ENTER/EXIT to audiences.membership_changes; returns its change_id."""
    change_id = conn.execute(
        "select coalesce(max(change_id), 0) + 1 from audiences.membership_changes"
    ).fetchone()[0]
    _insert(
        conn,
        "audiences.membership_changes",
        {
            "change_id": change_id,
            "audience": audience,
            "contact_key": contact_key,
            "change": change,
            "changed_at": AS_OF,
            "evaluation_id": 1,
            "suppressed": suppressed,
        },
    )
    return change_id
