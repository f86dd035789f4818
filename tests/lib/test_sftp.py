"""SFTPSource against a real OpenSSH sshd (tests/support/sshd.py)."""

import hashlib
import os
import socket
import threading
import time

import pytest

from responsys_assets.lib.file_names import UnsafeFileName
from responsys_assets.lib.landing import LandingZone
from responsys_assets.lib.sftp import (
    HostKeyError,
    InvalidPrivateKey,
    RemoteFile,
    SFTPAuthError,
    SFTPError,
    load_private_key,
)
from tests.support.sftp_sources import openssh_source


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa", "ed25519"])
def test_login_and_list_with_each_key_type(sshd, sftp_dir, key_type):
    (sftp_dir / "b.csv").write_bytes(b"12345")
    (sftp_dir / "a.csv").write_bytes(b"1")
    (sftp_dir / ".hidden.csv").write_bytes(b"x")
    (sftp_dir / "folder").mkdir()
    (sftp_dir / "link.csv").symlink_to(sftp_dir / "a.csv")
    os.utime(sftp_dir / "a.csv", (1_700_000_000, 1_700_000_000))

    with openssh_source(sshd, sftp_dir, key_type) as source:
        files = source.list_files()

    assert [f.name for f in files] == ["a.csv", "b.csv"]
    assert files[0] == RemoteFile(name="a.csv", size=1, mtime=1_700_000_000)
    assert files[1].size == 5


def test_hashed_known_hosts_entries_are_understood(sshd, sftp_dir):
    assert "|1|" in sshd.hashed_known_hosts_path.read_text()
    hashed = str(sshd.hashed_known_hosts_path)
    with openssh_source(sshd, sftp_dir, known_hosts_path=hashed) as source:
        assert source.list_files() == []


def test_unknown_host_key_is_refused_and_not_added(sshd, sftp_dir, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    with pytest.raises(HostKeyError) as caught:
        openssh_source(sshd, sftp_dir, known_hosts_path=str(known_hosts)).list_files()
    message = str(caught.value)
    assert f"{sshd.host}:{sshd.port}" in message
    assert sshd.host_key_fingerprint in message
    assert str(known_hosts) in message
    assert "ssh-keyscan" in message
    assert known_hosts.read_text() == ""


def test_missing_known_hosts_file_is_a_host_key_error(sshd, sftp_dir, tmp_path):
    with pytest.raises(HostKeyError, match="does not exist"):
        openssh_source(sshd, sftp_dir, known_hosts_path=str(tmp_path / "nope")).list_files()


def test_changed_host_key_is_refused_naming_host_and_fingerprint_not_key(sshd, sftp_dir):
    source = openssh_source(sshd, sftp_dir, known_hosts_path=str(sshd.wrong_known_hosts_path))
    with pytest.raises(HostKeyError) as caught:
        source.list_files()
    message = str(caught.value)
    assert f"{sshd.host}:{sshd.port}" in message
    assert sshd.host_key_fingerprint in message
    assert "ssh-ed25519" in message
    assert str(sshd.wrong_known_hosts_path) in message
    assert sshd.host_public_key not in message
    assert "PRIVATE KEY" not in message and "PRIVATE KEY" not in repr(source)


def test_wrong_user_is_an_auth_error_without_key_material(sshd, sftp_dir):
    source = openssh_source(sshd, sftp_dir, username="nobody-here")
    with pytest.raises(SFTPAuthError) as caught:
        source.list_files()
    key_body = sshd.client_keys["ed25519"].splitlines()[1]
    assert "nobody-here" in str(caught.value)
    assert key_body not in str(caught.value)


def test_unreadable_private_key_error_has_no_key_material(sshd):
    text = sshd.client_keys["ed25519"]
    broken = text.replace(text.splitlines()[2], "A" * 70)
    with pytest.raises(InvalidPrivateKey) as caught:
        load_private_key(broken)
    assert "AAAA" not in str(caught.value)
    with pytest.raises(InvalidPrivateKey, match="not a PEM"):
        load_private_key("not a key")


def test_private_key_with_escaped_newlines_loads(sshd):
    escaped = sshd.client_keys["ecdsa"].replace("\n", "\\n")
    assert load_private_key(escaped).get_name().startswith("ecdsa-sha2")


def test_download_lands_file_with_matching_sha256(sshd, sftp_dir, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (sftp_dir / "events.csv.gpg").write_bytes(data)
    zone = LandingZone(tmp_path / "landing")
    seen = []

    with openssh_source(sshd, sftp_dir) as source:
        landed = source.download(
            "events.csv.gpg", zone, progress=lambda d, t: seen.append((d, t))
        ).landed

    assert landed.sha256 == hashlib.sha256(data).hexdigest()
    assert landed.path.read_bytes() == data
    assert seen[-1] == (len(data), len(data))


def test_download_of_missing_file_fails_naming_it(sshd, sftp_dir, tmp_path):
    with openssh_source(sshd, sftp_dir) as source, pytest.raises(SFTPError, match="nope.csv"):
        source.download("nope.csv", LandingZone(tmp_path / "landing"))
    assert list((tmp_path / "landing").iterdir()) == []


def test_hostile_remote_names_never_touch_disk(sshd, sftp_dir, tmp_path):
    (sftp_dir.parent / "outside.txt").write_bytes(b"secret")
    (sftp_dir / "..evil").write_bytes(b"evil")
    (sftp_dir / "a\nb").write_bytes(b"newline")
    workdir = tmp_path / "work"
    zone = LandingZone(workdir / "landing")

    with openssh_source(sshd, sftp_dir) as source:
        assert [f.name for f in source.list_files()] == ["a\nb"]
        for name in ["../outside.txt", "..evil", "a\nb", "/etc/passwd"]:
            with pytest.raises(UnsafeFileName):
                source.download(name, zone)

    assert list(zone.root.iterdir()) == []
    assert [p.name for p in workdir.iterdir()] == ["landing"]
    assert not (workdir / "outside.txt").exists()


def test_file_still_being_written_is_not_ready(sshd, sftp_dir):
    (sftp_dir / "done.csv").write_bytes(b"complete")
    growing = sftp_dir / "growing.csv"
    growing.write_bytes(b"start")
    stop = threading.Event()

    def grow() -> None:
        with open(growing, "ab") as f:
            for _ in range(100):  # at most ~2 s
                if stop.is_set():
                    return
                f.write(b"more")
                f.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=grow)
    with openssh_source(sshd, sftp_dir) as source:
        writer.start()
        try:
            ready = source.list_ready_files(settle_seconds=0.4)
        finally:
            stop.set()
            writer.join(5)
        assert [f.name for f in ready] == ["done.csv"]
        assert [f.name for f in source.list_ready_files(settle_seconds=0.1)] == [
            "done.csv",
            "growing.csv",
        ]


def test_ready_suffix_gates_files(sshd, sftp_dir):
    for name in ["a.csv.gpg", "b.csv.gpg", "c.csv.gpg", "d.csv.gpg"]:
        (sftp_dir / name).write_bytes(b"data")
    (sftp_dir / "a.csv.gpg.ready").write_bytes(b"")
    (sftp_dir / "b.csv.ready").write_bytes(b"")
    (sftp_dir / "c.ready").write_bytes(b"")

    with openssh_source(sshd, sftp_dir, ready_suffix=".ready") as source:
        assert [f.name for f in source.list_files()] == [
            "a.csv.gpg",
            "b.csv.gpg",
            "c.csv.gpg",
            "d.csv.gpg",
        ]
        ready = source.list_ready_files(settle_seconds=0.05)
    assert [f.name for f in ready] == ["a.csv.gpg", "b.csv.gpg", "c.csv.gpg"]


def test_upload_is_atomic(sshd, sftp_dir, tmp_path):
    data = os.urandom(8 * 1024 * 1024)
    local = tmp_path / "export.csv"
    local.write_bytes(data)
    final = sftp_dir / "export.csv"
    sizes_seen = set()
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < deadline:
            try:
                sizes_seen.add(final.stat().st_size)
            except FileNotFoundError:
                pass
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with openssh_source(sshd, sftp_dir) as source:
            source.upload(local, "export.csv")
            # Uploading again replaces the file, still atomically.
            local.write_bytes(data[::-1])
            source.upload(local, "export.csv")
    finally:
        done.set()
        watcher.join(5)

    assert final.read_bytes() == data[::-1]
    assert sizes_seen == {len(data)}  # never a partial file under the final name
    assert sorted(p.name for p in sftp_dir.iterdir()) == ["export.csv"]


def test_upload_refuses_unsafe_remote_name(sshd, sftp_dir, tmp_path):
    local = tmp_path / "x.csv"
    local.write_bytes(b"x")
    with openssh_source(sshd, sftp_dir) as source, pytest.raises(UnsafeFileName):
        source.upload(local, "../x.csv")
    assert not (sftp_dir.parent / "x.csv").exists()


def test_connection_refused_is_retried_then_reported(sshd, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = openssh_source(sshd, tmp_path, port=port, max_attempts=3, backoff_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(SFTPError, match=r"after 3 attempt\(s\)"):
        source.list_files()
    assert time.monotonic() - started >= 0.15  # 0.05 + 0.1 of backoff


def test_reconnects_after_sshd_restart(sshd, sftp_dir):
    (sftp_dir / "a.csv").write_bytes(b"a")
    with openssh_source(sshd, sftp_dir, max_attempts=3) as source:
        assert [f.name for f in source.list_files()] == ["a.csv"]
        # Break the open connection (as a network drop would) and restart the server.
        source._client.get_transport().close()
        sshd.restart()
        assert [f.name for f in source.list_files()] == ["a.csv"]
