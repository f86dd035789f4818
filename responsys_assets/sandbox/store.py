"""The Responsys emulator's state: one SQLite file that users and tests can open to see what
"Responsys" received (members, PET and supplemental rows, sends, events, every API call).

All access goes through one connection guarded by a re-entrant lock, so the emulator can hold
``store.lock`` across a read-decide-write sequence (a merge) and stay consistent.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# System profile-list columns that have their own column in list_members (API name -> column).
MEMBER_COLUMNS: dict[str, str] = {
    "RIID_": "riid",
    "CUSTOMER_ID_": "customer_id",
    "EMAIL_ADDRESS_": "email_address",
    "EMAIL_SHA256_HASH_": "email_sha256_hash",
    "EMAIL_MD5_HASH_": "email_md5_hash",
    "MOBILE_NUMBER_": "mobile_number",
    "EMAIL_PERMISSION_STATUS_": "email_permission_status",
    "EMAIL_FORMAT_": "email_format",
}
_MEMBER_DATA_COLUMNS = [c for c in MEMBER_COLUMNS.values() if c != "riid"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    folder_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lists (
    name TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS list_members (
    list TEXT NOT NULL,
    riid INTEGER NOT NULL,
    customer_id TEXT,
    email_address TEXT,
    email_sha256_hash TEXT,
    email_md5_hash TEXT,
    mobile_number TEXT,
    email_permission_status TEXT,
    email_format TEXT,
    fields TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (list, riid)
);
CREATE INDEX IF NOT EXISTS list_members_customer ON list_members (list, customer_id);
CREATE INDEX IF NOT EXISTS list_members_email ON list_members (list, email_address);
CREATE INDEX IF NOT EXISTS list_members_mobile ON list_members (list, mobile_number);
CREATE INDEX IF NOT EXISTS list_members_md5 ON list_members (list, email_md5_hash);
CREATE INDEX IF NOT EXISTS list_members_sha256 ON list_members (list, email_sha256_hash);
CREATE TABLE IF NOT EXISTS pets (
    list TEXT NOT NULL,
    name TEXT NOT NULL,
    folder TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (list, name)
);
CREATE TABLE IF NOT EXISTS pet_rows (
    list TEXT NOT NULL,
    pet TEXT NOT NULL,
    riid INTEGER NOT NULL,
    fields TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (list, pet, riid)
);
CREATE TABLE IF NOT EXISTS supp_tables (
    folder TEXT NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    primary_keys TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (folder, name)
);
CREATE TABLE IF NOT EXISTS supp_rows (
    folder TEXT NOT NULL,
    table_name TEXT NOT NULL,
    pk TEXT NOT NULL,
    fields TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (folder, table_name, pk)
);
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY,
    list TEXT
);
CREATE TABLE IF NOT EXISTS custom_event_types (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS email_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign TEXT NOT NULL,
    riid INTEGER NOT NULL,
    email TEXT,
    optional_data TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS custom_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    riid INTEGER NOT NULL,
    optional_data TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    api TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    records INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_calls_api ON api_calls (api);
CREATE TABLE IF NOT EXISTS async_requests (
    request_id TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    request_time TEXT NOT NULL,
    ready_at REAL NOT NULL,
    processed_time TEXT NOT NULL,
    status TEXT NOT NULL,
    response TEXT NOT NULL
);
"""

_COUNTED_TABLES = (
    "folders",
    "lists",
    "list_members",
    "pets",
    "pet_rows",
    "supp_tables",
    "supp_rows",
    "campaigns",
    "custom_event_types",
    "email_sends",
    "custom_events",
    "api_calls",
    "async_requests",
)


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds, the format of every `at` column."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """SQLite-backed state of the emulated Responsys account (WAL, thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)
        row = self._conn.execute("SELECT COALESCE(MAX(riid), 0) FROM list_members").fetchone()
        self._last_riid = int(row[0])

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolls back on any exception."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    # --- seeding -------------------------------------------------------------------------
    def ensure_folder(self, name: str) -> int:
        """Create the folder if missing; returns its folderId."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO folders (name, created_at) VALUES (?, ?)", (name, utc_now())
            )
            return int(
                conn.execute("SELECT folder_id FROM folders WHERE name = ?", (name,)).fetchone()[0]
            )

    def ensure_list(self, name: str, folder: str) -> None:
        self.ensure_folder(folder)
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO lists (name, folder, created_at) VALUES (?, ?, ?)",
                (name, folder, utc_now()),
            )

    def ensure_campaign(self, name: str, list_name: str | None = None) -> None:
        """Register an email campaign; `list_name` is the profile list it sends to (merge-trigger
        merges into it)."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO campaigns (name, list) VALUES (?, ?)", (name, None))
            if list_name is not None:
                conn.execute("UPDATE campaigns SET list = ? WHERE name = ?", (list_name, name))

    def ensure_custom_event(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO custom_event_types (name) VALUES (?)", (name,))

    # --- folders, lists, campaigns, events ---------------------------------------------------
    def create_folder(self, name: str) -> int | None:
        """Create a folder; None when it already exists."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM folders WHERE name = ?", (name,)).fetchone():
                return None
            cur = conn.execute(
                "INSERT INTO folders (name, created_at) VALUES (?, ?)", (name, utc_now())
            )
            return int(cur.lastrowid or 0)

    def folder_exists(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM folders WHERE name = ?", (name,)))

    def list_exists(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM lists WHERE name = ?", (name,)))

    def list_names(self) -> list[str]:
        return [r[0] for r in self._query("SELECT name FROM lists ORDER BY name")]

    def campaign(self, name: str) -> dict[str, Any] | None:
        rows = self._query("SELECT name, list FROM campaigns WHERE name = ?", (name,))
        return dict(rows[0]) if rows else None

    def custom_event_exists(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM custom_event_types WHERE name = ?", (name,)))

    # --- profile list members ----------------------------------------------------------------
    @staticmethod
    def _member(row: sqlite3.Row) -> dict[str, Any]:
        member = dict(row)
        member["fields"] = json.loads(member["fields"])
        return member

    def find_members(self, list_name: str, column: str, values: Iterable[str]) -> list[dict]:
        """Members of a list whose `column` (a list_members column) is one of `values`."""
        if column not in MEMBER_COLUMNS.values():
            raise ValueError(f"not a member column: {column}")
        wanted = list(dict.fromkeys(v for v in values if v is not None))
        found: list[dict] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT * FROM list_members WHERE list = ? AND {column} IN ({marks})"
                " ORDER BY riid",
                [list_name, *chunk],
            )
            found.extend(self._member(r) for r in rows)
        return found

    def next_riids(self, count: int) -> list[int]:
        """Reserve `count` new RIIDs (account-wide, increasing)."""
        with self.lock:
            first = self._last_riid + 1
            self._last_riid += count
            return list(range(first, first + count))

    def write_members(
        self, list_name: str, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]
    ) -> None:
        """Insert new and rewrite changed members in one transaction (executemany)."""
        now = utc_now()
        cols = _MEMBER_DATA_COLUMNS
        with self.transaction() as conn:
            if inserts:
                conn.executemany(
                    f"INSERT INTO list_members (list, riid, {', '.join(cols)}, fields,"
                    f" created_at, modified_at) VALUES (?, ?, {', '.join('?' * len(cols))},"
                    " ?, ?, ?)",
                    [
                        (list_name, m["riid"], *(m.get(c) for c in cols))
                        + (json.dumps(m.get("fields") or {}), now, now)
                        for m in inserts
                    ],
                )
            if updates:
                conn.executemany(
                    f"UPDATE list_members SET {', '.join(f'{c} = ?' for c in cols)},"
                    " fields = ?, modified_at = ? WHERE list = ? AND riid = ?",
                    [
                        tuple(m.get(c) for c in cols)
                        + (json.dumps(m.get("fields") or {}), now, list_name, m["riid"])
                        for m in updates
                    ],
                )

    def delete_members(self, list_name: str, riids: Iterable[int]) -> None:
        """Delete members and their PET rows."""
        ids = [(list_name, r) for r in riids]
        with self.transaction() as conn:
            conn.executemany("DELETE FROM list_members WHERE list = ? AND riid = ?", ids)
            conn.executemany("DELETE FROM pet_rows WHERE list = ? AND riid = ?", ids)

    def list_members(self, list_name: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM list_members WHERE list = ? ORDER BY riid", (list_name,))
        return [self._member(r) for r in rows]

    # --- profile extension tables ------------------------------------------------------------
    def create_pet(self, list_name: str, name: str, folder: str, fields: list[dict]) -> bool:
        """False when a PET of that name already exists for the list."""
        with self.transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM pets WHERE list = ? AND lower(name) = lower(?)", (list_name, name)
            ).fetchone():
                return False
            conn.execute(
                "INSERT INTO pets (list, name, folder, fields, created_at) VALUES (?, ?, ?, ?, ?)",
                (list_name, name, folder, json.dumps(fields), utc_now()),
            )
            return True

    def pets(self, list_name: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM pets WHERE list = ? ORDER BY name", (list_name,))
        return [{**dict(r), "fields": json.loads(r["fields"])} for r in rows]

    def pet(self, list_name: str, name: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM pets WHERE list = ? AND name = ?", (list_name, name))
        return {**dict(rows[0]), "fields": json.loads(rows[0]["fields"])} if rows else None

    def pet_rows_for(self, list_name: str, pet: str, riids: Iterable[int]) -> dict[int, dict]:
        wanted = list(dict.fromkeys(riids))
        found: dict[int, dict] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._query(
                "SELECT riid, fields FROM pet_rows WHERE list = ? AND pet = ?"
                f" AND riid IN ({','.join('?' * len(chunk))})",
                [list_name, pet, *chunk],
            )
            found.update({int(r["riid"]): json.loads(r["fields"]) for r in rows})
        return found

    def write_pet_rows(self, list_name: str, pet: str, rows: dict[int, dict]) -> None:
        now = utc_now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO pet_rows (list, pet, riid, fields, modified_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (list, pet, riid) DO UPDATE SET fields = excluded.fields,"
                " modified_at = excluded.modified_at",
                [(list_name, pet, riid, json.dumps(f), now) for riid, f in rows.items()],
            )

    def delete_pet_rows(self, list_name: str, pet: str, riids: Iterable[int]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM pet_rows WHERE list = ? AND pet = ? AND riid = ?",
                [(list_name, pet, r) for r in riids],
            )

    def pet_rows(self, list_name: str, pet: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT * FROM pet_rows WHERE list = ? AND pet = ? ORDER BY riid", (list_name, pet)
        )
        return [{**dict(r), "fields": json.loads(r["fields"])} for r in rows]

    # --- supplemental tables -----------------------------------------------------------------
    def create_supp_table(
        self, folder: str, name: str, fields: list[dict], primary_keys: list[str]
    ) -> bool:
        """False when the table already exists in the folder."""
        with self.transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM supp_tables WHERE folder = ? AND lower(name) = lower(?)",
                (folder, name),
            ).fetchone():
                return False
            conn.execute(
                "INSERT INTO supp_tables (folder, name, fields, primary_keys, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (folder, name, json.dumps(fields), json.dumps(primary_keys), utc_now()),
            )
            return True

    def supp_table_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM supp_tables")[0][0])

    def supp_table(self, folder: str, name: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT * FROM supp_tables WHERE folder = ? AND name = ?", (folder, name)
        )
        if not rows:
            return None
        r = dict(rows[0])
        return {
            **r,
            "fields": json.loads(r["fields"]),
            "primary_keys": json.loads(r["primary_keys"]),
        }

    def supp_tables(self, offset: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT * FROM supp_tables ORDER BY folder, name LIMIT ? OFFSET ?", (limit, offset)
        )
        return [
            {
                **dict(r),
                "fields": json.loads(r["fields"]),
                "primary_keys": json.loads(r["primary_keys"]),
            }
            for r in rows
        ]

    def drop_supp_table(self, folder: str, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM supp_tables WHERE folder = ? AND name = ?", (folder, name))
            conn.execute(
                "DELETE FROM supp_rows WHERE folder = ? AND table_name = ?", (folder, name)
            )

    @staticmethod
    def supp_key(values: list[str]) -> str:
        """The stored form of a primary-key tuple."""
        return json.dumps(values)

    def supp_rows_for(self, folder: str, table: str, keys: Iterable[str]) -> dict[str, dict]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._query(
                "SELECT pk, fields FROM supp_rows WHERE folder = ? AND table_name = ?"
                f" AND pk IN ({','.join('?' * len(chunk))})",
                [folder, table, *chunk],
            )
            found.update({r["pk"]: json.loads(r["fields"]) for r in rows})
        return found

    def write_supp_rows(self, folder: str, table: str, rows: dict[str, dict]) -> None:
        now = utc_now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO supp_rows (folder, table_name, pk, fields, modified_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (folder, table_name, pk) DO UPDATE"
                " SET fields = excluded.fields, modified_at = excluded.modified_at",
                [(folder, table, pk, json.dumps(f), now) for pk, f in rows.items()],
            )

    def delete_supp_row(self, folder: str, table: str, key: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM supp_rows WHERE folder = ? AND table_name = ? AND pk = ?",
                (folder, table, key),
            )
            return cur.rowcount > 0

    def supp_rows(self, folder: str, table: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT * FROM supp_rows WHERE folder = ? AND table_name = ? ORDER BY pk",
            (folder, table),
        )
        return [
            {**dict(r), "pk": json.loads(r["pk"]), "fields": json.loads(r["fields"])} for r in rows
        ]

    # --- sends and events ----------------------------------------------------------------------
    def record_email_sends(self, campaign: str, sends: list[tuple[int, str | None, list]]) -> None:
        """sends: (riid, email, optionalData)."""
        now = utc_now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO email_sends (campaign, riid, email, optional_data, at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(campaign, riid, email, json.dumps(opt), now) for riid, email, opt in sends],
            )

    def record_custom_events(self, event: str, events: list[tuple[int, list]]) -> None:
        now = utc_now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO custom_events (event, riid, optional_data, at) VALUES (?, ?, ?, ?)",
                [(event, riid, json.dumps(opt), now) for riid, opt in events],
            )

    def email_sends(self, campaign: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM email_sends"
        params: tuple = ()
        if campaign is not None:
            sql, params = sql + " WHERE campaign = ?", (campaign,)
        rows = self._query(sql + " ORDER BY id", params)
        return [{**dict(r), "optional_data": json.loads(r["optional_data"])} for r in rows]

    def custom_events(self, event: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM custom_events"
        params: tuple = ()
        if event is not None:
            sql, params = sql + " WHERE event = ?", (event,)
        rows = self._query(sql + " ORDER BY id", params)
        return [{**dict(r), "optional_data": json.loads(r["optional_data"])} for r in rows]

    # --- API call log and async results ------------------------------------------------------
    def record_api_call(
        self, method: str, path: str, api: str, status: int, error_code: str | None, records: int
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO api_calls (at, method, path, api, status, error_code, records)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (utc_now(), method, path, api, status, error_code, records),
            )

    def api_calls(self, api: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM api_calls"
        params: tuple = ()
        if api is not None:
            sql, params = sql + " WHERE api = ?", (api,)
        return [dict(r) for r in self._query(sql + " ORDER BY id", params)]

    def save_async_request(
        self, request_id: str, api: str, ready_at: float, status: str, response: Any
    ) -> None:
        now = utc_now()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO async_requests (request_id, api, request_time, ready_at,"
                " processed_time, status, response) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (request_id, api, now, ready_at, now, status, json.dumps(response)),
            )

    def async_request(self, request_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM async_requests WHERE request_id = ?", (request_id,))
        if not rows:
            return None
        return {**dict(rows[0]), "response": json.loads(rows[0]["response"])}

    def counts(self) -> dict[str, int]:
        """Row count of every table, for a quick look at what the emulator received."""
        with self.lock:
            return {
                t: int(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in _COUNTED_TABLES
            }
