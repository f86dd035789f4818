"""Process and machine faults: SIGKILL mid-load and mid-export then the pipeline run again, two
runs at the same time, the DuckDB file locked by a reader, and disk full in the landing zone."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from responsys_assets.lib.landing import LandingZone
from responsys_assets.lib.sftp import SFTPError, SFTPSource
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from responsys_assets.warehouse import (
    WarehouseLockedError,
    apply_migrations,
    open_connection,
)
from tests.reliability.exports_setup import (
    PASSWORD,
    USER,
    export_figures,
    missing_deliveries,
    seed_emulator,
    seed_warehouse,
)
from tests.reliability.files import ConnectFiles, make_connect_files
from tests.reliability.support import (
    ingest_landed,
    kill,
    log_lines,
    read_event_figures,
    start_child,
    wait_for,
)

pytestmark = pytest.mark.reliability
CATEGORY = "fault: process and machine"
SEEDS = [1, 2, 3]
CONTACTS = 40
DRIVER = ["-m", "tests.reliability.driver"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, gpg_home) -> ConnectFiles:
    return make_connect_files(tmp_path_factory.mktemp("connect"), gpg_home, contacts=2500)


def land(files: ConnectFiles, landing: Path) -> LandingZone:
    zone = LandingZone(landing)
    for name in files.names:
        with zone.write(name) as writer:
            writer.write((files.folder / name).read_bytes())
    return zone


def create_warehouse(path: Path) -> None:
    conn = open_connection(path)
    apply_migrations(conn)
    conn.close()


def driver_env(gpg_home, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSYS_")}
    env["RELIABILITY_PGP_KEY"] = gpg_home.private_key_armored
    env["RELIABILITY_PGP_PASSPHRASE"] = gpg_home.passphrase
    env.update(extra)
    return env


def run_driver(args: list[str], env: dict, log: Path, timeout: float = 120) -> None:
    child = start_child([*DRIVER, *args], env, log)
    try:
        child.wait(timeout)
    finally:
        kill(child)
    assert child.returncode == 0, log.read_text(errors="replace")[-3000:]


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_mid_load_then_rerun(seed, tmp_path, files, gpg_home, scenario):
    rng = random.Random(seed)
    land(files, tmp_path / "landing")
    warehouse, log = tmp_path / "w.duckdb", tmp_path / "driver.log"
    create_warehouse(warehouse)
    env = driver_env(gpg_home)
    args = ["load", str(warehouse), str(tmp_path / "landing")]
    target = rng.randint(1, len(files.names))
    child = start_child([*DRIVER, *args], env, log)
    try:
        wait_for(lambda: log_lines(log, "start ") >= target, 60, f"load of file {target}")
        time.sleep(rng.uniform(0, 0.05))
    finally:
        killed = kill(child)
    done = log_lines(log, "done ")
    scenario.note = f"killed during file {target} of {len(files.names)} ({done} committed)"
    assert killed, "the driver finished before the kill"
    run_driver([*args, "--only-missing"], env, tmp_path / "rerun.log")
    lost, duplicated = read_event_figures(warehouse, files.expected)
    scenario.figures(lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seeded") / "w.duckdb"
    seed_warehouse(path, CONTACTS)
    return path


@pytest.fixture
def warehouse(tmp_path, seeded) -> Path:
    path = tmp_path / "w.duckdb"
    shutil.copyfile(seeded, path)
    return path


@pytest.fixture
def emulator(tmp_path):
    server = EmulatorServer(tmp_path / "api", EmulatorSettings(username=USER, password=PASSWORD))
    seed_emulator(server.store, CONTACTS)
    server.start()
    yield server
    server.stop()


def export_env(gpg_home, emulator: EmulatorServer) -> dict[str, str]:
    return driver_env(
        gpg_home, RELIABILITY_API_ENDPOINT=emulator.base_url, RELIABILITY_API_PASSWORD=PASSWORD
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_mid_export_then_rerun(seed, tmp_path, warehouse, gpg_home, emulator, scenario):
    rng = random.Random(seed)
    log = tmp_path / "export.log"
    env = export_env(gpg_home, emulator)
    target = rng.randint(1, 15)  # ~21 batches of 5 across three exports
    child = start_child([*DRIVER, "export", str(warehouse), "5"], env, log)
    try:
        wait_for(lambda: log_lines(log, "batch ") >= target, 60, f"export batch {target}")
        time.sleep(rng.uniform(0, 0.05))
    finally:
        killed = kill(child)
    scenario.note = f"killed after {log_lines(log, 'batch ')} settled batches (target {target})"
    assert killed, "the driver finished before the kill"
    run_driver(["export", str(warehouse), "5"], env, tmp_path / "rerun.log")
    twice, opted_out = export_figures(emulator.store, CONTACTS)
    scenario.figures(twice=twice, opted_out=opted_out)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        missing = missing_deliveries(conn, emulator.store, CONTACTS)
    assert (twice, opted_out) == (0, 0)
    assert not missing, f"never delivered nor parked: {missing}"


def test_two_loads_and_two_exports_at_the_same_time(
    tmp_path, warehouse, files, gpg_home, emulator, scenario
):
    land(files, tmp_path / "landing")
    env = export_env(gpg_home, emulator)
    loads = [
        start_child(
            [*DRIVER, "load", str(warehouse), str(tmp_path / "landing")],
            env,
            tmp_path / f"l{i}.log",
        )
        for i in range(2)
    ]
    exports = [
        start_child([*DRIVER, "export", str(warehouse), "5"], env, tmp_path / f"e{i}.log")
        for i in range(2)
    ]
    try:
        for child in loads + exports:
            child.wait(180)
    finally:
        for child in loads + exports:
            kill(child)
    lost, duplicated = read_event_figures(warehouse, files.expected)
    twice, opted_out = export_figures(emulator.store, CONTACTS)
    scenario.figures(lost=lost, duplicated=duplicated, twice=twice, opted_out=opted_out)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        missing = missing_deliveries(conn, emulator.store, CONTACTS)
    codes = [c.returncode for c in loads + exports]
    assert codes == [0, 0, 0, 0], [p.read_text()[-2000:] for p in tmp_path.glob("*.log")]
    assert (lost, duplicated, twice, opted_out) == (0, 0, 0, 0)
    assert not missing


READER = (
    "import duckdb, sys, time\n"
    "c = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@pytest.mark.parametrize("hold_seconds", [1.5, 30.0])
def test_warehouse_locked_by_a_reader(hold_seconds, tmp_path, files, gpg_home, scenario):
    warehouse, log = tmp_path / "w.duckdb", tmp_path / "reader.log"
    open_connection(warehouse).close()
    reader = start_child(["-c", READER, str(warehouse), str(hold_seconds)], os.environ.copy(), log)
    try:
        wait_for(lambda: log_lines(log, "locked") >= 1, 30, "the reader to open the file")
        zone = land(files, tmp_path / "landing")
        started = time.monotonic()
        if hold_seconds > 5:
            with pytest.raises(WarehouseLockedError) as caught:
                open_connection(warehouse, wait_seconds=2)
            assert "locked by another process" in str(caught.value)
            scenario.note = "held past the wait: refused with WarehouseLockedError"
            kill(reader)
        else:
            scenario.note = f"held {hold_seconds} s: the writer waited and went on"
        conn = open_connection(warehouse, wait_seconds=30)
        waited = time.monotonic() - started
        try:
            apply_migrations(conn)
            for name in files.names:
                ingest_landed(conn, zone, name, _decryptor(gpg_home))
        finally:
            conn.close()
    finally:
        kill(reader)
    lost, duplicated = read_event_figures(warehouse, files.expected)
    scenario.figures(lost=lost, duplicated=duplicated)
    if hold_seconds < 5:
        assert waited >= 0.5, "the writer did not have to wait: the reader held no lock"
    assert (lost, duplicated) == (0, 0)


def _decryptor(gpg_home):
    from responsys_assets.lib.pgp import Decryptor

    return Decryptor(gpg_home.private_key_armored, gpg_home.passphrase)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 0


def test_disk_full_in_landing_zone(tmp_path, sshd, sftp_dir, files, gpg_home, scenario):
    """The landing zone on a 2 MiB tmpfs (needs root; CI runs as root); a 3 MiB file fills it."""
    landing = tmp_path / "landing"
    if not _mount_tmpfs(landing, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root); disk-full scenario not run")
    try:
        files.copy_to(sftp_dir)
        big = sorted(files.names, key=lambda n: (files.folder / n).stat().st_size)[-1]
        content = (files.folder / big).read_bytes()
        header, body = content.split(b"\n", 1)
        repeat = 3 * 1024 * 1024 // len(body) + 1
        stamp = big.split("_")[-2]
        huge = big.replace(stamp, "19990101") if stamp != "19990101" else big
        (sftp_dir / huge).write_bytes(header + b"\n" + body * repeat)
        expected = dict(files.expected)
        expected[huge] = (body * repeat).count(b"\n")
        zone = LandingZone(landing)
        source = SFTPSource(
            host=sshd.host,
            port=sshd.port,
            username=sshd.username,
            private_key=sshd.client_keys["ed25519"],
            known_hosts_path=str(sshd.known_hosts_path),
            remote_dir=str(sftp_dir),
            max_attempts=2,
            backoff_seconds=0.05,
        )
        failed = []
        with source:
            for name in sorted(expected):
                try:
                    source.download(name, zone)
                except SFTPError as exc:
                    failed.append((name, str(exc)))
            assert [n for n, _ in failed] == [huge], failed
            assert "No space left" in failed[0][1]
            assert zone.get(huge) is None, "a partial file landed under the real name"
            assert not [p for p in landing.iterdir() if p.name.endswith(".part")]
            # The operator frees space; the next run lands the file whole and loads everything.
            subprocess.run(
                ["mount", "-o", "remount,size=16m", str(landing)], check=True, timeout=30
            )
            source.download(huge, zone)
        conn = open_connection(tmp_path / "w.duckdb")
        try:
            apply_migrations(conn)
            for name in sorted(expected):
                ingest_landed(conn, zone, name, _decryptor(gpg_home))
        finally:
            conn.close()
        lost, duplicated = read_event_figures(tmp_path / "w.duckdb", expected)
        scenario.note = "tmpfs size=2m (mounted as root), then remounted at 16m"
        scenario.figures(lost=lost, duplicated=duplicated)
        assert (lost, duplicated) == (0, 0)
    finally:
        subprocess.run(["umount", "-l", str(landing)], capture_output=True, timeout=30, check=False)
