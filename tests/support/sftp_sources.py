"""SFTPSource settings the SFTP tests share: short timeouts and fast retries, so a broken
server fails a test in seconds."""

from __future__ import annotations

from pathlib import Path

from responsys_assets.lib.sftp import SFTPSource

FAST = dict(connect_timeout=5.0, read_timeout=10.0, max_attempts=2, backoff_seconds=0.05)


def openssh_source(sshd, remote_dir: Path, key_type: str = "ed25519", **overrides) -> SFTPSource:
    """A source for the real OpenSSH sshd fixture (tests/support/sshd.py)."""
    settings = dict(
        host=sshd.host,
        port=sshd.port,
        username=sshd.username,
        private_key=sshd.client_keys[key_type],
        known_hosts_path=str(sshd.known_hosts_path),
        remote_dir=str(remote_dir),
        **FAST,
    )
    settings.update(overrides)
    return SFTPSource(**settings)


def sandbox_source(port: int, keys, **overrides) -> SFTPSource:
    """A source for the sandbox's SFTP server on 127.0.0.1:`port` (keys: sandbox.keys)."""
    settings = dict(
        host="127.0.0.1",
        port=port,
        username="responsys",
        private_key=keys.client_key_path.read_text(),
        known_hosts_path=str(keys.known_hosts_path),
        remote_dir="/",
        **FAST,
    )
    settings.update(overrides)
    return SFTPSource(**settings)
