"""SFTP source for Responsys Connect files, on paramiko.

The server's host key must already be in a known_hosts file (unknown or changed keys are
refused, never added). Dropped connections are retried with exponential backoff; a download
is restarted from the beginning into a fresh writer of its sink (the landing zone, say), so a
sink only ever keeps complete files. Reads and writes use the largest request size the server
announces (limits@openssh.com, up to 255 KiB) and 32 KiB, which every server accepts, otherwise.
"""

from __future__ import annotations

import io
import posixpath
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import paramiko
from paramiko.sftp import (
    CMD_DATA,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_READ,
    CMD_STATUS,
    CMD_VERSION,
    int64,
)

from responsys_assets.lib.file_names import safe_local_name

# Request sizes. 32 KiB is what every SFTP server answers in full; larger requests are used
# only up to the limits a server announces (limits@openssh.com), because per reply the
# Python cost is the same: 255 KiB replies make a download ~2x faster than 32 KiB ones.
DEFAULT_REQUEST_SIZE = 32 * 1024
MAX_REQUEST_SIZE = 255 * 1024  # OpenSSH's own maximum read and write length
MIN_REQUEST_SIZE = 512  # never shrink below this after short replies (OpenSSH's sftp does too)
PACKET_HEADROOM = 1024  # request/reply header bytes kept below the server's packet limit
WINDOW_SIZE = 8 * 1024 * 1024  # bytes requested ahead; bounds memory whatever the file size
MAX_PREFETCH_REQUESTS = 64
CHANNEL_WINDOW = 64 * 1024 * 1024  # SSH flow-control window: keeps the pipe full on fast links
CHANNEL_MAX_PACKET = 256 * 1024  # lets the server send a 255 KiB reply in one SSH packet
LIMITS_EXTENSION = "limits@openssh.com"
MAX_BACKOFF_SECONDS = 60.0

T = TypeVar("T")


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


W = TypeVar("W", bound=Writable)


class DownloadSink(Protocol[W]):
    """Where a download goes: `write(name)` opens a writer for one attempt.

    A writer that leaves by an exception must keep nothing (the attempt is retried or failed).
    `lib.landing.LandingZone` is one; a test may use a folder or memory.
    """

    def write(self, name: str) -> AbstractContextManager[W]: ...


class SFTPError(Exception):
    """An SFTP operation failed (after retries, where retrying made sense)."""


class HostKeyError(SFTPError):
    """The server's host key is unknown or differs from the one in known_hosts."""


class SFTPAuthError(SFTPError):
    """The server refused our user name and key."""


class InvalidPrivateKey(SFTPError):
    """The private key text could not be read (the message never contains the key)."""


class _IncompleteDownload(SFTPError):
    """Fewer or more bytes arrived than the server announced; worth another attempt."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: int


@dataclass(frozen=True)
class RequestSizes:
    """Bytes per SFTP read and write request on one connection."""

    read: int = DEFAULT_REQUEST_SIZE
    write: int = DEFAULT_REQUEST_SIZE


def request_sizes(limits: tuple[int, int, int, int] | None) -> RequestSizes:
    """Sizes from a limits@openssh.com reply (max packet, read, write, open handles).

    A zero or missing limit means "not stated": 32 KiB, which every server answers in full.
    """
    if limits is None:
        return RequestSizes()
    max_packet, max_read, max_write, _ = limits
    cap = MAX_REQUEST_SIZE
    if max_packet > PACKET_HEADROOM:
        cap = min(cap, max_packet - PACKET_HEADROOM)

    def size(limit: int) -> int:
        return min(limit, cap) if limit > 0 else min(DEFAULT_REQUEST_SIZE, cap)

    return RequestSizes(read=max(MIN_REQUEST_SIZE, size(max_read)), write=size(max_write))


def parse_version_extensions(data: bytes) -> dict[str, bytes]:
    """The (name, data) extension pairs of an SSH_FXP_VERSION packet body (after its type)."""
    extensions: dict[str, bytes] = {}
    fields: list[bytes] = []
    position = 4  # the uint32 protocol version
    while position + 4 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 4 + length
        if end > len(data):
            break  # truncated: keep what was whole
        fields.append(data[position + 4 : end])
        position = end
        if len(fields) == 2:
            extensions[fields[0].decode("utf-8", "replace")] = fields[1]
            fields = []
    return extensions


class _SFTPClient(paramiko.SFTPClient):
    """paramiko's client, keeping the extensions the server announces (paramiko drops them)."""

    server_extensions: dict[str, bytes] = {}

    def _read_packet(self):
        t, data = super()._read_packet()
        if t == CMD_VERSION:
            self.server_extensions = parse_version_extensions(data)
        return t, data

    def limits(self) -> tuple[int, int, int, int] | None:
        """The server's limits@openssh.com reply, or None when it does not offer one."""
        if LIMITS_EXTENSION not in self.server_extensions:
            return None
        try:
            t, msg = self._request(CMD_EXTENDED, LIMITS_EXTENSION)
        except OSError:
            return None  # advertised but refused: fall back to what works everywhere
        if t != CMD_EXTENDED_REPLY:
            return None
        return (msg.get_int64(), msg.get_int64(), msg.get_int64(), msg.get_int64())


class _Replies:
    """Where paramiko's client delivers the replies to our read requests, by request id."""

    def __init__(self) -> None:
        self.by_request: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.by_request[num] = (t, msg)


def _read_reply(sftp: paramiko.SFTPClient, replies: _Replies, num: int) -> bytes | None:
    """The data of read request `num`; None at end of file."""
    while num not in replies.by_request:
        sftp._read_response()  # one packet, handed to whoever asked for it
    t, msg = replies.by_request.pop(num)
    if t == CMD_STATUS:
        try:
            sftp._convert_status(msg)
        except EOFError:
            return None
        raise SFTPError("The SFTP server answered a read with a success status but no data.")
    if t != CMD_DATA:
        raise SFTPError(f"The SFTP server answered a read with packet type {t}, not data.")
    return msg.get_binary()


def read_pipelined(
    sftp: paramiko.SFTPClient, handle: bytes, size: int, request_size: int
) -> Iterator[bytes]:
    """Yield bytes 0..size of an open remote file, in order, with reads pipelined.

    Up to WINDOW_SIZE bytes are requested ahead. A server may answer a read with fewer bytes
    than asked (the protocol allows it, and some servers cap reads below what they announce):
    the missing part is requested at once, ahead of the rest, and later requests shrink to the
    size the server did send, as OpenSSH's sftp does. (paramiko's readv fills such gaps too,
    but silently, one round trip at a time for the rest of its batch.)
    """
    replies = _Replies()
    pending: deque[tuple[int, int, int]] = deque()  # (request id, offset, length), in order

    def request(offset: int, length: int) -> tuple[int, int, int]:
        return sftp._async_request(replies, CMD_READ, handle, int64(offset), length), offset, length

    next_offset = 0
    while pending or next_offset < size:
        ahead = max(1, min(MAX_PREFETCH_REQUESTS, WINDOW_SIZE // request_size))
        while len(pending) < ahead and next_offset < size:
            pending.append(request(next_offset, min(request_size, size - next_offset)))
            next_offset += pending[-1][2]
        num, offset, length = pending.popleft()
        data = _read_reply(sftp, replies, num)
        if data is None:
            raise _IncompleteDownload(
                f"the file ended at byte {offset} of the {size} announced when listed"
            )
        if len(data) > length:
            raise SFTPError(
                f"The SFTP server sent {len(data)} bytes for a read of {length} at offset "
                f"{offset}; it is not following the SFTP protocol."
            )
        if len(data) < length:
            request_size = min(request_size, max(MIN_REQUEST_SIZE, len(data)))
            end = offset + length
            rest = [
                request(at, min(request_size, end - at))
                for at in range(offset + len(data), end, request_size)
            ]
            pending.extendleft(reversed(rest))
        yield data


def load_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    """Read an OpenSSH-format RSA, ECDSA or Ed25519 private key (or a PEM RSA key)."""
    text = (text or "").strip()
    if "\n" not in text and "\\n" in text:
        # Keys pasted into environment variables often arrive with escaped newlines.
        text = text.replace("\\n", "\n")
    if "PRIVATE KEY-----" not in text:
        raise InvalidPrivateKey(
            "The SFTP private key is not a PEM/OpenSSH private key: expected the whole key "
            "file's text, header and footer lines included (`ssh-keygen -t ed25519` writes one)."
        )
    text += "\n"
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise InvalidPrivateKey(
                "The SFTP private key is encrypted; provide its passphrase."
            ) from None
        except (paramiko.SSHException, ValueError, TypeError):
            continue
    hint = " or the passphrase is wrong" if passphrase else ""
    raise InvalidPrivateKey(
        "The SFTP private key could not be read: it is not an RSA, ECDSA or Ed25519 key in "
        f"OpenSSH or PEM format{hint}."
    )


def _key_description(key: paramiko.PKey) -> str:
    return f"{key.get_name()} key with fingerprint {key.fingerprint}"


class _RejectUnknownHostKey(paramiko.MissingHostKeyPolicy):
    """RejectPolicy with an error message that says what to do."""

    def __init__(self, host: str, port: int, known_hosts_path: str) -> None:
        self._where = f"{host}:{port}"
        self._host, self._port, self._path = host, port, known_hosts_path

    def missing_host_key(self, client, hostname, key) -> None:
        raise HostKeyError(
            f"The SFTP server {self._where} offered an unknown host key ({_key_description(key)}); "
            f"it is not in the known_hosts file {self._path}. Confirm the fingerprint with the "
            "server's operator, then add the key, e.g. "
            f"`ssh-keyscan -p {self._port} {self._host} >> {self._path}`."
        )


def _is_connection_error(error: BaseException) -> bool:
    # SSHException covers "Server connection dropped"; a timeout means the channel is stuck.
    return isinstance(
        error,
        EOFError | paramiko.SSHException | TimeoutError | ConnectionError | _IncompleteDownload,
    )


class SFTPSource:
    """A folder on an SFTP server: list files, download into any sink, upload exports.

    Holds one connection, opened on first use; use one instance per thread.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        private_key: str,
        known_hosts_path: str,
        remote_dir: str,
        connect_timeout: float = 15.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        ready_suffix: str | None = None,
        passphrase: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.known_hosts_path = str(known_hosts_path)
        self.remote_dir = remote_dir
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.ready_suffix = ready_suffix or None
        self._pkey = load_private_key(private_key, passphrase)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.request_sizes = RequestSizes()  # of the current connection, set on connect

    def __repr__(self) -> str:
        return (
            f"SFTPSource(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"remote_dir={self.remote_dir!r})"
        )

    def __enter__(self) -> SFTPSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the next call reconnects)."""
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        for closable in (sftp, client):
            if closable is not None:
                try:
                    closable.close()
                except (OSError, EOFError, paramiko.SSHException):
                    pass  # already broken; nothing left to release

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        if not Path(self.known_hosts_path).is_file():
            raise HostKeyError(
                f"The known_hosts file {self.known_hosts_path} for the SFTP server "
                f"{self.host}:{self.port} does not exist. Create it with the server's host key, "
                f"e.g. `ssh-keyscan -p {self.port} {self.host} > {self.known_hosts_path}`, after "
                "confirming the fingerprint with the server's operator."
            )
        client = paramiko.SSHClient()
        try:
            # "system" host keys are read-only for paramiko: it never writes this file.
            client.load_system_host_keys(self.known_hosts_path)
            client.set_missing_host_key_policy(
                _RejectUnknownHostKey(self.host, self.port, self.known_hosts_path)
            )
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                pkey=self._pkey,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            sftp = _SFTPClient.from_transport(
                client.get_transport(),
                window_size=CHANNEL_WINDOW,
                max_packet_size=CHANNEL_MAX_PACKET,
            )
            sftp.get_channel().settimeout(self.read_timeout)
            sizes = request_sizes(sftp.limits())
        except paramiko.BadHostKeyException as e:
            client.close()
            raise HostKeyError(
                f"The SFTP server {self.host}:{self.port} offered a host key that differs from "
                f"the one in {self.known_hosts_path}: offered {_key_description(e.key)}, expected "
                f"{_key_description(e.expected_key)}. This can mean someone is intercepting the "
                "connection. If the server's key was changed on purpose, confirm the new "
                f"fingerprint with its operator and replace the entry for {self.host}:{self.port} "
                f"in {self.known_hosts_path}."
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise SFTPAuthError(
                f"The SFTP server {self.host}:{self.port} refused user {self.username!r} with "
                f"the {_key_description(self._pkey)}. Check the user name and that the "
                "server has this public key installed."
            ) from None
        except BaseException:
            client.close()
            raise
        self._client, self._sftp = client, sftp
        self.request_sizes = sizes
        return sftp

    def _retrying(self, what: str, operation: Callable[[paramiko.SFTPClient], T]) -> T:
        """Run `operation` on a live connection; reconnect and retry on connection errors."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return operation(self._connect())
            except (OSError, EOFError, paramiko.SSHException, _IncompleteDownload) as e:
                transport = self._client.get_transport() if self._client else None
                dropped = transport is None or not transport.is_active()
                if not (_is_connection_error(e) or dropped):
                    # A file-level error (no such file, permission denied): retrying won't help.
                    raise SFTPError(f"{what} on {self.host}:{self.port} failed: {e}") from e
                self.close()
                if attempt == self.max_attempts:
                    raise SFTPError(
                        f"{what} on {self.host}:{self.port} failed after {attempt} attempt(s); "
                        f"last error: {type(e).__name__}: {e}"
                    ) from e
                time.sleep(min(self.backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
        raise AssertionError("unreachable")

    def _remote_path(self, name: str) -> str:
        return posixpath.join(self.remote_dir, name)

    # -- listing ----------------------------------------------------------------------------

    def _list_regular_files(self) -> list[RemoteFile]:
        def listing(sftp: paramiko.SFTPClient) -> list[RemoteFile]:
            return [
                RemoteFile(name=a.filename, size=a.st_size or 0, mtime=int(a.st_mtime or 0))
                for a in sftp.listdir_attr(self.remote_dir)
                if a.st_mode is not None
                and stat.S_ISREG(a.st_mode)
                and not a.filename.startswith(".")
            ]

        return sorted(self._retrying(f"Listing {self.remote_dir!r}", listing), key=lambda f: f.name)

    def _is_marker(self, name: str) -> bool:
        return self.ready_suffix is not None and name.endswith(self.ready_suffix)

    def list_files(self) -> list[RemoteFile]:
        """Regular files in remote_dir, sorted by name (no hidden files, no ready markers)."""
        return [f for f in self._list_regular_files() if not self._is_marker(f.name)]

    def list_ready_files(self, settle_seconds: float = 2.0) -> list[RemoteFile]:
        """Files that are complete: unchanged over `settle_seconds` (and with a ready marker).

        With a `ready_suffix`, a file `a.csv.gpg` is ready when `a.csv.gpg<suffix>`,
        `a.csv<suffix>` or `a<suffix>` exists.
        """
        first = {f.name: f for f in self.list_files()}
        time.sleep(settle_seconds)
        second = self._list_regular_files()
        names = {f.name for f in second}
        ready = []
        for f in second:
            if self._is_marker(f.name) or first.get(f.name) != f:
                continue
            if self.ready_suffix is not None:
                stems = {f.name, f.name.rsplit(".", 1)[0], f.name.split(".", 1)[0]}
                if not any(stem + self.ready_suffix in names for stem in stems):
                    continue
            ready.append(f)
        return ready

    # -- transfers --------------------------------------------------------------------------

    def download(
        self,
        name: str,
        sink: DownloadSink[W],
        progress: Callable[[int, int], None] | None = None,
    ) -> W:
        """Download one file from remote_dir into `sink`; returns the writer that received it.

        Each attempt writes through a fresh `sink.write(name)`; an attempt that fails leaves
        its writer by an exception, so the sink keeps nothing of it.
        """
        safe_local_name(name)
        remote_path = self._remote_path(name)

        def fetch(sftp: paramiko.SFTPClient) -> W:
            size = sftp.stat(remote_path).st_size or 0
            received = reported = 0
            with sftp.open(remote_path, "rb") as remote, sink.write(name) as local:
                for chunk in read_pipelined(sftp, remote.handle, size, self.request_sizes.read):
                    local.write(chunk)
                    received += len(chunk)
                    if progress is not None and received - reported >= WINDOW_SIZE:
                        reported = received
                        progress(reported, size)
                if progress is not None and reported != received:
                    progress(received, size)
                if received != size:
                    raise _IncompleteDownload(
                        f"received {received} bytes of {name!r}, expected {size}"
                    )
            return local

        return self._retrying(f"Downloading {name!r}", fetch)

    def upload(self, local_path: Path, remote_name: str) -> None:
        """Upload a file atomically: to a hidden temp name first, then renamed into place."""
        safe_local_name(remote_name)
        final = self._remote_path(remote_name)
        temp = self._remote_path(f".{remote_name}.part")

        def put(sftp: paramiko.SFTPClient) -> None:
            size = self.request_sizes.write
            with open(local_path, "rb") as source, sftp.open(temp, "wb") as remote:
                remote.set_pipelined(True)
                remote.MAX_REQUEST_SIZE = size  # paramiko's class default is 32 KiB
                while block := source.read(size):
                    remote.write(block)
                sent = source.tell()
            stored = sftp.stat(temp).st_size
            if stored != sent:
                raise OSError(f"upload size mismatch: sent {sent} bytes, the server has {stored}")
            try:
                sftp.posix_rename(temp, final)
            except OSError as e:
                if isinstance(e, TimeoutError | ConnectionError):
                    raise
                # The server lacks the posix-rename extension: plain rename (target must not exist).
                sftp.rename(temp, final)

        self._retrying(f"Uploading {remote_name!r}", put)
