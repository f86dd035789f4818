"""Helpers for the hybrid-transport and side-PET tests: many contacts at once, the sandbox SFTP
server and its client, a proxy that stalls an upload half-way, and a child process to kill.

    python -m tests.defs.exports.hybrid_support WAREHOUSE SFTP_PORT KEY KNOWN_HOSTS THRESHOLD

runs the `vip_list` export with a file_import once (no REST client: a backfill above the
threshold needs none) and prints `finished`.
"""

from __future__ import annotations

import select
import socket
import sys
import threading
import time
from pathlib import Path

import duckdb

from responsys_assets.config import FileImportConfig, MergeRuleConfig, ProfileListExport
from responsys_assets.lib.sftp import SFTPSource
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from responsys_assets.settings import parse_warehouse
from responsys_assets.warehouse import open_connection
from tests.defs.exports.warehouse_rows import AS_OF, sha256

LIST, FOLDER, AUDIENCE, REMOTE_DIR = "CONTACTS_LIST", "Exports", "vip", "/import"
FIRST_RIID = 1000


def seeded_emulator(folder: Path, username: str, password: str, members: int) -> EmulatorServer:
    """An emulator (not started) whose list already holds `members` contacts from FIRST_RIID:
    a list merge with insert_on_no_match false finds everyone the tests send."""
    server = EmulatorServer(folder, EmulatorSettings(username=username, password=password))
    server.store.ensure_folder(FOLDER)
    server.store.ensure_list(LIST, FOLDER)
    server.store.write_members(
        LIST,
        [
            {"riid": r, "email_address": email(r), "email_sha256_hash": sha256(email(r))}
            for r in range(FIRST_RIID, FIRST_RIID + members)
        ],
        [],
    )
    return server


def list_export(threshold: int = 5, **overrides) -> ProfileListExport:
    settings = dict(
        name="vip_list",
        type="profile_list",
        audience=AUDIENCE,
        list=LIST,
        folder=FOLDER,
        merge_rule=MergeRuleConfig(match_column_1="RIID", insert_on_no_match=False),
        fields={"CITY": "customer_id"},
        file_import=FileImportConfig(remote_dir=REMOTE_DIR, threshold=threshold),
    )
    return ProfileListExport(**(settings | overrides))


def email(riid: int) -> str:
    return f"person{riid}@example.com"


def _neutral(conn: duckdb.DuckDBPyConnection, table: str, given: set[str]) -> dict[str, str]:
    """SQL constants for the NOT NULL columns of `table` a test does not care about."""
    schema, name = table.split(".")
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? and is_nullable = 'NO'",
        [schema, name],
    ).fetchall()
    neutral = {"BIGINT": "0", "INTEGER": "0", "BOOLEAN": "false", "VARCHAR": "''"}
    return {
        column: neutral.get(kind, f"timestamp '{AS_OF}'")
        for column, kind in rows
        if column not in given
    }


def add_people(
    conn: duckdb.DuckDBPyConnection,
    riids: range,
    *,
    audience: str = AUDIENCE,
    suppressed: set[int] = frozenset(),
    change: str | None = "ENTER",
) -> None:
    """Profiles, scores and (unless `change` is None) one membership change each, in bulk."""
    conn.execute("select 1").fetchall()  # finish any open result before register()
    conn.register("_people", _people_table(riids, suppressed))
    try:
        given = ["contact_key", "riid", "email", "email_sha256", "customer_id", "suppressed"]
        extra = _neutral(conn, "audiences.profiles", set(given))
        conn.execute(
            f"insert into audiences.profiles ({', '.join([*given, *extra])}) "
            f"select {', '.join([*given, *extra.values()])} from _people"
        )
        extra = _neutral(conn, "audiences.scores", {"contact_key"})
        conn.execute(
            f"insert into audiences.scores (contact_key, {', '.join(extra)}) "
            f"select contact_key, {', '.join(extra.values())} from _people"
        )
        if change:
            add_changes(conn, audience, [f"riid:{r}" for r in riids], change, suppressed=suppressed)
    finally:
        conn.unregister("_people")


def _people_table(riids: range, suppressed: set[int]):
    import pyarrow as pa

    return pa.table(
        {
            "contact_key": [f"riid:{r}" for r in riids],
            "riid": pa.array(list(riids), pa.int64()),
            "email": [email(r) for r in riids],
            "email_sha256": [sha256(email(r)) for r in riids],
            "customer_id": [f'Town {r}, "Old" quarter' for r in riids],
            "suppressed": [r in suppressed for r in riids],
        }
    )


def add_changes(
    conn: duckdb.DuckDBPyConnection,
    audience: str,
    contact_keys: list[str],
    change: str,
    *,
    suppressed: set[int] = frozenset(),
) -> None:
    """One membership change per contact, and the memberships table kept in line, in bulk."""
    import pyarrow as pa

    riids = [int(key.split(":")[1]) for key in contact_keys]
    conn.execute("select 1").fetchall()  # finish any open result before register()
    conn.register(
        "_changes",
        pa.table(
            {
                "contact_key": contact_keys,
                "riid": pa.array(riids, pa.int64()),
                "suppressed": [r in suppressed for r in riids],
            }
        ),
    )
    try:
        conn.execute(
            "insert into audiences.membership_changes (change_id, audience, contact_key, riid, "
            "change, changed_at, evaluation_id, suppressed) "
            "select (select coalesce(max(change_id), 0) from audiences.membership_changes)"
            " + row_number() over (), ?, contact_key, riid, ?, ?, 1, suppressed from _changes",
            [audience, change, AS_OF],
        )
        conn.execute(
            "delete from audiences.memberships where audience = ? "
            "and contact_key in (select contact_key from _changes)",
            [audience],
        )
        if change == "ENTER":
            conn.execute(
                "insert into audiences.memberships "
                "(audience, contact_key, riid, entered_at, evaluation_id, suppressed) "
                "select ?, contact_key, riid, ?, 1, suppressed from _changes",
                [audience, AS_OF],
            )
    finally:
        conn.unregister("_changes")


def sftp_factory(port: int, key: Path, known_hosts: Path):
    def make() -> SFTPSource:
        return SFTPSource(
            host="127.0.0.1",
            port=port,
            username="responsys",
            private_key=key.read_text(),
            known_hosts_path=str(known_hosts),
            remote_dir="/connect",
            # Generous: a 2-core CI machine under load can take seconds to finish a handshake;
            # the stalled upload is ended by SIGKILL, never by a timeout.
            connect_timeout=30.0,
            read_timeout=60.0,
            max_attempts=2,
            backoff_seconds=0.05,
        )

    return make


class StallingProxy:
    """A TCP proxy on 127.0.0.1 that forwards its first connection until `stall_after` bytes
    went from client to server, then forwards nothing more that way: an upload hangs half-way,
    with part of the file on the server."""

    def __init__(self, target_port: int, stall_after: int) -> None:
        self.target_port = target_port
        self.stall_after = stall_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> StallingProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._pipe, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pipe(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        up = 0
        deadline = time.monotonic() + 120
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                sources = [server] + ([client] if up < self.stall_after else [])
                ready, _, _ = select.select(sources, [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        up += len(data)
                        server.sendall(data)
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, server):
                sock.close()


def main(argv: list[str]) -> int:
    from responsys_assets.defs.exports.handlers.registry import handler_for
    from responsys_assets.defs.exports.runner import run_export

    warehouse, port, key, known_hosts = argv[1], int(argv[2]), Path(argv[3]), Path(argv[4])
    export = list_export(int(argv[5]))
    conn = open_connection(parse_warehouse(warehouse))  # a file or a lake, as the parent made it
    try:
        handler = handler_for(export, sftp_factory=sftp_factory(port, key, known_hosts))
        print("exporting", flush=True)
        report = run_export(
            conn, None, name=export.name, audience=AUDIENCE, handler=handler, backfill=True
        )
        print(f"report ok={report.ok} stopped_by={report.stopped_by}", flush=True)
    finally:
        conn.close()
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
