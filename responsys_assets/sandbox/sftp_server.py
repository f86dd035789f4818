"""An embedded SFTP server for the sandbox, on paramiko, serving one local folder.

It stands in for the Responsys SFTP host on a laptop: public-key login for one user, the
folder as the SFTP root, and 127.0.0.1 only. `drop_after_bytes` lets tests (and curious
users) cut a download mid-file to see the pipeline retry.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import posixpath
import socket
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.2
_STOP_TIMEOUT_SECONDS = 5.0


class PathOutsideRoot(Exception):
    """A client asked for a path that resolves outside the served folder."""


def _parse_public_key(line: str) -> bytes:
    """The key blob of an OpenSSH public key line ('ssh-ed25519 AAAA... comment')."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("authorized_public_key must look like 'ssh-ed25519 AAAA... [comment]'")
    return base64.b64decode(parts[1])


class SandboxSFTPServer:
    """SFTP server on 127.0.0.1 that serves `root` to one user with one public key."""

    def __init__(
        self,
        root: Path,
        host_key_path: Path,
        authorized_public_key: str,
        username: str = "responsys",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        address = ipaddress.ip_address(host)
        if address.version != 4 or not address.is_loopback:
            raise ValueError(f"The sandbox SFTP server listens on loopback only, not {host!r}.")
        self.root = Path(root).resolve()
        self.username = username
        self.host = host
        self._requested_port = port
        self._host_key = paramiko.Ed25519Key(filename=str(host_key_path))
        self._authorized_blob = _parse_public_key(authorized_public_key)
        self.drop_after_bytes: int | None = None
        self.drops = 0
        self._bytes_sent = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[threading.Thread, tuple[socket.socket, paramiko.Transport]] = {}
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> int:
        """Listen and serve in background threads; returns the bound port."""
        if self._listener is not None:
            return self._port
        self.root.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._requested_port))
        listener.listen(16)
        listener.settimeout(_POLL_SECONDS)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"sandbox-sftp-{self._port}", daemon=True
        )
        self._accept_thread.start()
        return self._port

    def stop(self) -> None:
        """Stop listening, close every live connection and wait (bounded) for the threads."""
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections = list(self._connections.items())
        for _, (sock, transport) in connections:
            transport.close()
            _shutdown(sock)
        threads = [t for t, _ in connections]
        if self._accept_thread is not None:
            threads.append(self._accept_thread)
        for thread in threads:
            thread.join(_STOP_TIMEOUT_SECONDS / max(1, len(threads)))
        self._listener = None
        self._accept_thread = None

    def __enter__(self) -> SandboxSFTPServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- connections ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break  # listener closed by stop()
            sock.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        with self._lock:
            self._connections[threading.current_thread()] = (sock, transport)
        try:
            transport.add_server_key(self._host_key)
            transport.set_subsystem_handler("sftp", SFTPServer, _SandboxSFTP)
            transport.start_server(server=_Session(self, sock))
            while transport.is_active() and not self._stopping.is_set():
                transport.join(_POLL_SECONDS)
        except (paramiko.SSHException, EOFError, OSError) as e:
            log.info("sandbox SFTP connection ended: %s", e)
        finally:
            transport.close()
            with self._lock:
                self._connections.pop(threading.current_thread(), None)

    def _is_authorized(self, username: str, key: paramiko.PKey) -> bool:
        return username == self.username and key.asbytes() == self._authorized_blob

    def _should_drop(self, sent: int) -> bool:
        """Count file bytes sent; True once when `drop_after_bytes` is reached."""
        with self._lock:
            if self.drop_after_bytes is None:
                return False
            self._bytes_sent += sent
            if self._bytes_sent < self.drop_after_bytes:
                return False
            self.drop_after_bytes = None
            self._bytes_sent = 0
            self.drops += 1
            return True

    def local_path(self, path: str) -> Path:
        """The local path for an SFTP path; raises PathOutsideRoot if it escapes the root."""
        virtual = _canonical(path)
        resolved = Path(os.path.realpath(self.root / virtual.lstrip("/")))
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise PathOutsideRoot(path)
        return resolved


def _canonical(path: str) -> str:
    """The client-visible absolute path; '..' cannot climb above '/'."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Session(paramiko.ServerInterface):
    """Authentication and channel policy for one connection."""

    def __init__(self, sandbox: SandboxSFTPServer, sock: socket.socket) -> None:
        self.sandbox = sandbox
        self.sock = sock

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self.sandbox._is_authorized(username, key):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def drop(self) -> None:
        """Cut the network connection, as a flaky link would."""
        _shutdown(self.sock)


def _sftp_errors(method: Callable) -> Callable:
    """Turn OS errors and escapes into SFTP status codes."""

    @wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except PathOutsideRoot:
            return paramiko.SFTP_PERMISSION_DENIED
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    return wrapper


class _Handle(SFTPHandle):
    def __init__(self, flags: int, file, session: _Session) -> None:
        super().__init__(flags)
        self.readfile = file
        self.writefile = file
        self._session = session

    def read(self, offset: int, length: int):
        data = super().read(offset, length)
        if isinstance(data, bytes) and data and self._session.sandbox._should_drop(len(data)):
            self._session.drop()
            return paramiko.SFTP_FAILURE
        return data

    @_sftp_errors
    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    @_sftp_errors
    def chattr(self, attr):
        SFTPServer.set_file_attr(self.filename, attr)
        return paramiko.SFTP_OK


class _SandboxSFTP(SFTPServerInterface):
    """File operations, each confined to the sandbox root."""

    def __init__(self, server: _Session, *args, **kwargs) -> None:
        super().__init__(server, *args, **kwargs)
        self._session = server
        self._local = server.sandbox.local_path

    def canonicalize(self, path: str) -> str:
        return _canonical(path)

    @_sftp_errors
    def list_folder(self, path: str):
        folder = self._local(path)
        entries = []
        for name in sorted(os.listdir(folder)):
            attr = SFTPAttributes.from_stat(os.lstat(folder / name))
            attr.filename = name
            entries.append(attr)
        return entries

    @_sftp_errors
    def stat(self, path: str):
        return SFTPAttributes.from_stat(os.stat(self._local(path)))

    @_sftp_errors
    def lstat(self, path: str):
        return SFTPAttributes.from_stat(os.lstat(self._local(path)))

    @_sftp_errors
    def open(self, path: str, flags: int, attr):
        local = self._local(path)
        mode = getattr(attr, "st_mode", None) or 0o644
        fd = os.open(local, flags | getattr(os, "O_BINARY", 0), mode & 0o777)
        if flags & os.O_WRONLY:
            fmode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fmode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fmode = "rb"
        handle = _Handle(flags, os.fdopen(fd, fmode), self._session)
        handle.filename = str(local)
        return handle

    @_sftp_errors
    def remove(self, path: str):
        os.remove(self._local(path))
        return paramiko.SFTP_OK

    @_sftp_errors
    def rename(self, oldpath: str, newpath: str):
        # SFTP v3 rename must not replace an existing file (posix_rename does).
        target = self._local(newpath)
        if target.exists():
            return paramiko.SFTP_FAILURE
        os.rename(self._local(oldpath), target)
        return paramiko.SFTP_OK

    @_sftp_errors
    def posix_rename(self, oldpath: str, newpath: str):
        os.replace(self._local(oldpath), self._local(newpath))
        return paramiko.SFTP_OK

    @_sftp_errors
    def mkdir(self, path: str, attr):
        mode = getattr(attr, "st_mode", None) or 0o755
        os.mkdir(self._local(path), mode & 0o777)
        return paramiko.SFTP_OK

    @_sftp_errors
    def rmdir(self, path: str):
        os.rmdir(self._local(path))
        return paramiko.SFTP_OK

    @_sftp_errors
    def chattr(self, path: str, attr):
        SFTPServer.set_file_attr(str(self._local(path)), attr)
        return paramiko.SFTP_OK
