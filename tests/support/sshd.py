"""Pytest fixtures: a real OpenSSH sshd on 127.0.0.1 with its own keys and config.

The sshd serves the whole file system through `internal-sftp`; tests work in `remote_dir`
(or a per-test folder inside it, see `sftp_dir`).
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD_BINARY = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
CLIENT_KEY_TYPES = {"rsa": ["-b", "2048"], "ecdsa": ["-b", "256"], "ed25519": []}


def _keygen(path: Path, key_type: str, extra: list[str]) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", key_type, *extra, "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        timeout=30,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            # sshd sends its banner first; reading it proves sshd (not a stranger) is there.
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class SSHDServer:
    folder: Path
    host: str
    port: int
    username: str
    remote_dir: Path
    known_hosts_path: Path
    wrong_known_hosts_path: Path
    hashed_known_hosts_path: Path
    client_keys: dict[str, str]
    host_key_fingerprint: str
    host_public_key: str
    config_path: Path
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start sshd and wait (bounded) until it answers with an SSH banner."""
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                [SSHD_BINARY, "-D", "-e", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _accepts(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"sshd did not start on port {self.port}; its log:\n{self.log()}")

    def stop(self) -> None:
        """Terminate this sshd (by its pid), then kill it if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port (open sessions survive, as with real sshd)."""
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _write_config(folder: Path, port: int, host_key: Path, authorized_keys: Path) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized_keys}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                f"PidFile {folder / 'sshd.pid'}",
                "LogLevel INFO",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return config


def _known_hosts_line(host: str, port: int, public_key_path: Path) -> str:
    key_type, blob = public_key_path.read_text().split()[:2]
    return f"[{host}]:{port} {key_type} {blob}\n"


def _fingerprint(public_key_path: Path) -> str:
    out = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(public_key_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHDServer]:
    """A real OpenSSH server for the session (skipped only if sshd is not installed)."""
    if not Path(SSHD_BINARY).exists():
        pytest.skip(f"{SSHD_BINARY} is not installed (apt-get install openssh-server)")
    folder = tmp_path_factory.mktemp("sshd")
    os.chmod(folder, 0o700)
    remote_dir = folder / "remote"
    remote_dir.mkdir()
    host = "127.0.0.1"
    port = _free_port()

    host_key = folder / "ssh_host_ed25519_key"
    _keygen(host_key, "ed25519", [])
    wrong_key = folder / "wrong_host_ed25519_key"
    _keygen(wrong_key, "ed25519", [])

    client_keys: dict[str, str] = {}
    public_keys = []
    for key_type, extra in CLIENT_KEY_TYPES.items():
        path = folder / f"client_{key_type}"
        _keygen(path, key_type, extra)
        client_keys[key_type] = path.read_text()
        public_keys.append(Path(f"{path}.pub").read_text())
    authorized_keys = folder / "authorized_keys"
    authorized_keys.write_text("".join(public_keys))

    known_hosts = folder / "known_hosts"
    known_hosts.write_text(_known_hosts_line(host, port, Path(f"{host_key}.pub")))
    wrong_known_hosts = folder / "wrong_known_hosts"
    wrong_known_hosts.write_text(_known_hosts_line(host, port, Path(f"{wrong_key}.pub")))
    hashed_known_hosts = folder / "hashed_known_hosts"
    hashed_known_hosts.write_text(known_hosts.read_text())
    subprocess.run(
        [SSH_KEYGEN, "-q", "-H", "-f", str(hashed_known_hosts)],
        check=True,
        capture_output=True,
        timeout=30,
    )

    server = SSHDServer(
        folder=folder,
        host=host,
        port=port,
        username=getpass.getuser(),
        remote_dir=remote_dir,
        known_hosts_path=known_hosts,
        wrong_known_hosts_path=wrong_known_hosts,
        hashed_known_hosts_path=hashed_known_hosts,
        client_keys=client_keys,
        host_key_fingerprint=_fingerprint(Path(f"{host_key}.pub")),
        host_public_key=Path(f"{host_key}.pub").read_text().split()[1],
        config_path=_write_config(folder, port, host_key, authorized_keys),
        log_path=folder / "sshd.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sftp_dir(sshd: SSHDServer, request: pytest.FixtureRequest) -> Path:
    """A fresh folder inside the sshd's remote_dir for one test."""
    folder = sshd.remote_dir / request.node.name.replace("[", "_").replace("]", "")
    folder.mkdir()
    return folder
