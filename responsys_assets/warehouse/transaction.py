"""Transactions whose commit may already have rolled them back.

A DuckLake commit that loses a race fails and ends the transaction itself; a plain `rollback`
after it would raise "no transaction is active" and hide the conflict (which
`retry.with_retries` needs to see). On a DuckDB file the two behave the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if the failure left one open."""
    try:
        conn.execute("rollback")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """`begin` ... `commit`; on any error roll back (if still open) and re-raise."""
    conn.execute("begin transaction")
    try:
        yield conn
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
