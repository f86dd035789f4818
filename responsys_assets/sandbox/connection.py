"""Where a running sandbox listens: a small JSON file the pipeline reads in sandbox mode.

The file lives in the sandbox folder (git-ignored, owner-only) and holds only sandbox
credentials generated on this machine. It is removed when the sandbox stops; a file whose
process is gone counts as "not running".
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CONNECTION_FILE = "connection.json"


class SandboxNotRunning(Exception):
    """Sandbox mode was chosen (no RESPONSYS_* connection variable set) but nothing listens."""


@dataclass(frozen=True)
class SandboxConnection:
    pid: int
    sftp_host: str
    sftp_port: int
    sftp_username: str
    sftp_private_key_path: str
    sftp_known_hosts_path: str
    sftp_remote_dir: str
    sftp_root: str  # the local folder the SFTP server serves (for tests and the demo)
    api_endpoint: str
    api_username: str
    api_password: str
    api_state_path: str
    pgp_private_key_path: str
    pgp_passphrase: str | None
    pgp_public_key_path: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_connection(folder: Path, conn: SandboxConnection) -> Path:
    path = folder / CONNECTION_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(conn), handle, indent=2)
    os.replace(tmp, path)
    return path


def read_connection(folder: Path) -> SandboxConnection:
    path = Path(folder) / CONNECTION_FILE
    try:
        data = json.loads(path.read_text())
        conn = SandboxConnection(**data)
    except (OSError, ValueError, TypeError):
        conn = None
    if conn is None or not _alive(conn.pid):
        raise SandboxNotRunning(
            "No RESPONSYS_* connection variable is set, so the pipeline uses the embedded "
            f"sandbox, but no sandbox is running for {str(folder)!r}. Start it with "
            "`make dev` or `responsys-assets sandbox`, or set the RESPONSYS_* variables to "
            "use a real account."
        )
    return conn


def remove_connection(folder: Path) -> None:
    (Path(folder) / CONNECTION_FILE).unlink(missing_ok=True)
