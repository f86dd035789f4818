"""The embedded Responsys sandbox: an SFTP server with Connect files and a REST API emulator.

It is product code, not test code: a developer with no Responsys account runs the whole
pipeline against it (`make demo`, `make dev`), and the tests and benchmarks use it too.
Everything it keeps (keys, generated files, what the "API" received) lives in one folder.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from responsys_assets.config import ProjectConfig
from responsys_assets.sandbox.connection import (
    SandboxConnection,
    remove_connection,
    write_connection,
)

HOST = "127.0.0.1"
SFTP_USERNAME = "responsys"
API_USERNAME = "sandbox_api_user"
REMOTE_DIR = "/outbound"  # where Connect drops event files
IMPORT_DIR = "/inbound"  # where sftp_file exports leave files for a Connect import job


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _credentials(folder: Path) -> dict[str, str]:
    """Random sandbox secrets, made once per sandbox folder."""
    path = folder / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    creds = {"api_password": secrets.token_urlsafe(18), "pgp_passphrase": secrets.token_urlsafe(12)}
    _write_private(path, json.dumps(creds))
    return creds


def contacts_from_files(outbound: Path) -> list[dict]:
    """The sample contacts, read back from the CONTACTS files the generator wrote."""
    import csv

    people: dict[str, dict] = {}
    for path in sorted(outbound.glob("*_CONTACTS_*.txt")):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                people[row["RIID_"]] = row
    return list(people.values())


def seed_account(store, config: ProjectConfig, contacts: list[dict] | None = None) -> None:
    """Create in the emulator what a Responsys account already has: lists with the contacts
    whose events we import, and the campaigns and custom events an admin set up by hand."""
    from responsys_assets.sandbox.api.vocabulary import _email_hashes

    for export in config.exports:
        folder = getattr(export, "folder", None)
        if folder:
            store.ensure_folder(folder)
        if getattr(export, "list", None):
            store.ensure_list(export.list, folder or "Sandbox")
        if export.type == "campaign_trigger":
            store.ensure_campaign(export.campaign, list_name=export.list)
        if export.type == "custom_event":
            store.ensure_custom_event(export.event)
    lists = {e.list for e in config.exports if getattr(e, "list", None)}
    for name in sorted(lists):
        if not contacts or store.list_members(name):
            continue
        rows = []
        for c in contacts:
            md5, sha256 = _email_hashes(c["EMAIL_ADDRESS_"])
            rows.append(
                {
                    "riid": int(c["RIID_"]),
                    "customer_id": c["CUSTOMER_ID_"],
                    "email_address": c["EMAIL_ADDRESS_"],
                    "email_sha256_hash": sha256,
                    "email_md5_hash": md5,
                    "email_permission_status": c["EMAIL_PERMISSION_STATUS_"],
                    "email_format": "H",
                }
            )
        store.write_members(name, rows, [])


@dataclass
class SampleData:
    """How much sample data a new sandbox drops on its SFTP server."""

    contacts: int = 2000
    days: int = 14
    runs_per_day: int = 1
    seed: int = 7

    @classmethod
    def from_env(cls, env: dict | None = None) -> SampleData:
        """RESPONSYS_SANDBOX_CONTACTS / _DAYS / _RUNS_PER_DAY override the defaults."""
        env = os.environ if env is None else env
        base = cls()
        return cls(
            contacts=int(env.get("RESPONSYS_SANDBOX_CONTACTS") or base.contacts),
            days=int(env.get("RESPONSYS_SANDBOX_DAYS") or base.days),
            runs_per_day=int(env.get("RESPONSYS_SANDBOX_RUNS_PER_DAY") or base.runs_per_day),
        )


class Sandbox:
    """Start and stop the sandbox servers; `connection` says where they listen."""

    def __init__(self, folder: Path, config: ProjectConfig, sample: SampleData | None = None):
        self.folder = Path(folder)
        self.config = config
        self.sample = sample or SampleData.from_env()
        self.sftp_root = self.folder / "sftp"
        self.connection: SandboxConnection | None = None
        self._sftp = None
        self._api = None
        self.generated_files: list[Path] = []

    def start(self) -> SandboxConnection:
        from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
        from responsys_assets.sandbox.keys import ensure_ssh_keys
        from responsys_assets.sandbox.pgp_key import ensure_pgp_key
        from responsys_assets.sandbox.sftp_server import SandboxSFTPServer

        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        creds = _credentials(self.folder)
        pgp = ensure_pgp_key(self.folder / "pgp", passphrase=creds["pgp_passphrase"])
        pgp_private = self.folder / "keys" / "pgp_private.asc"
        pgp_public = self.folder / "keys" / "pgp_public.asc"
        _write_private(pgp_private, pgp.private_key_armored)
        _write_private(pgp_public, pgp.public_key_armored)

        outbound = self.sftp_root / REMOTE_DIR.strip("/")
        outbound.mkdir(parents=True, exist_ok=True)
        (self.sftp_root / IMPORT_DIR.strip("/")).mkdir(parents=True, exist_ok=True)
        # The server closes connections the client already dropped; paramiko logs each one.
        logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)
        if not any(outbound.iterdir()):
            self.generated_files = self.drop_sample_files()

        keys = ensure_ssh_keys(self.folder / "ssh", HOST, 0)
        self._sftp = SandboxSFTPServer(
            self.sftp_root, keys.host_key_path, keys.client_public_key, username=SFTP_USERNAME
        )
        sftp_port = self._sftp.start()
        keys = ensure_ssh_keys(self.folder / "ssh", HOST, sftp_port)

        self._api = EmulatorServer(
            self.folder / "api",
            EmulatorSettings(username=API_USERNAME, password=creds["api_password"]),
        )
        endpoint = self._api.start()
        seed_account(self._api.store, self.config, contacts_from_files(outbound))

        self.connection = SandboxConnection(
            pid=os.getpid(),
            sftp_host=HOST,
            sftp_port=sftp_port,
            sftp_username=SFTP_USERNAME,
            sftp_private_key_path=str(keys.client_key_path),
            sftp_known_hosts_path=str(keys.known_hosts_path),
            sftp_remote_dir=REMOTE_DIR,
            sftp_root=str(self.sftp_root),
            api_endpoint=endpoint,
            api_username=API_USERNAME,
            api_password=creds["api_password"],
            api_state_path=str(self._api.store.path),
            pgp_private_key_path=str(pgp_private),
            pgp_passphrase=creds["pgp_passphrase"],
            pgp_public_key_path=str(pgp_public),
        )
        write_connection(self.folder, self.connection)
        return self.connection

    def drop_sample_files(self, end: datetime | None = None, seed: int | None = None) -> list[Path]:
        """Write a Connect job's worth of event files into the SFTP folder (some encrypted)."""
        from responsys_assets.lib.pgp import encrypt_bytes
        from responsys_assets.sandbox.pgp_key import ensure_pgp_key
        from responsys_assets.sandbox.sample_data import DEFAULT_FEEDS, generate_event_files

        creds = _credentials(self.folder)
        pgp = ensure_pgp_key(self.folder / "pgp", passphrase=creds["pgp_passphrase"])
        outbound = self.sftp_root / REMOTE_DIR.strip("/")
        outbound.mkdir(parents=True, exist_ok=True)
        return generate_event_files(
            outbound,
            contacts=self.sample.contacts,
            days=self.sample.days,
            runs_per_day=self.sample.runs_per_day,
            end=end or datetime.now(UTC).replace(tzinfo=None, microsecond=0),
            seed=self.sample.seed if seed is None else seed,
            account_id=self.config.account_id,
            feeds=(*DEFAULT_FEEDS, "CONTACTS"),
            encrypt=lambda data: encrypt_bytes(pgp.public_key_armored, data),
        )

    @property
    def store(self):
        """The emulator's state: what "Responsys" received."""
        return self._api.store if self._api else None

    @property
    def api(self):
        return self._api

    @property
    def sftp(self):
        return self._sftp

    def stop(self) -> None:
        remove_connection(self.folder)
        if self._api:
            self._api.stop()
            self._api = None
        if self._sftp:
            self._sftp.stop()
            self._sftp = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _secret_command(self, key: str) -> str:
        """A shell substitution that reads a sandbox secret, so secrets are never printed."""
        path = self.folder / "credentials.json"
        return f'$(python3 -c \'import json;print(json.load(open("{path}"))["{key}"])\')'

    def environment(self) -> dict[str, str]:
        """The RESPONSYS_* variables that point the pipeline at this sandbox explicitly."""
        conn = self.connection
        assert conn is not None, "start() the sandbox first"
        return {
            "RESPONSYS_SFTP_HOST": conn.sftp_host,
            "RESPONSYS_SFTP_PORT": str(conn.sftp_port),
            "RESPONSYS_SFTP_USERNAME": conn.sftp_username,
            "RESPONSYS_SFTP_PRIVATE_KEY": f"$(cat {conn.sftp_private_key_path})",
            "RESPONSYS_SFTP_KNOWN_HOSTS": conn.sftp_known_hosts_path,
            "RESPONSYS_SFTP_REMOTE_DIR": conn.sftp_remote_dir,
            "RESPONSYS_PGP_PRIVATE_KEY": f"$(cat {conn.pgp_private_key_path})",
            "RESPONSYS_PGP_PASSPHRASE": self._secret_command("pgp_passphrase"),
            "RESPONSYS_ENDPOINT": conn.api_endpoint,
            "RESPONSYS_USERNAME": conn.api_username,
            "RESPONSYS_PASSWORD": self._secret_command("api_password"),
        }
