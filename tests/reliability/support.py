"""What the reliability scenarios share: sample Connect files, the ingest steps as plain calls,
and the honest measurements (events lost or duplicated, triggers sent twice, opted-out contacts
contacted), each counted independently of the code under test."""

from __future__ import annotations

import csv
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb

from responsys_assets.defs.ingest.load import FileRecord, LoadResult, load_file
from responsys_assets.lib.feeds import parse_file_name
from responsys_assets.lib.landing import LandingZone
from responsys_assets.lib.pgp import Decryptor, is_pgp_file
from responsys_assets.sandbox.store import Store
from responsys_assets.settings import PROJECT_ROOT

SOURCE_TABLES = (
    "responsys.events",
    "responsys.launch_states",
    "responsys.contacts",
    "responsys.rejected_rows",
)


# --------------------------------------------------------------------------- counting


def csv_data_rows(plain: Path) -> int:
    """Data records of a plaintext Connect file, counted with Python's csv module."""
    csv.field_size_limit(sys.maxsize)
    with open(plain, newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle))
    return max(rows - 1, 0)


def event_figures(conn: duckdb.DuckDBPyConnection, expected: dict[str, int]) -> tuple[int, int]:
    """(lost, duplicated) for the given files: expected data rows vs. distinct
    (source_file, source_line) in the warehouse (loaded or rejected), and extra copies."""
    union = " union all ".join(f"select source_file, source_line from {t}" for t in SOURCE_TABLES)
    rows = conn.execute(
        f"select source_file, count(*), count(distinct source_line) from ({union}) group by 1"
    ).fetchall()
    present = {name: (total, distinct) for name, total, distinct in rows}
    lost = sum(max(n - present.get(name, (0, 0))[1], 0) for name, n in expected.items())
    duplicated = sum(total - distinct for total, distinct in present.values())
    return lost, duplicated


def read_event_figures(warehouse: Path, expected: dict[str, int]) -> tuple[int, int]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return event_figures(conn, expected)


def triggers_twice(store: Store) -> int:
    """(campaign, riid) and (event, riid) pairs sent more than once."""
    sends = Counter((s["campaign"], s["riid"]) for s in store.email_sends())
    events = Counter((e["event"], e["riid"]) for e in store.custom_events())
    return sum(1 for n in (*sends.values(), *events.values()) if n > 1)


def opted_out_contacted(store: Store, suppressed_riids: set[int], lists: list[str]) -> int:
    """Suppressed contacts that got an email or event, or were merged in as opted in ('I').

    The emulator is seeded with these contacts opted *in*, so only our pipeline's own
    suppression can keep them from being contacted."""
    touched = {s["riid"] for s in store.email_sends()} | {e["riid"] for e in store.custom_events()}
    for name in lists:
        for member in store.list_members(name):
            if member["riid"] in suppressed_riids and member.get("modified_at") != member.get(
                "created_at"
            ):
                touched.add(member["riid"])
    return len(touched & suppressed_riids)


# --------------------------------------------------------------------------- ingest as plain calls


def ingest_landed(
    conn: duckdb.DuckDBPyConnection,
    zone: LandingZone,
    name: str,
    decryptor: Decryptor | None = None,
) -> LoadResult:
    """What the `responsys/events` asset does for one landed file, without Dagster."""
    landed = zone.get(name)
    assert landed is not None, f"{name} is not in the landing zone"
    feed = parse_file_name(name).feed
    encrypted = is_pgp_file(landed.path)
    record = FileRecord(name, feed, landed.sha256, landed.size, encrypted, str(landed.path))
    plain = landed.path
    work = zone.root / ".work"
    if encrypted:
        assert decryptor is not None
        work.mkdir(exist_ok=True, mode=0o700)
        plain = work / f"{name}.plain"
        decryptor.decrypt_file(landed.path, plain, name=name)
    try:
        return load_file(conn, plain, record, batch_rows=2000)
    finally:
        if encrypted:
            plain.unlink(missing_ok=True)


# --------------------------------------------------------------------------- network faults


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 that cuts its first connection once `cut_after` bytes went
    from server to client (a flaky link), then forwards every later connection untouched."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self.bytes_down = 0  # server -> client, over every connection
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections = 0

    def __enter__(self) -> CuttingProxy:
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
            self._connections += 1
            budget = self.cut_after if self._connections == 1 else None
            thread = threading.Thread(target=self._pipe, args=(client, budget), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pipe(self, client: socket.socket, budget: int | None) -> None:
        server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        sent = 0
        deadline = time.monotonic() + 120
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                ready, _, _ = select.select([client, server], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server:
                        self.bytes_down += len(data)
                        if budget is not None and sent + len(data) >= budget:
                            client.sendall(data[: max(budget - sent, 0)])
                            self.cuts += 1
                            return
                        sent += len(data)
                        client.sendall(data)
                    else:
                        server.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, server):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


# --------------------------------------------------------------------------- child processes


def start_child(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A child Python process in the project root, its output in `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def kill(process: subprocess.Popen) -> bool:
    """SIGKILL a child we started (by its pid); True if it was still running."""
    alive = process.poll() is None
    if alive:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    return alive


def log_lines(log: Path, prefix: str) -> int:
    if not log.exists():
        return 0
    return sum(
        1 for line in log.read_text(errors="replace").splitlines() if line.startswith(prefix)
    )
