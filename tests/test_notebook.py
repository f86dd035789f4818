"""Notebooks read a published snapshot: a reader and a writer on the same warehouse at once.

Real processes and real DuckDB files: the writer is a separate process using
`WarehouseResource.connect()` (which publishes the snapshot), the reader is this process using
`responsys_assets.notebook`.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from responsys_assets import notebook
from responsys_assets.settings import PROJECT_ROOT
from responsys_assets.warehouse import open_connection, snapshot_path
from responsys_assets.warehouse.resource import WarehouseResource

# Each write adds batch k with 10*k items in one transaction; a consistent view has, for every
# batch it sees, exactly that many items, and batches 1..n without a gap.
WRITER = r"""
import json, sys, time
from responsys_assets.warehouse.resource import WarehouseResource

path, count = sys.argv[1], int(sys.argv[2])
warehouse = WarehouseResource(location=path, landing_dir=path + ".landing", lock_wait_seconds=10)
seconds = []
for batch in range(1, count + 1):
    started = time.monotonic()
    with warehouse.connect() as conn:
        conn.execute("create table if not exists main.batches (batch integer, items integer)")
        conn.execute("create table if not exists main.items (batch integer, n bigint)")
        conn.execute("begin transaction")
        conn.execute("insert into main.items select ?, range from range(?)", [batch, 10 * batch])
        conn.execute("insert into main.batches values (?, ?)", [batch, 10 * batch])
        conn.execute("commit")
    seconds.append(time.monotonic() - started)
print(json.dumps(seconds))
"""

CONSISTENCY = """
select count(*) as batches, coalesce(max(b.batch), 0) as last,
       count(*) filter (where b.items <> coalesce(i.n, 0)) as torn
from main.batches b left join (select batch, count(*) as n from main.items group by 1) i
  using (batch)
"""


def start_writer(path: Path, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(count)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def check_consistent(conn: duckdb.DuckDBPyConnection) -> int:
    """The last batch this connection sees; fails on a torn or gapped view."""
    batches, last, torn = conn.execute(CONSISTENCY).fetchone()
    assert torn == 0 and batches == last, (batches, last, torn)
    return last


def wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_shared_connection():
    yield
    if notebook._shared is not None:
        notebook._shared.close()
        notebook._shared = None


def test_reader_and_writer_at_the_same_time(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    writes = 40
    writer = start_writer(live, writes)
    try:
        wait_for(snapshot_path(live), 60)
        held = notebook.open_warehouse(live)  # kept open across every publish below
        held_last = check_consistent(held)
        seen = set()
        deadline = time.monotonic() + 90
        while writer.poll() is None and time.monotonic() < deadline:
            with notebook.open_warehouse(live) as fresh:
                seen.add(check_consistent(fresh))
            assert check_consistent(held) == held_last
            time.sleep(0.02)
        out, err = writer.communicate(timeout=30)
    finally:
        stop(writer)
    assert writer.returncode == 0, err
    assert "could not publish" not in err and "not updated" not in err, err
    seconds = json.loads(out)
    assert len(seconds) == writes
    assert max(seconds) < 5, f"a write took {max(seconds):.1f} s with a reader open"
    assert len(seen) >= 3, f"the reader saw only {sorted(seen)} across {writes} publishes"
    with notebook.open_warehouse(live) as final:
        assert check_consistent(final) == writes
    assert check_consistent(held) == held_last  # the old snapshot still reads after them all
    held.close()


def test_open_warehouse_never_holds_the_live_file(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    with WarehouseResource(location=str(live), landing_dir=str(tmp_path)).connect() as conn:
        conn.execute("create table main.t as select 1 as x")
    grab = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"  # read-write, no retry

    def writer_can_open() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", grab, str(live)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with notebook.open_warehouse(live) as conn:
        assert conn.execute("select x from main.t").fetchone() == (1,)
        result = writer_can_open()
        assert result.returncode == 0, result.stderr
    # The same check fails when a reader opens the live file itself: what the snapshot avoids.
    with duckdb.connect(str(live), read_only=True):
        result = writer_can_open()
    assert result.returncode != 0 and "lock" in result.stderr.lower()


def test_snapshot_is_owner_only_and_follows_each_write(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    warehouse = WarehouseResource(location=str(live), landing_dir=str(tmp_path))
    old_umask = os.umask(0)
    try:
        with warehouse.connect() as conn:
            conn.execute("create table main.t as select 1 as x")
    finally:
        os.umask(old_umask)
    snapshot = snapshot_path(live)
    assert snapshot.name == "warehouse.snapshot.duckdb"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    with notebook.open_warehouse(live) as conn:
        assert conn.execute("select count(*) from main.t").fetchone() == (1,)
    with warehouse.connect() as conn:
        conn.execute("insert into main.t values (2)")
    with notebook.open_warehouse(live) as conn:
        assert conn.execute("select count(*) from main.t").fetchone() == (2,)
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))


def test_query_reads_the_env_warehouse_until_refresh(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("RESPONSYS_")]:
        monkeypatch.delenv(name)
    live = tmp_path / "w.duckdb"
    monkeypatch.setenv("RESPONSYS_WAREHOUSE", str(live))
    warehouse = WarehouseResource(location=str(live), landing_dir=str(tmp_path))
    with warehouse.connect() as conn:
        conn.execute("create table main.t as select * from range(5) r(x)")
    assert notebook.snapshot_file() == tmp_path / "w.snapshot.duckdb"
    frame = notebook.query("select count(*) as n from main.t where x >= $low", low=2)
    assert frame["n"].to_list() == [3]
    with warehouse.connect() as conn:
        conn.execute("insert into main.t values (10)")
    assert notebook.query("select count(*) as n from main.t")["n"].to_list() == [5]
    notebook.refresh()
    assert notebook.query("select count(*) as n from main.t")["n"].to_list() == [6]


def test_no_snapshot_yet_says_what_to_run(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    with pytest.raises(notebook.SnapshotMissingError) as info:
        notebook.open_warehouse(live)
    assert "make demo" in str(info.value) and "warehouse.snapshot.duckdb" in str(info.value)
    assert not live.exists()  # the helper never creates or opens the live file


def test_a_failed_publish_does_not_fail_the_write(tmp_path, caplog):
    live = tmp_path / "warehouse.duckdb"
    warehouse = WarehouseResource(location=str(live), landing_dir=str(tmp_path))
    snapshot_path(live).mkdir()  # os.replace of a file over a directory fails
    with caplog.at_level(logging.WARNING), warehouse.connect() as conn:
        conn.execute("create table main.t as select 1 as x")
    assert "could not publish the warehouse snapshot" in caplog.text
    with open_connection(live, read_only=True) as conn:
        assert conn.execute("select x from main.t").fetchone() == (1,)
    snapshot_path(live).rmdir()
    with warehouse.connect() as conn:
        conn.execute("insert into main.t values (2)")
    with notebook.open_warehouse(live) as conn:
        assert conn.execute("select count(*) from main.t").fetchone() == (2,)


def test_a_read_only_connection_publishes_nothing(tmp_path):
    live = tmp_path / "warehouse.duckdb"
    warehouse = WarehouseResource(location=str(live), landing_dir=str(tmp_path))
    with warehouse.connect() as conn:
        conn.execute("create table main.t as select 1 as x")
    snapshot_path(live).unlink()
    with warehouse.connect(read_only=True) as conn:
        conn.execute("select 1").fetchone()
    assert not snapshot_path(live).exists()


@pytest.mark.parametrize("name", ["events", "audiences"])
def test_notebooks_are_committed_without_outputs(name):
    import nbformat

    book = nbformat.read(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "nb.refresh()" in code[0].source  # reads the snapshot through the helper
    assert "duckdb.connect" not in "".join(c.source for c in code)  # never the live file
