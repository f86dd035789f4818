"""SFTP faults at random points (several seeds): a connection dropped mid-download and
mid-listing, sshd restarted during a run, a file replaced between listing and download.
After each, every file is landed complete and loaded once: no event lost or duplicated."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import duckdb
import pytest

from responsys_assets.defs.ingest.planning import plan_files
from responsys_assets.lib.landing import LandedFileChanged, LandingZone
from responsys_assets.lib.pgp import Decryptor
from responsys_assets.lib.sftp import SFTPSource
from responsys_assets.sandbox.keys import ensure_ssh_keys
from responsys_assets.sandbox.sftp_server import SandboxSFTPServer
from responsys_assets.warehouse import apply_migrations
from tests.reliability.files import ConnectFiles, make_connect_files
from tests.reliability.support import CuttingProxy, csv_data_rows, event_figures, ingest_landed

pytestmark = pytest.mark.reliability
CATEGORY = "fault: SFTP"
SEEDS = [1, 2, 3]


@pytest.fixture(scope="module")
def files(tmp_path_factory, gpg_home) -> ConnectFiles:
    return make_connect_files(tmp_path_factory.mktemp("connect"), gpg_home)


@pytest.fixture(scope="module")
def decryptor(gpg_home):
    with Decryptor(gpg_home.private_key_armored, gpg_home.passphrase) as d:
        yield d


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def land_and_load(source: SFTPSource, tmp: Path, files: ConnectFiles, decryptor) -> tuple:
    """List, download every file, load each; returns (lost, duplicated, zone)."""
    zone = LandingZone(tmp / "landing")
    listed = {f.name for f in source.list_files()}
    assert set(files.names) <= listed
    conn = duckdb.connect(str(tmp / "w.duckdb"))
    try:
        apply_migrations(conn)
        for name in files.names:
            landed = source.download(name, zone).landed
            assert landed.sha256 == sha256(files.folder / name), f"{name} landed incomplete"
            ingest_landed(conn, zone, name, decryptor)
        return (*event_figures(conn, files.expected), zone)
    finally:
        conn.close()


def no_partial_files(zone: LandingZone) -> bool:
    return not [p for p in zone.root.iterdir() if p.name.endswith(".part")]


@pytest.fixture
def sandbox_sftp(tmp_path, files):
    root = tmp_path / "sftp"
    files.copy_to(root / "outbound")
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
    server = SandboxSFTPServer(root, keys.host_key_path, keys.client_public_key)
    port = server.start()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", port)
    source = SFTPSource(
        host="127.0.0.1",
        port=port,
        username="responsys",
        private_key=keys.client_key_path.read_text(),
        known_hosts_path=str(keys.known_hosts_path),
        remote_dir="/outbound",
        backoff_seconds=0.05,
        read_timeout=10,
    )
    yield server, source
    source.close()
    server.stop()


@pytest.mark.parametrize("seed", SEEDS)
def test_connection_dropped_mid_download(seed, tmp_path, files, decryptor, sandbox_sftp, scenario):
    server, source = sandbox_sftp
    total = sum((files.folder / n).stat().st_size for n in files.names)
    server.drop_after_bytes = random.Random(seed).randint(1, total - 1)
    scenario.note = f"cut after {server.drop_after_bytes:,} of {total:,} bytes"
    lost, duplicated, zone = land_and_load(source, tmp_path, files, decryptor)
    scenario.figures(lost=lost, duplicated=duplicated)
    assert server.drops == 1, "the fault did not happen"
    assert (lost, duplicated) == (0, 0)
    assert no_partial_files(zone)


def sshd_source(sshd, folder: Path, port: int, known_hosts: Path, **kw) -> SFTPSource:
    return SFTPSource(
        host=sshd.host,
        port=port,
        username=sshd.username,
        private_key=sshd.client_keys["ed25519"],
        known_hosts_path=str(known_hosts),
        remote_dir=str(folder),
        read_timeout=10,
        **kw,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_connection_dropped_mid_listing(seed, tmp_path, sshd, sftp_dir, files, decryptor, scenario):
    files.copy_to(sftp_dir)
    for i in range(600):  # a long folder listing (many SFTP packets), as after months of files
        (sftp_dir / f"10001_UNKNOWNFEED_{20200101 + i:08d}_000000.txt").write_text("x")
    expected_names = set(os.listdir(sftp_dir))
    # Measure the bytes the server sends for login alone and for login + listing.
    with CuttingProxy(sshd.port, cut_after=10**12) as probe:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{probe.port} ssh-ed25519 {sshd.host_public_key}\n")
        with sshd_source(sshd, sftp_dir, probe.port, known) as s:
            s._connect()
            time.sleep(0.2)
            login = probe.bytes_down
            s.list_files()
            time.sleep(0.2)
            listing = probe.bytes_down
    assert listing - login > 20_000, "the listing is too short to cut in the middle"
    cut = random.Random(seed).randint(login + 1, listing - 1)
    with CuttingProxy(sshd.port, cut_after=cut) as proxy:
        known.write_text(f"[127.0.0.1]:{proxy.port} ssh-ed25519 {sshd.host_public_key}\n")
        with sshd_source(sshd, sftp_dir, proxy.port, known, backoff_seconds=0.05) as source:
            listed = {f.name for f in source.list_files()}
            assert proxy.cuts == 1, "the fault did not happen"
            assert listed == expected_names, "a listing after a drop must be complete"
            lost, duplicated, zone = land_and_load(source, tmp_path, files, decryptor)
    scenario.note = f"cut at byte {cut - login:,} of a {listing - login:,}-byte listing"
    scenario.figures(lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_sshd_restarted_during_a_run(seed, tmp_path, sshd, sftp_dir, files, decryptor, scenario):
    files.copy_to(sftp_dir)
    rng = random.Random(seed)
    errors: list[BaseException] = []
    restarted = threading.Event()

    def restart() -> None:
        try:
            time.sleep(rng.uniform(0.05, 0.6))
            sshd.stop()
            time.sleep(rng.uniform(0.3, 0.8))
            sshd.start()
            restarted.set()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    zone = LandingZone(tmp_path / "landing")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    apply_migrations(conn)
    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    try:
        # One connection per file, as one Dagster run per file opens its own.
        for _ in range(3):
            for name in files.names:
                with sshd_source(
                    sshd, sftp_dir, sshd.port, sshd.known_hosts_path, backoff_seconds=0.2
                ) as source:
                    source.download(name, zone)
                if restarted.is_set() or errors:
                    break
            if restarted.is_set() or errors:
                break
        thread.join(15)
        assert not errors, errors
        assert restarted.is_set(), "sshd was not restarted during the run"
        with sshd_source(sshd, sftp_dir, sshd.port, sshd.known_hosts_path) as source:
            for name in files.names:
                source.download(name, zone)  # the rest of the run, after the restart
        for name in files.names:
            ingest_landed(conn, zone, name, decryptor)
        lost, duplicated = event_figures(conn, files.expected)
    finally:
        conn.close()
        if sshd.process is None:
            sshd.start()
    scenario.figures(lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    assert no_partial_files(zone)


def replace_atomically(path: Path, content: bytes) -> None:
    temp = path.with_name("." + path.name + ".new")
    temp.write_bytes(content)
    os.replace(temp, path)


@pytest.mark.parametrize("seed", SEEDS)
def test_file_replaced_between_listing_and_download(
    seed, tmp_path, sshd, sftp_dir, files, decryptor, scenario
):
    files.copy_to(sftp_dir)
    rng = random.Random(seed)
    plain = [n for n in files.names if not n.endswith(".gpg")]
    name = rng.choice(plain)
    path = sftp_dir / name
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)
    extra = rng.randint(1, max(1, len(lines) - 1))
    replacement = original + b"".join(rng.choice(lines[1:]) for _ in range(extra))
    expected = dict(files.expected)
    zone = LandingZone(tmp_path / "landing")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    apply_migrations(conn)
    try:
        with sshd_source(sshd, sftp_dir, sshd.port, sshd.known_hosts_path) as source:
            first_listing = source.list_files()
            replace_atomically(path, replacement)  # Connect rewrites the file after our listing
            for n in files.names:
                source.download(n, zone)
                ingest_landed(conn, zone, n, decryptor)
            # The landed copy is one whole version (the new one), never a mix.
            assert zone.get(name).sha256 == hashlib.sha256(replacement).hexdigest()
            (tmp_path / "new.txt").write_bytes(replacement)
            expected[name] = csv_data_rows(tmp_path / "new.txt")
            # The next sensor pass sees the change and asks again; nothing is merged silently.
            cursor = {f.name: f"{f.size}:{f.mtime}" for f in first_listing}
            plan = plan_files(source.list_files(), set(files.names), cursor)
            assert name in plan.changed
            # Replaced once more after it landed: the landing zone refuses, the load stays.
            replace_atomically(path, original)
            with pytest.raises(LandedFileChanged):
                source.download(name, zone)
        lost, duplicated = event_figures(conn, expected)
    finally:
        conn.close()
    scenario.note = f"{name} grew by {extra} rows between listing and download"
    scenario.figures(lost=lost, duplicated=duplicated)
    assert zone.get(name).sha256 == hashlib.sha256(replacement).hexdigest()
    assert (lost, duplicated) == (0, 0)
