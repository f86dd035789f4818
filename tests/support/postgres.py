"""Pytest fixtures: a real PostgreSQL server from Debian's package, on 127.0.0.1, for the lake.

`initdb` and `postgres` refuse to run as root, so under root the server runs as the unprivileged
`postgres` system user the package creates (as the current user otherwise), in a temp folder,
with password authentication, and is stopped by its own pid. One server serves the session;
every test that asks for a lake gets its own database in it.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from responsys_assets.settings import LakeWarehouse

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
SUPERUSER = "lake_admin"
_databases = itertools.count(1)


def postgres_bin() -> Path:
    """The newest `/usr/lib/postgresql/<major>/bin` that has a server (Debian's layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail("no PostgreSQL server under /usr/lib/postgresql: run `make system-deps`")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    """The unprivileged account the server runs as when we are root; None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no `postgres` user: install Debian's postgresql")
    return "postgres"


@dataclass
class PostgresServer:
    folder: Path
    port: int
    password: str
    user: str | None
    bin_dir: Path
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def start(self) -> None:
        """Start `postgres` (not pg_ctl: the pid we hold is the server's) and wait until ready."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D", str(self.folder / "data"),
                    "-h", self.host,
                    "-p", str(self.port),
                    "-k", str(self.folder),  # the Unix socket stays in our folder
                    "-c", "max_connections=200",
                    "-c", "fsync=off",  # a throwaway test server; durability is not under test
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                cwd=self.folder,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                timeout=10,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"postgres did not start on port {self.port}; its log:\n{self.log()}")

    def stop(self) -> None:
        """Ask the server for a fast shutdown (SIGINT) by its pid; kill it if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def conninfo(self, dbname: str) -> str:
        """libpq conninfo without the password (it travels separately, as in production)."""
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        result = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.conninfo(dbname), "-c", sql],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, prefix: str = "lake") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_databases)}"
        self.psql(f"create database {name}")
        return name

    def new_lake(self, data_path: Path) -> LakeWarehouse:
        """An empty DuckLake: a fresh catalog database and a data folder of its own."""
        data_path.mkdir(parents=True, exist_ok=True)
        return LakeWarehouse(
            conninfo=self.conninfo(self.create_database()), data_path=str(data_path) + "/"
        )


def start_postgres() -> PostgresServer:
    """initdb into a temp folder owned by the unprivileged user, then start the server."""
    bin_dir = postgres_bin()
    user = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    password = secrets.token_urlsafe(16)
    (folder / "pwfile").write_text(password + "\n")
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (folder, folder / "pwfile"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(folder / "pwfile", 0o600)
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", SUPERUSER,
         "--auth=scram-sha-256", f"--pwfile={folder / 'pwfile'}", "-E", "UTF8",
         "--no-instructions"],
        check=True,
        capture_output=True,
        user=user,
        cwd=folder,
        timeout=120,
    )  # fmt: skip
    (folder / "pwfile").unlink()
    server = PostgresServer(
        folder=folder, port=_free_port(), password=password, user=user, bin_dir=bin_dir
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
