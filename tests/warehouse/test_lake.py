"""The warehouse seam on both backends: connect, upsert by key, retried commit races, migrations.

The lake is a real DuckLake on a real PostgreSQL server (tests/support/postgres.py), its
extensions loaded from the pinned packages with auto-install off.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import duckdb
import pytest

from responsys_assets.settings import LakeWarehouse
from responsys_assets.warehouse import (
    WarehouseVersionError,
    apply_migrations,
    migration_files,
    open_connection,
)
from responsys_assets.warehouse.connect import is_lake, open_lake
from responsys_assets.warehouse.extensions import CONNECTION_CONFIG, extension_file
from responsys_assets.warehouse.retry import CommitConflictError, is_conflict, with_retries
from responsys_assets.warehouse.transaction import rollback
from responsys_assets.warehouse.upsert import upsert

DATA = Path(__file__).parent / "data"


def test_migrations_leave_the_same_tables_on_both_backends(warehouse_location, backend):
    conn = open_connection(warehouse_location)
    assert apply_migrations(conn) == [p.name.removesuffix(".sql") for p in migration_files()]
    assert apply_migrations(conn) == []  # up to date: nothing applied twice
    tables = conn.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema <> 'meta' order by all"
    ).fetchall()
    assert ("exports", "ledger") in tables and ("responsys", "events") in tables
    assert len(tables) == 24
    assert is_lake(conn) == (backend == "lake")


def test_upsert_replaces_by_key_and_never_duplicates(warehouse_location):
    conn = open_connection(warehouse_location)
    apply_migrations(conn)
    source = (
        "select ?::varchar as export, ?::bigint as last_change_id,"
        " timestamp '2026-01-01' as updated_at"
    )
    columns = ["export", "last_change_id", "updated_at"]
    for export, change in [("a", 1), ("b", 5), ("a", 2), ("a", 3), ("b", 5)]:
        upsert(conn, "exports.watermarks", ["export"], columns, source, [export, change])
    rows = conn.execute("select export, last_change_id from exports.watermarks order by 1")
    assert rows.fetchall() == [("a", 3), ("b", 5)]


def test_an_upsert_key_must_be_written(warehouse_location):
    conn = open_connection(warehouse_location)
    apply_migrations(conn)
    with pytest.raises(ValueError, match="key columns"):
        upsert(conn, "exports.watermarks", ["export"], ["last_change_id"], "select 1")


def _lake_conn(lake: LakeWarehouse) -> duckdb.DuckDBPyConnection:
    return open_lake(lake)


def test_a_commit_race_on_the_lake_is_retried_and_lands_exactly_once(warehouse_location, backend):
    if backend != "lake":
        pytest.skip("a DuckDB file has one writer: no commit races")
    setup = open_connection(warehouse_location)
    setup.execute("create schema s")
    setup.execute("create table s.parts (part integer, n integer)")
    setup.execute("insert into s.parts select i % 2 + 1, i from range(100) as t(i)")  # one file
    first, second = _lake_conn(warehouse_location), _lake_conn(warehouse_location)

    def replace_part(conn, part: int, n: int) -> None:
        conn.execute("begin transaction")
        conn.execute("delete from s.parts where part = ?", [part])
        conn.execute("insert into s.parts values (?, ?)", [part, n])

    # Two overlapping transactions that each rewrite their own part of the same data file:
    # the second cannot commit, and its commit has ended the transaction.
    replace_part(first, 1, 10)
    replace_part(second, 2, 20)
    first.execute("commit")
    with pytest.raises(duckdb.Error) as lost:
        second.execute("commit")
    assert is_conflict(lost.value)
    rollback(second)  # a no-op now, not a second error

    attempts = []

    def write() -> None:
        attempts.append(1)
        if len(attempts) == 1:  # lose the race once more, then win it
            replace_part(second, 2, 20)
            replace_part(first, 1, 11)
            first.execute("commit")
        else:
            replace_part(second, 2, 20)
        try:
            second.execute("commit")
        except duckdb.Error:
            rollback(second)
            raise

    with_retries(write, what="test write", sleep=lambda _: None)
    assert len(attempts) == 2
    assert setup.execute("select * from s.parts order by part").fetchall() == [(1, 11), (2, 20)]


def test_retries_are_bounded_and_other_errors_are_not_retried():
    calls = []

    def conflicting() -> None:
        calls.append(1)
        raise duckdb.TransactionException("Failed to commit DuckLake transaction: conflict")

    with pytest.raises(CommitConflictError, match="3 attempts"):
        with_retries(conflicting, what="w", attempts=3, sleep=lambda _: None)
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise duckdb.CatalogException("Table with name nope does not exist")

    with pytest.raises(duckdb.CatalogException):
        with_retries(broken, what="w", sleep=lambda _: None)
    assert len(calls) == 4


def test_concurrent_migrations_of_one_lake_apply_each_migration_once(warehouse_location, backend):
    if backend != "lake":
        pytest.skip("a DuckDB file is migrated by its one writer")
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            conn = open_connection(warehouse_location)
            apply_migrations(conn)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    conn = open_connection(warehouse_location)
    rows = conn.execute(
        "select version, count(*) from meta.schema_migrations group by 1 order by 1"
    ).fetchall()
    assert rows == [(p.name.removesuffix(".sql"), 1) for p in migration_files()]


def test_the_lake_password_never_appears_in_an_error(postgres_server, tmp_path):
    lake = postgres_server.new_lake(tmp_path / "lake")
    with pytest.raises(duckdb.Error) as refused:
        open_lake(lake, password="not-the-password-5f2c")
    assert "password authentication failed" in str(refused.value)
    assert "not-the-password-5f2c" not in str(refused.value)
    open_lake(lake, password=postgres_server.password).close()


def test_extensions_come_from_the_pinned_packages_not_a_download():
    path = extension_file("ducklake")
    assert path.is_file() and f"v{duckdb.__version__}" in path.parts
    conn = duckdb.connect(config=CONNECTION_CONFIG)
    with pytest.raises(duckdb.Error, match="(?i)install|not found"):
        conn.execute("load ducklake")  # by name DuckDB would look for a download


def test_a_reader_attached_read_only_sees_new_commits_without_a_copy(warehouse_location, backend):
    if backend != "lake":
        pytest.skip("a DuckDB file's readers read the published snapshot (test_notebook.py)")
    writer = open_connection(warehouse_location)
    apply_migrations(writer)
    reader = open_connection(warehouse_location, read_only=True)
    count = "select count(*) from responsys.rejected_rows"
    assert reader.execute(count).fetchone()[0] == 0
    writer.execute("insert into responsys.rejected_rows values ('f', 2, 'bad', 'x')")
    assert reader.execute(count).fetchone()[0] == 1
    with pytest.raises(duckdb.Error, match="(?i)read.only"):
        reader.execute("insert into responsys.rejected_rows values ('f', 3, 'bad', 'y')")


def test_a_file_from_a_newer_duckdb_is_named_with_the_way_to_move_it(tmp_path):
    """A warehouse written by DuckDB 2.0 (the project's previous version) does not open in 1.5.
    The fixture is a real file DuckDB 2.0.0 wrote (`create table t as select 1 x`), gzipped."""
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(gzip.decompress((DATA / "written_by_duckdb_2.0.0.duckdb.gz").read_bytes()))
    with pytest.raises(WarehouseVersionError, match="EXPORT DATABASE") as err:
        open_connection(path)
    assert str(path) in str(err.value) and "IMPORT DATABASE" in str(err.value)
