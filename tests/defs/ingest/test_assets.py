"""The ingest assets under Dagster: real sandbox SFTP server, real PGP files, real DuckDB."""

import dagster as dg
import duckdb
import pytest

from responsys_assets.config import IngestConfig, ProjectConfig
from responsys_assets.defs.ingest.assets import build_ingest_assets
from responsys_assets.defs.ingest.partitions import responsys_files
from responsys_assets.sandbox import SampleData, Sandbox
from responsys_assets.sandbox.resources import SandboxPGPResource, SandboxSFTPResource
from responsys_assets.warehouse.resource import WarehouseResource


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sandbox")
    box = Sandbox(folder, ProjectConfig(), SampleData(contacts=60, days=2))
    box.start()
    yield box
    box.stop()


@pytest.fixture
def setup(sandbox, tmp_path):
    resources = {
        "sftp": SandboxSFTPResource(sandbox_dir=str(sandbox.folder)),
        "pgp": SandboxPGPResource(sandbox_dir=str(sandbox.folder)),
        "warehouse": WarehouseResource(
            location=str(tmp_path / "w.duckdb"), landing_dir=str(tmp_path / "landing")
        ),
    }
    instance = dg.DagsterInstance.ephemeral()
    return resources, instance, tmp_path


def materialize(setup, name, **kwargs):
    resources, instance, _ = setup
    if not instance.has_dynamic_partition(responsys_files.name, name):
        instance.add_dynamic_partitions(responsys_files.name, [name])
    return dg.materialize(
        build_ingest_assets(IngestConfig()),
        resources=resources,
        instance=instance,
        partition_key=name,
        raise_on_error=False,
        **kwargs,
    )


def outbound(sandbox):
    return sandbox.sftp_root / "outbound"


def count(tmp_path, sql, *params):
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as db:
        return db.execute(sql, list(params)).fetchone()[0]


def test_encrypted_file_lands_decrypts_and_loads_once(sandbox, setup):
    name = sorted(p.name for p in outbound(sandbox).glob("*_OPEN_*.gpg"))[0]
    first = materialize(setup, name)
    assert first.success
    meta = first.asset_materializations_for_node("responsys__events")[0].metadata
    assert meta["encrypted"].value is True
    assert meta["rows_loaded"].value > 0
    assert meta["mode"].value == "sandbox"
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {"rows_reconcile": True, "no_duplicate_lines": True}
    tmp_path = setup[2]
    loaded = count(tmp_path, "select count(*) from responsys.events where source_file = ?", name)
    assert loaded == meta["rows_loaded"].value
    again = materialize(setup, name)  # re-materialising a partition replaces it
    assert again.success
    assert (
        count(tmp_path, "select count(*) from responsys.events where source_file = ?", name)
        == loaded
    )
    landed = (tmp_path / "landing" / name).stat()
    assert oct(landed.st_mode & 0o777) == "0o600"


def test_landing_zone_outlives_the_server(sandbox, setup):
    source = sorted(outbound(sandbox).glob("*_SENT_*.txt"))[0]
    assert materialize(setup, source.name).success
    kept = source.read_bytes()
    source.unlink()  # Responsys deleted it after ~14 days
    try:
        assert materialize(setup, source.name).success
    finally:
        source.write_bytes(kept)


def test_unknown_feed_is_recorded_as_skipped(sandbox, setup):
    name = "10001_MYSTERY_20260101_000000.txt"
    (outbound(sandbox) / name).write_text("RIID,EVENT_CAPTURED_DT\n1,03-Jan-2026 13:05:32\n")
    try:
        result = materialize(setup, name)
    finally:
        (outbound(sandbox) / name).unlink()
    assert result.success
    status = count(
        setup[2], "select status from responsys.ingested_files where file_name = ?", name
    )
    assert status == "skipped"


def test_corrupt_pgp_file_fails_and_loads_nothing(sandbox, setup):
    name = "10001_CLICK_20260101_000000.txt.gpg"
    good = sorted(outbound(sandbox).glob("*_CLICK_*.gpg"))[0].read_bytes()
    (outbound(sandbox) / name).write_bytes(good[: len(good) // 2])  # truncated
    try:
        result = materialize(setup, name)
    finally:
        (outbound(sandbox) / name).unlink()
    assert not result.success
    tmp_path = setup[2]
    row = count(
        tmp_path,
        "select status || ': ' || error from responsys.ingested_files where file_name = ?",
        name,
    )
    assert row.startswith("failed: ") and name in row
    assert count(tmp_path, "select count(*) from responsys.events where source_file = ?", name) == 0
    leftovers = (
        list((tmp_path / "landing" / ".work").glob("*"))
        if (tmp_path / "landing" / ".work").exists()
        else []
    )
    assert leftovers == []
