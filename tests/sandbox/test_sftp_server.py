"""The embedded sandbox SFTP server, driven by the real SFTPSource and a raw paramiko client."""

import hashlib
import os
import stat
import threading
import time

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from responsys_assets.lib.landing import LandingZone
from responsys_assets.lib.sftp import SFTPAuthError, SFTPError, SFTPSource
from responsys_assets.sandbox.keys import ensure_ssh_keys
from responsys_assets.sandbox.sftp_server import SandboxSFTPServer
from tests.support.sftp_sources import sandbox_source


@pytest.fixture
def sandbox(tmp_path):
    """A running sandbox server with keys and a known_hosts file for its port."""
    root = tmp_path / "root"
    root.mkdir()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
    server = SandboxSFTPServer(root, keys.host_key_path, keys.client_public_key)
    port = server.start()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", port)
    yield server, keys
    server.stop()


def _source(server, keys, **overrides) -> SFTPSource:
    return sandbox_source(server.port, keys, **{"max_attempts": 3, **overrides})


def _raw_sftp(server, keys) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    client = paramiko.SSHClient()
    client.load_system_host_keys(str(keys.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=server.port,
        username="responsys",
        pkey=paramiko.Ed25519Key(filename=str(keys.client_key_path)),
        timeout=5,
        allow_agent=False,
        look_for_keys=False,
    )
    return client, client.open_sftp()


def test_keys_are_generated_once_and_known_hosts_follows_the_port(tmp_path):
    first = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 2222)
    host_key = first.host_key_path.read_bytes()
    second = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 3333)

    assert second.host_key_path.read_bytes() == host_key
    assert second.client_public_key == first.client_public_key
    assert first.client_public_key.startswith("ssh-ed25519 ")
    assert host_key.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    for path in (second.host_key_path, second.client_key_path, second.known_hosts_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    known = second.known_hosts_path.read_text()
    assert known.startswith("[127.0.0.1]:3333 ssh-ed25519 ") and "2222" not in known


def test_list_and_download_through_sftp_source(sandbox, tmp_path):
    server, keys = sandbox
    data = os.urandom(700_000)
    (server.root / "events.csv.gpg").write_bytes(data)
    (server.root / "other.csv").write_bytes(b"x")

    with _source(server, keys) as source:
        assert [f.name for f in source.list_files()] == ["events.csv.gpg", "other.csv"]
        landed = source.download("events.csv.gpg", LandingZone(tmp_path / "landing")).landed
    assert landed.sha256 == hashlib.sha256(data).hexdigest()


def test_upload_rename_and_folders(sandbox, tmp_path):
    server, keys = sandbox
    local = tmp_path / "export.csv"
    local.write_bytes(b"a,b\n1,2\n")
    with _source(server, keys) as source:
        source.upload(local, "export.csv")
        source.upload(local, "export.csv")  # posix-rename replaces
    assert (server.root / "export.csv").read_bytes() == b"a,b\n1,2\n"
    assert sorted(p.name for p in server.root.iterdir()) == ["export.csv"]

    client, sftp = _raw_sftp(server, keys)
    with client:
        sftp.mkdir("/sub")
        sftp.rename("/export.csv", "/sub/moved.csv")
        assert sftp.listdir("/sub") == ["moved.csv"]
        sftp.remove("/sub/moved.csv")
        sftp.rmdir("/sub")
    assert list(server.root.iterdir()) == []


def test_dropped_connection_mid_download_is_retried(sandbox, tmp_path):
    server, keys = sandbox
    data = os.urandom(2 * 1024 * 1024)
    (server.root / "big.csv.gpg").write_bytes(data)
    server.drop_after_bytes = 300_000

    with _source(server, keys) as source:
        landed = source.download("big.csv.gpg", LandingZone(tmp_path / "landing")).landed

    assert server.drops == 1
    assert landed.sha256 == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in landed.path.parent.iterdir()) == [
        "big.csv.gpg",
        "big.csv.gpg.sha256",
    ]


def test_wrong_client_key_is_refused(sandbox):
    server, keys = sandbox
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    with pytest.raises(SFTPAuthError):
        _source(server, keys, private_key=other.decode()).list_files()
    with pytest.raises(SFTPAuthError):
        _source(server, keys, username="someone-else").list_files()


def test_paths_cannot_escape_the_root(sandbox, tmp_path):
    server, keys = sandbox
    (tmp_path / "outside.txt").write_bytes(b"secret")
    (server.root / "link.txt").symlink_to(tmp_path / "outside.txt")
    (server.root / "inside.txt").write_bytes(b"ok")

    client, sftp = _raw_sftp(server, keys)
    with client:
        assert sftp.normalize("../../..") == "/"
        assert sorted(sftp.listdir("/../..")) == ["inside.txt", "link.txt"]
        with pytest.raises(FileNotFoundError):
            sftp.open("/../outside.txt").read()
        with pytest.raises(PermissionError):
            sftp.open("/link.txt").read()
        with pytest.raises(PermissionError):
            sftp.open("/link.txt", "w").write(b"overwrite")
    assert (tmp_path / "outside.txt").read_bytes() == b"secret"


def test_stop_closes_live_connections_quickly(tmp_path):
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
    server = SandboxSFTPServer(tmp_path / "root", keys.host_key_path, keys.client_public_key)
    port = server.start()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", port)
    client, sftp = _raw_sftp(server, keys)
    before = threading.active_count()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    with client, pytest.raises((OSError, EOFError, paramiko.SSHException)):
        sftp.listdir("/")
    assert threading.active_count() < before


def test_refuses_non_loopback_address(tmp_path):
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
    with pytest.raises(ValueError, match="loopback"):
        SandboxSFTPServer(tmp_path, keys.host_key_path, keys.client_public_key, host="0.0.0.0")


def test_drop_without_attempts_left_fails_naming_the_file(sandbox, tmp_path):
    server, keys = sandbox
    (server.root / "big.csv.gpg").write_bytes(os.urandom(1024 * 1024))
    server.drop_after_bytes = 100_000
    zone = LandingZone(tmp_path / "landing")

    with _source(server, keys, max_attempts=1) as source:
        with pytest.raises(SFTPError, match=r"'big.csv.gpg'.*after 1 attempt"):
            source.download("big.csv.gpg", zone)
    assert list(zone.root.iterdir()) == []


def test_empty_file_downloads(sandbox, tmp_path):
    server, keys = sandbox
    (server.root / "empty.csv").write_bytes(b"")
    with _source(server, keys) as source:
        landed = source.download("empty.csv", LandingZone(tmp_path / "landing")).landed
    assert landed.size == 0
    assert landed.sha256 == hashlib.sha256(b"").hexdigest()
