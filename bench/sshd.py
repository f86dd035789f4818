"""A real OpenSSH sshd on 127.0.0.1 for the ingest benchmark (the approach of
tests/support/sshd.py without pytest): its own host and client keys, internal-sftp, stopped by
its PID."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from pathlib import Path

from common import BenchError, stop_process

SSHD_BINARY = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
START_TIMEOUT_SECONDS = 10.0


def _keygen(path: Path, key_type: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        timeout=30,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers_ssh(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


class LoopbackSSHD:
    """sshd serving the file system over SFTP on 127.0.0.1:<free port>, one Ed25519 client key."""

    def __init__(self, folder: Path) -> None:
        if not Path(SSHD_BINARY).exists():
            raise BenchError(f"{SSHD_BINARY} is not installed (apt-get install openssh-server)")
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.username = getpass.getuser()
        self.remote_dir = self.folder / "remote"
        self.remote_dir.mkdir(exist_ok=True)
        host_key = self.folder / "ssh_host_ed25519_key"
        _keygen(host_key, "ed25519")
        self.client_key_path = self.folder / "client_ed25519"
        _keygen(self.client_key_path, "ed25519")
        authorized = self.folder / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key_path}.pub").read_text())
        key_type, blob = Path(f"{host_key}.pub").read_text().split()[:2]
        self.known_hosts_path = self.folder / "known_hosts"
        self.known_hosts_path.write_text(f"[{self.host}]:{self.port} {key_type} {blob}\n")
        self.config_path = self.folder / "sshd_config"
        self.config_path.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}",
                    f"Port {self.port}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "AllowTcpForwarding no",
                    "X11Forwarding no",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        self.log_path = self.folder / "sshd.log"
        self.process: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"LoopbackSSHD(port={self.port}, remote_dir={str(self.remote_dir)!r})"

    @property
    def client_key(self) -> str:
        return self.client_key_path.read_text()

    def start(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [SSHD_BINARY, "-D", "-e", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            if _answers_ssh(self.port):
                return
            time.sleep(0.05)
        self.stop()
        log = self.log_path.read_text(errors="replace")[-2000:]
        raise BenchError(f"sshd did not start on 127.0.0.1:{self.port}; its log:\n{log}")

    def cpu_seconds(self) -> float:
        """CPU seconds sshd has used so far: the listener's own and those of its finished
        session processes (reaped children count in the listener's cutime/cstime). Waits up to
        5 s for running sessions to end, so a transfer that just finished is counted."""
        if self.process is None:
            raise BenchError("sshd is not running")
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                if not children.read_text().strip():
                    break
            except OSError:  # a kernel without CONFIG_PROC_CHILDREN: give sessions a moment
                time.sleep(0.5)
                break
            time.sleep(0.02)
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from the state field
        return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_process(self.process, timeout=5.0)
        self.process = None

    def __enter__(self) -> LoopbackSSHD:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sftp_get(self, remote: Path, local: Path, timeout: float = 900) -> float:
        """OpenSSH's own client: `sftp -b` batch `get` with the same key; returns seconds."""
        batch = self.folder / "get.batch"
        batch.write_text(f'get "{remote}" "{local}"\n')
        command = [
            "sftp",
            "-q",
            "-b",
            str(batch),
            "-i",
            str(self.client_key_path),
            "-P",
            str(self.port),
            "-o",
            f"UserKnownHostsFile={self.known_hosts_path}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            f"{self.username}@{self.host}",
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"sftp -b get failed: {done.stderr.decode(errors='replace')[-1000:]}")
        return seconds
