"""The warehouse contract: numbered, idempotent SQL migrations shipped inside the package.

They are read through `importlib.resources`, so an installed wheel migrates exactly as a
source checkout does.
"""

import hashlib
import re
from importlib import resources
from importlib.resources.abc import Traversable

import duckdb

from responsys_assets.warehouse.retry import with_retries
from responsys_assets.warehouse.transaction import rollback

MIGRATIONS = resources.files(__package__) / "migrations"


_NAME = re.compile(r"[0-9]{3}_\w+\.sql")


def migration_files(directory: Traversable = MIGRATIONS) -> list[Traversable]:
    """The numbered migrations in `directory` (a folder or package resource), in order."""
    return sorted(
        (entry for entry in directory.iterdir() if _NAME.fullmatch(entry.name)),
        key=lambda entry: entry.name,
    )


def apply_migrations(
    conn: duckdb.DuckDBPyConnection, directory: Traversable = MIGRATIONS
) -> list[str]:
    """Apply every numbered migration not yet recorded; returns the names applied.

    Each migration commits with its record in one transaction. On a lake two processes may
    migrate at once: the loser's commit fails and it retries, finding the migration done.
    """
    return with_retries(lambda: _apply(conn, directory), what="migrating the warehouse")


def _apply(conn: duckdb.DuckDBPyConnection, directory: Traversable) -> list[str]:
    conn.execute("create schema if not exists meta")
    conn.execute(
        "create table if not exists meta.schema_migrations ("
        " version varchar not null, checksum varchar, applied_at timestamp)"
    )
    done = {row[0] for row in conn.execute("select version from meta.schema_migrations").fetchall()}
    applied = []
    for path in migration_files(directory):
        version = path.name.removesuffix(".sql")
        if version in done:
            continue  # the usual case: one query in all when up to date
        sql = path.read_text(encoding="utf-8")
        conn.execute("begin transaction")
        try:
            again = conn.execute(
                "select count(*) from meta.schema_migrations where version = ?", [version]
            ).fetchone()[0]
            if again:  # another process applied it since we looked
                rollback(conn)
                continue
            conn.execute(sql)
            conn.execute(
                "insert into meta.schema_migrations values (?, ?, (now() at time zone 'UTC'))",
                [version, hashlib.sha256(sql.encode()).hexdigest()],
            )
            conn.execute("commit")
        except Exception:
            rollback(conn)
            raise
        applied.append(version)
    return applied
