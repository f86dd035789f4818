"""SSH keys for the sandbox: a host key for the embedded SFTP server and a client key for us.

Generated once with `cryptography` (no ssh-keygen needed) and kept in the sandbox folder, so
the sandbox works the same way as production: the pipeline checks the host key against a
known_hosts file and logs in with a private key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HOST_KEY_FILE = "ssh_host_ed25519_key"
CLIENT_KEY_FILE = "client_ed25519_key"
KNOWN_HOSTS_FILE = "known_hosts"


@dataclass
class SandboxSSHKeys:
    host_key_path: Path
    client_key_path: Path
    client_public_key: str
    known_hosts_path: Path


def ensure_ssh_keys(folder: Path, host: str, port: int) -> SandboxSSHKeys:
    """Create the keys once; (re)write known_hosts for `host:port`, which changes per start."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    host_key_path = folder / HOST_KEY_FILE
    client_key_path = folder / CLIENT_KEY_FILE
    host_public_key = _ensure_key(host_key_path, comment="responsys-sandbox-host")
    client_public_key = _ensure_key(client_key_path, comment="responsys-sandbox-client")

    # OpenSSH (and paramiko) write the port in brackets unless it is the default 22.
    host_pattern = host if port == 22 else f"[{host}]:{port}"
    known_hosts_path = folder / KNOWN_HOSTS_FILE
    _write_private(known_hosts_path, f"{host_pattern} {host_public_key}\n".encode(), replace=True)
    return SandboxSSHKeys(
        host_key_path=host_key_path,
        client_key_path=client_key_path,
        client_public_key=client_public_key,
        known_hosts_path=known_hosts_path,
    )


def _ensure_key(path: Path, comment: str) -> str:
    """Create an Ed25519 key at `path` if missing; return its public key line."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        _write_private(path, pem, replace=False)
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode('ascii')} {comment}"
    (path.parent / (path.name + ".pub")).write_text(line + "\n", encoding="ascii")
    return line


def _write_private(path: Path, data: bytes, *, replace: bool) -> None:
    """Write a 0600 file; with replace, atomically via a temp file."""
    target = path.with_name(f".{path.name}.tmp") if replace else path
    fd = os.open(
        target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if replace else os.O_EXCL), 0o600
    )
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if replace:
        os.replace(target, path)
