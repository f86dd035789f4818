"""`responsys-assets run` end to end on the embedded sandbox, as a user runs it.

Real processes, a real SFTP server, real PGP files, a real DuckDB file and a real Dagster
instance; the only stand-in is the Responsys REST API emulator, which follows the documented API.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from responsys_assets.settings import PROJECT_ROOT
from tests.e2e.cli_support import cli_env, run_cli

pytestmark = pytest.mark.e2e


def data_calls(state: Path) -> int:
    """API calls that write data (everything except login, rate-limit reads, PET listing and the
    reconciliation's Retrieve calls)."""
    with sqlite3.connect(state) as db:
        return db.execute(
            "select count(*) from api_calls where api not in "
            "('login', 'rateLimit', 'getProfileExtensions') and api not like 'retrieve%'"
        ).fetchone()[0]


@pytest.fixture
def first_run(cli_first_run):
    return cli_first_run.tmp, cli_first_run.env, cli_first_run.result


def test_first_run_flows_end_to_end(first_run):
    tmp, _, result = first_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mode: sandbox" in result.stdout
    assert "all parts succeeded" in result.stdout
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as db:
        loaded = db.execute(
            "select count(*) from responsys.ingested_files where status = 'loaded'"
        ).fetchone()[0]
        events = db.execute("select count(*) from responsys.events").fetchone()[0]
        types = {
            r[0] for r in db.execute("select distinct event_type from responsys.events").fetchall()
        }
        members = db.execute("select count(*) from audiences.memberships").fetchone()[0]
        sent = db.execute(
            "select count(*) from exports.ledger where outcome = 'succeeded' "
            "and batch_id not like 'nocall-%'"
        ).fetchone()[0]
    assert loaded > 10
    assert events > 1000
    assert {"SENT", "OPEN", "CLICK", "BOUNCE"} <= types
    assert members > 0
    assert sent > 0
    state = tmp / "sandbox" / "api" / "responsys_emulator.sqlite"
    with sqlite3.connect(state) as db:
        emails = db.execute("select count(*) from email_sends").fetchone()[0]
    assert emails > 0, "the campaign trigger export reached the emulator"


def test_runs_are_recorded_in_the_dagster_instance(first_run):
    tmp, env, _ = first_run
    code = (
        "import dagster as dg; i = dg.DagsterInstance.get(); "
        "print(len(i.get_runs()), len(i.get_dynamic_partitions('responsys_files')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    runs, partitions = int(out[0]), int(out[1])
    assert partitions > 10
    assert runs >= partitions + 2  # one per file, the audiences, the exports


def test_second_run_ingests_and_exports_nothing_new(first_run):
    tmp, env, _ = first_run
    state = tmp / "sandbox" / "api" / "responsys_emulator.sqlite"
    calls_before = data_calls(state)
    result = run_cli(env, "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sensor: 0 file(s) to ingest" in result.stdout
    assert data_calls(state) == calls_before


def test_a_corrupt_file_fails_alone(first_run):
    tmp, env, _ = first_run
    outbound = tmp / "sandbox" / "sftp" / "outbound"
    good = sorted(outbound.glob("*_OPEN_*.txt*"))[0]
    stamp = "20300101_000000"
    corrupt = outbound / f"10001_CLICK_{stamp}.txt.gpg"
    corrupt.write_bytes(b"\x85\x01\x0c" + os.urandom(300))
    fresh = outbound / good.name.replace(good.name.split("_OPEN_")[1][:15], stamp)
    shutil.copyfile(good, fresh)
    result = run_cli(env, "run")
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 1 and corrupt.name in failures[0], result.stderr
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as db:
        statuses = dict(
            db.execute(
                "select file_name, status from responsys.ingested_files where file_name in (?, ?)",
                [corrupt.name, fresh.name],
            ).fetchall()
        )
        from_corrupt = db.execute(
            "select count(*) from responsys.events where source_file = ?", [corrupt.name]
        ).fetchone()[0]
    assert statuses == {corrupt.name: "failed", fresh.name: "loaded"}
    assert from_corrupt == 0


def test_partial_configuration_stops_with_the_missing_names(tmp_path):
    env = cli_env(tmp_path, RESPONSYS_SFTP_HOST="files.responsys.net", RESPONSYS_PASSWORD="pw-123")
    result = run_cli(env, "run", timeout=120)
    assert result.returncode == 2
    assert "RESPONSYS_SFTP_USERNAME" in result.stderr
    assert "RESPONSYS_ENDPOINT" in result.stderr
    assert "pw-123" not in result.stderr + result.stdout


def test_unknown_host_key_is_refused(tmp_path):
    from responsys_assets.config import load_config
    from responsys_assets.sandbox import SampleData, Sandbox

    config = load_config(PROJECT_ROOT / "responsys_assets/example_config.yaml")
    sandbox = Sandbox(tmp_path / "sandbox", config, SampleData(contacts=50, days=1))
    conn = sandbox.start()
    try:
        empty_known_hosts = tmp_path / "known_hosts"
        empty_known_hosts.write_text("")
        env = cli_env(
            tmp_path,
            RESPONSYS_SFTP_HOST=conn.sftp_host,
            RESPONSYS_SFTP_PORT=str(conn.sftp_port),
            RESPONSYS_SFTP_USERNAME=conn.sftp_username,
            RESPONSYS_SFTP_PRIVATE_KEY=Path(conn.sftp_private_key_path).read_text(),
            RESPONSYS_SFTP_KNOWN_HOSTS=str(empty_known_hosts),
            RESPONSYS_SFTP_REMOTE_DIR=conn.sftp_remote_dir,
            RESPONSYS_ENDPOINT=conn.api_endpoint,
            RESPONSYS_USERNAME=conn.api_username,
            RESPONSYS_PASSWORD=conn.api_password,
        )
        result = run_cli(env, "run", timeout=300)
    finally:
        sandbox.stop()
    assert result.returncode == 1
    assert "mode: production" in result.stdout
    listing = [line for line in result.stderr.splitlines() if "sftp listing" in line]
    assert listing and "HostKeyError" in listing[0] and "known_hosts" in listing[0]
    assert conn.api_password not in result.stdout + result.stderr
