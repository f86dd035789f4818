"""Hybrid transport of a profile list export: a backfill above the threshold goes as one file to
the sandbox SFTP server, deltas by REST to the emulator; a kill or a failed upload mid-file is
resumed with the same file and no REST resend. Real DuckDB, SFTP server, emulator and gpg."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from responsys_assets.config import FileImportConfig
from responsys_assets.defs.exports.changes import latest_change_id, watermark
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.runner import ExportReport, run_export
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.sandbox.api import EmulatorServer
from responsys_assets.sandbox.keys import ensure_ssh_keys
from responsys_assets.sandbox.sftp_server import SandboxSFTPServer
from responsys_assets.settings import PROJECT_ROOT
from tests.defs.exports.hybrid_support import (
    AUDIENCE,
    FIRST_RIID,
    LIST,
    REMOTE_DIR,
    StallingProxy,
    add_changes,
    add_people,
    list_export,
    seeded_emulator,
    sftp_factory,
)
from tests.defs.exports.warehouse_rows import open_warehouse
from tests.support.warehouses import location

USER, PASSWORD = "api_user", "hybrid-Pass-1"
PEOPLE = range(FIRST_RIID, FIRST_RIID + 12)
SUPPRESSED = {FIRST_RIID + 3}  # opted out: in no file, in no call


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """A list already holding everyone the tests will send (and a few more)."""
    server = seeded_emulator(tmp_path / "emulator", USER, PASSWORD, members=2000)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator) -> Iterator[ResponsysClient]:
    with ResponsysClient(
        endpoint=emulator.base_url, username=USER, password=PASSWORD, timeout=5.0, max_attempts=2
    ) as client:
        yield client


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[tuple[SandboxSFTPServer, object]]:
    root = tmp_path / "sftp"
    (root / "connect").mkdir(parents=True)
    (root / "import").mkdir()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
    server = SandboxSFTPServer(root, keys.host_key_path, keys.client_public_key)
    port = server.start()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", port)
    yield server, keys
    server.stop()


@pytest.fixture
def warehouse(warehouse_location) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse on each backend (`warehouse_location`: tests/support/warehouses.py)."""
    conn = open_warehouse(warehouse_location)
    add_people(conn, PEOPLE, suppressed=SUPPRESSED)
    yield conn
    conn.close()


def run(conn, client, export, sftp) -> ExportReport:
    server, keys = sftp
    handler = handler_for(
        export, sftp_factory=sftp_factory(server.port, keys.client_key_path, keys.known_hosts_path)
    )
    return run_export(
        conn, client, name=export.name, audience=AUDIENCE, handler=handler, backfill=True
    )


def uploaded(server: SandboxSFTPServer) -> list[Path]:
    return sorted((server.root / "import").iterdir())


def list_calls(emulator, api: str = "mergeListMembers") -> int:
    return len(emulator.store.api_calls(api))


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def file_batches(conn, export: str) -> list[tuple]:
    return conn.execute(
        "select f.batch_id, f.file_name, f.records, f.sha256, f.content is null, "
        "f.uploaded_at is not null, l.outcome, l.records "
        "from exports.file_batches f join exports.ledger l using (export, batch_id) "
        "where f.export = ?",
        [export],
    ).fetchall()


# --------------------------------------------------------------------------- backfill + delta


def test_backfill_goes_as_one_file_then_the_delta_by_rest(emulator, client, sftp, warehouse):
    server, _ = sftp
    export = list_export(threshold=5)
    report = run(warehouse, client, export, sftp)

    assert report.ok, report.stopped_by
    assert report.transport == "file"
    assert "11 records to send > file_import threshold 5" in report.transport_reason
    assert (report.added, report.suppressed, report.api_calls) == (11, 1, 0)
    assert list_calls(emulator) == 0  # nothing went through the list merge API
    (file,) = uploaded(server)
    assert file.name.startswith("vip_list_") and file.name.endswith(".csv")
    rows = csv_rows(file.read_bytes())
    assert rows[0] == ["RIID_", "CITY"]  # the REST merge's fieldNames, same order
    assert [r[0] for r in rows[1:]] == [str(r) for r in PEOPLE if r not in SUPPRESSED]
    assert rows[1] == ["1000", 'Town 1000, "Old" quarter']
    assert str(FIRST_RIID + 3) not in file.read_text()  # consent: the opted-out contact

    ((batch_id, name, records, digest, emptied, done, outcome, ledgered),) = file_batches(
        warehouse, export.name
    )
    assert batch_id.startswith("file-") and name == file.name
    assert (records, ledgered, outcome, emptied, done) == (11, 11, "succeeded", True, True)
    assert digest == hashlib.sha256(file.read_bytes()).hexdigest()
    meta = report.metadata()
    assert meta["transport"] == "file" and meta["file"]["sha256"] == digest
    assert watermark(warehouse, export.name) == latest_change_id(warehouse, AUDIENCE)

    # The delta: one new member and one exit go by REST; no second file.
    add_people(warehouse, range(FIRST_RIID + 100, FIRST_RIID + 101))
    add_changes(warehouse, AUDIENCE, [f"riid:{FIRST_RIID}"], "EXIT")
    delta = run(warehouse, client, export, sftp)
    assert delta.ok, delta.stopped_by
    assert delta.transport == "rest"
    assert delta.transport_reason == "2 records to send <= file_import threshold 5"
    assert (delta.added, delta.removed) == (1, 1)
    assert (list_calls(emulator), list_calls(emulator, "deleteListMembers")) == (1, 1)
    merged = emulator.store.api_calls("mergeListMembers")[0]
    assert merged["records"] == 1  # only the new member: the file's records are not resent
    assert len(uploaded(server)) == 1

    again = run(warehouse, client, export, sftp)
    assert (again.pending, again.api_calls, len(uploaded(server))) == (0, 0, 1)


def test_an_encrypted_file_decrypts_with_gpg(emulator, client, sftp, warehouse, gpg_home):
    server, _ = sftp
    os.environ["VIP_IMPORT_KEY"] = gpg_home.public_key_armored
    try:
        export = list_export(
            file_import=FileImportConfig(
                remote_dir=REMOTE_DIR,
                threshold=3,
                file_prefix="vip-backfill",
                encrypt_to_env="VIP_IMPORT_KEY",
            )
        )
        report = run(warehouse, client, export, sftp)
    finally:
        del os.environ["VIP_IMPORT_KEY"]
    assert report.ok, report.stopped_by
    (file,) = uploaded(server)
    assert file.name.startswith("vip-backfill_") and file.name.endswith(".csv.gpg")
    rows = csv_rows(gpg_home.decrypt(file))
    assert rows[0] == ["RIID_", "CITY"] and len(rows) == 12
    assert report.details["file"]["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert list_calls(emulator) == 0


def test_below_the_threshold_everything_goes_by_rest(emulator, client, sftp, warehouse):
    server, _ = sftp
    report = run(warehouse, client, list_export(threshold=11), sftp)
    assert report.ok and report.transport == "rest" and report.added == 11
    assert uploaded(server) == [] and list_calls(emulator) == 1


def test_dry_run_says_which_transport_without_uploading(emulator, client, sftp, warehouse):
    server, _ = sftp
    export = list_export(threshold=5)
    report = run_export(
        warehouse,
        None,
        name=export.name,
        audience=AUDIENCE,
        handler=handler_for(export),  # no SFTP connection: a plan needs none
        backfill=True,
        dry_run=True,
    )
    assert report.transport == "file" and len(report.planned) == 11
    assert uploaded(server) == []


# --------------------------------------------------------------------------- failures


def test_a_failed_upload_is_resumed_with_the_same_file_and_no_rest(
    emulator, client, sftp, warehouse
):
    server, keys = sftp
    export = list_export(threshold=5)
    server.stop()  # the SFTP server is down while the file goes out
    report = run(warehouse, client, export, sftp)
    assert not report.ok and "kept in exports.file_batches" in report.stopped_by
    assert watermark(warehouse, export.name) is None
    ((_, name, *_rest),) = file_batches(warehouse, export.name)

    server.start()
    keys = ensure_ssh_keys(keys.client_key_path.parent, "127.0.0.1", server.port)
    resumed = run(warehouse, client, export, (server, keys))
    assert resumed.ok, resumed.stopped_by
    assert resumed.details["files_from_an_earlier_run"][0]["file_name"] == name
    assert resumed.pending == 0 and resumed.api_calls == 0  # nothing planned again
    assert [f.name for f in uploaded(server)] == [name]
    assert list_calls(emulator) == 0
    assert watermark(warehouse, export.name) == latest_change_id(warehouse, AUDIENCE)


def test_a_kill_mid_upload_then_rerun_leaves_exactly_one_file(
    emulator, client, sftp, warehouse, warehouse_location, tmp_path
):
    """SIGKILL while the file is half on the server (an upload stalled by a proxy)."""
    server, keys = sftp
    many = range(FIRST_RIID + 20, FIRST_RIID + 1520)
    add_people(warehouse, many)
    warehouse.close()
    export = list_export(threshold=5)
    log = tmp_path / "child.log"
    with StallingProxy(server.port, stall_after=30_000) as proxy:
        known = tmp_path / "known_hosts_proxy"
        known.write_text(
            keys.known_hosts_path.read_text().replace(f"]:{server.port} ", f"]:{proxy.port} ")
        )
        args = [location(warehouse_location), str(proxy.port), str(keys.client_key_path)]
        with open(log, "wb") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.defs.exports.hybrid_support", *args, str(known), "5"],
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            partial = server.root / "import"
            for _ in range(600):  # up to 60 s for the upload to start and stall
                parts = [p for p in partial.iterdir() if p.name.endswith(".part")]
                if parts or child.poll() is not None:  # the upload has begun
                    break
                time.sleep(0.1)
            assert parts and child.poll() is None, log.read_text()
        finally:
            if child.poll() is None:
                os.kill(child.pid, 9)
            child.wait(30)
    assert "finished" not in log.read_text()
    assert [f.name for f in uploaded(server) if not f.name.startswith(".")] == []

    conn = open_warehouse(warehouse_location)
    try:
        resumed = run(conn, client, export, sftp)
        assert resumed.ok, resumed.stopped_by
        files = [f for f in uploaded(server) if not f.name.startswith(".")]
        assert len(files) == 1
        rows = csv_rows(files[0].read_bytes())
        assert len(rows) - 1 == 11 + len(many)  # every sendable record, once
        assert len({r[0] for r in rows[1:]}) == len(rows) - 1
        assert list_calls(emulator) == 0  # and none of them by REST
        assert [p.name for p in uploaded(server) if p.name.endswith(".part")] == []
        ((*_, done, outcome, _ledgered),) = file_batches(conn, export.name)
        assert done and outcome == "succeeded"
    finally:
        conn.close()


def test_side_pets_wait_for_the_run_after_a_file(emulator, client, sftp, warehouse):
    export = list_export(
        threshold=5,
        user_fields_pet={"fields": {"TOWN": "customer_id"}},
        segments_pet={"audiences": [AUDIENCE]},
    )
    first = run(warehouse, client, export, sftp)
    assert first.ok and first.transport == "file"
    assert "not imported yet" in first.details["side_pets"]
    assert emulator.store.api_calls("mergePetMembers") == []

    second = run(warehouse, client, export, sftp)  # after the Connect import, in real life
    assert second.ok and second.pending == 0
    assert second.details["user_fields_pet"]["rows_written"] == 11
    assert second.details["segments_pet"]["rows_written"] == 11
    assert len(emulator.store.pet_rows(LIST, "RA_SEGMENTS")) == 11
    assert list_calls(emulator) == 0
