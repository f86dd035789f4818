"""Roll back a transaction whose commit may already have rolled it back.

A DuckLake commit that loses a race fails and ends the transaction itself; a plain `rollback`
after it would raise "no transaction is active" and hide the conflict (which
`retry.with_retries` needs to see). On a DuckDB file the two behave the same.
"""

from __future__ import annotations

import duckdb


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if the failure left one open."""
    try:
        conn.execute("rollback")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise
