"""SFTP request sizes: large reads and writes where the server announces it takes them
(limits@openssh.com, real OpenSSH), 32 KiB elsewhere, and short or overlong replies never
landing a wrong file. The "other servers" are the sandbox's paramiko SFTP server, run with an
SFTPServer subclass that announces limits it does not keep, refuses the query or cuts files."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable

import paramiko
import pytest
from paramiko.sftp import (
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_INIT,
    CMD_READ,
    CMD_VERSION,
    int64,
)

from responsys_assets.lib.landing import LandingZone
from responsys_assets.lib.sftp import (
    DEFAULT_REQUEST_SIZE,
    LIMITS_EXTENSION,
    MAX_REQUEST_SIZE,
    WINDOW_SIZE,
    RequestSizes,
    SFTPError,
    SFTPSource,
    parse_version_extensions,
    read_pipelined,
    request_sizes,
)
from responsys_assets.sandbox import sftp_server as sandbox_module
from responsys_assets.sandbox.keys import ensure_ssh_keys
from responsys_assets.sandbox.sftp_server import SandboxSFTPServer
from tests.support.sftp_sources import openssh_source, sandbox_source

KIB = 1024


# -- pure functions ------------------------------------------------------------------------


def test_request_sizes_follow_the_announced_limits():
    assert request_sizes(None) == RequestSizes(32 * KIB, 32 * KIB)
    # OpenSSH 9: 256 KiB packets, 255 KiB reads and writes.
    assert request_sizes((256 * KIB, 255 * KIB, 255 * KIB, 0)) == RequestSizes(255 * KIB, 255 * KIB)
    # More than we ever ask for: capped at 255 KiB, and 1 KiB below the packet limit.
    biggest = RequestSizes(MAX_REQUEST_SIZE, MAX_REQUEST_SIZE)
    assert request_sizes((2**20, 2**20, 2**20, 0)) == biggest
    assert request_sizes((64 * KIB, 2**20, 2**20, 0)) == RequestSizes(63 * KIB, 63 * KIB)
    # A small limit is kept (reads never below 512 bytes); zero means "not stated".
    assert request_sizes((34000, 16 * KIB, 8 * KIB, 0)) == RequestSizes(16 * KIB, 8 * KIB)
    assert request_sizes((0, 0, 0, 0)) == RequestSizes(DEFAULT_REQUEST_SIZE, DEFAULT_REQUEST_SIZE)
    assert request_sizes((256 * KIB, 100, 255 * KIB, 0)).read == 512


def test_version_extensions_are_parsed_and_truncation_is_tolerated():
    def string(text: str) -> bytes:
        return struct.pack(">I", len(text)) + text.encode()

    body = struct.pack(">I", 3) + string("limits@openssh.com") + string("1")
    body += string("posix-rename@openssh.com") + string("1")
    assert parse_version_extensions(body) == {
        "limits@openssh.com": b"1",
        "posix-rename@openssh.com": b"1",
    }
    assert parse_version_extensions(body[:-3]) == {"limits@openssh.com": b"1"}
    assert parse_version_extensions(struct.pack(">I", 3)) == {}


# -- real OpenSSH --------------------------------------------------------------------------


def test_openssh_answers_255_kib_reads_in_full(sshd, sftp_dir, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (sftp_dir / "events.csv.gpg").write_bytes(data)

    with openssh_source(sshd, sftp_dir) as source:
        landed = source.download("events.csv.gpg", LandingZone(tmp_path / "landing")).landed
        assert source.request_sizes.read > DEFAULT_REQUEST_SIZE
        assert source.request_sizes == RequestSizes(255 * KIB, 255 * KIB)  # OpenSSH >= 8.6
        # Every reply is as long as asked: no short reads to make up for.
        sftp = source._connect()
        with sftp.open(str(sftp_dir / "events.csv.gpg"), "rb") as remote:
            chunks = list(read_pipelined(sftp, remote.handle, len(data), 255 * KIB))

    assert landed.sha256 == hashlib.sha256(data).hexdigest()
    assert landed.path.read_bytes() == data
    assert [len(c) for c in chunks[:-1]] == [255 * KIB] * (len(chunks) - 1)
    assert b"".join(chunks) == data


def test_upload_with_large_writes_to_openssh(sshd, sftp_dir, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 5)
    local = tmp_path / "export.csv"
    local.write_bytes(data)

    with openssh_source(sshd, sftp_dir) as source:
        source.upload(local, "export.csv")
        assert source.request_sizes.write == 255 * KIB

    assert (sftp_dir / "export.csv").read_bytes() == data
    assert sorted(p.name for p in sftp_dir.iterdir()) == ["export.csv"]


# -- other servers: the sandbox's paramiko server -------------------------------------------


def _server_class(
    limits: tuple[int, int, int, int] | None = None,
    announce: bool = False,
    answer_length: Callable[[int, int], int] | None = None,
    asked: list[int] | None = None,
) -> type[paramiko.SFTPServer]:
    """A paramiko SFTPServer that may announce limits@openssh.com (answering `limits`, or
    refusing the query when None) and answer reads with `answer_length(offset, length)` bytes
    (0 = end of file); `asked` records every read length requested."""

    class Server(paramiko.SFTPServer):
        def _send_server_version(self):
            t, data = self._read_packet()
            if t != CMD_INIT:
                raise paramiko.SFTPError("Incompatible sftp protocol")
            msg = paramiko.Message()
            msg.add_int(3)
            msg.add("check-file", "md5,sha1")
            if announce:
                msg.add(LIMITS_EXTENSION, "1")
            self._send_packet(CMD_VERSION, msg)
            return struct.unpack(">I", data[:4])[0]

        def _process(self, t, request_number, msg):
            rest = msg.get_remainder()
            if t == CMD_EXTENDED and limits is not None:
                if paramiko.Message(rest).get_text() == LIMITS_EXTENSION:
                    fields = [int64(n) for n in limits]
                    self._response(request_number, CMD_EXTENDED_REPLY, *fields)
                    return
            if t == CMD_READ:
                request = paramiko.Message(rest)
                handle, offset, length = (
                    request.get_binary(),
                    request.get_int64(),
                    request.get_int(),
                )
                if asked is not None:
                    asked.append(length)
                if answer_length is not None:
                    changed = paramiko.Message()
                    changed.add_string(handle)
                    changed.add_int64(offset)
                    changed.add_int(answer_length(offset, length))
                    rest = changed.asbytes()
            super()._process(t, request_number, paramiko.Message(rest))

    return Server


@pytest.fixture
def other_server(tmp_path, monkeypatch):
    """Start the sandbox server with a given SFTPServer class; returns (start, folder)."""
    folder = tmp_path / "root"
    folder.mkdir()
    servers: list[SandboxSFTPServer] = []

    def start(server_class: type[paramiko.SFTPServer], **overrides) -> SFTPSource:
        monkeypatch.setattr(sandbox_module, "SFTPServer", server_class)
        keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
        server = SandboxSFTPServer(folder, keys.host_key_path, keys.client_public_key)
        servers.append(server)
        port = server.start()
        keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", port)
        return sandbox_source(port, keys, **overrides)

    yield start, folder
    for server in servers:
        server.stop()


def _download(source: SFTPSource, name: str, zone: LandingZone):
    with source:
        landed = source.download(name, zone).landed
        return landed, source.request_sizes


@pytest.mark.parametrize("announce", [False, True], ids=["not announced", "announced, refused"])
def test_servers_without_limits_get_32_kib_requests(other_server, tmp_path, announce):
    start, folder = other_server
    data = os.urandom(1024 * 1024 + 3)
    (folder / "a.csv").write_bytes(data)
    asked: list[int] = []
    server_class = _server_class(announce=announce, asked=asked)

    landed, sizes = _download(start(server_class), "a.csv", LandingZone(tmp_path / "landing"))

    assert sizes == RequestSizes(32 * KIB, 32 * KIB)
    assert landed.path.read_bytes() == data
    assert max(asked) == 32 * KIB


@pytest.mark.parametrize("cap_kib", [64, 20])
def test_short_replies_are_completed_and_requests_shrink(other_server, tmp_path, cap_kib):
    """The server announces 255 KiB reads but answers at most cap_kib KiB per read."""
    start, folder = other_server
    data = os.urandom(12 * 1024 * 1024 + 11)
    (folder / "a.csv").write_bytes(data)
    asked: list[int] = []
    server_class = _server_class(
        limits=(256 * KIB, 255 * KIB, 255 * KIB, 0),
        announce=True,
        answer_length=lambda offset, length: min(length, cap_kib * KIB),
        asked=asked,
    )
    zone = LandingZone(tmp_path / "landing")

    landed, sizes = _download(start(server_class), "a.csv", zone)

    assert sizes.read == 255 * KIB  # what the server announced
    assert landed.path.read_bytes() == data
    assert landed.sha256 == hashlib.sha256(data).hexdigest()
    # Only the requests in flight when the first short reply came (one window's worth) were
    # too large; each was completed by requests of the server's size, as was all the rest.
    in_flight = WINDOW_SIZE // (255 * KIB)
    assert asked[:in_flight] == [255 * KIB] * in_flight
    assert max(asked[in_flight:]) == cap_kib * KIB
    assert sum(asked[in_flight:]) > len(data) // 2
    assert not [p for p in zone.root.iterdir() if p.name.endswith(".part")]


def test_file_ending_early_lands_nothing(other_server, tmp_path):
    """Reads past 1 MiB answer end-of-file though the file is 2 MiB (it shrank mid-download)."""
    start, folder = other_server
    (folder / "a.csv").write_bytes(os.urandom(2 * 1024 * 1024))
    server_class = _server_class(
        answer_length=lambda offset, length: 0 if offset >= 1024 * 1024 else length
    )
    zone = LandingZone(tmp_path / "landing")

    with pytest.raises(SFTPError, match=r"after 2 attempt\(s\).*ended at byte 1048576"):
        _download(start(server_class), "a.csv", zone)

    assert list(zone.root.iterdir()) == []


def test_reply_longer_than_asked_is_refused(other_server, tmp_path):
    start, folder = other_server
    (folder / "a.csv").write_bytes(os.urandom(1024 * 1024))
    server_class = _server_class(answer_length=lambda offset, length: length + 1)
    zone = LandingZone(tmp_path / "landing")

    with pytest.raises(SFTPError, match="sent 32769 bytes for a read of 32768"):
        _download(start(server_class), "a.csv", zone)

    assert list(zone.root.iterdir()) == []
