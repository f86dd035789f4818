"""Two exports and an ingest racing on one DuckLake: every record sent exactly once.

On a lake the stages no longer take turns: each export holds its own pool and files ingest in
parallel, so their write transactions overlap and some commits lose the race. Each write is
retried (warehouse/retry.py), and the ledger's guarantees must hold: every member is triggered
once and merged once, nobody suppressed is contacted, every batch settles, nothing is recorded
twice. Real DuckLake on a real PostgreSQL, the real REST client, the emulator.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

import pytest

from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.runner import ExportReport, run_export
from responsys_assets.defs.ingest.load import FileRecord, load_file
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from responsys_assets.settings import LakeWarehouse
from responsys_assets.warehouse import open_connection
from tests.defs.exports.test_runner import (
    AUDIENCE,
    CAMPAIGN,
    FOLDER,
    LIST,
    LIST_EXPORT,
    PASSWORD,
    TRIGGER,
    USER,
)
from tests.defs.exports.warehouse_rows import add_change, add_contact, open_warehouse, sha256

MEMBERS = 60
SUPPRESSED = {1003, 1017, 1042}
BATCH = 4  # many small batches: many overlapping ledger commits
FILES = 6
JOIN_SECONDS = 300


def riids() -> list[int]:
    return list(range(1001, 1001 + MEMBERS))


@pytest.fixture
def lake(warehouse_location) -> LakeWarehouse:
    if not isinstance(warehouse_location, LakeWarehouse):
        pytest.skip("a DuckDB file has one writer: its stages take turns in one pool")
    conn = open_warehouse(warehouse_location)
    for riid in riids():
        email = f"m{riid}@example.com"
        key = f"riid:{riid}"
        suppressed = riid in SUPPRESSED
        add_contact(
            conn, key, riid=riid, email=email, email_sha256=sha256(email), suppressed=suppressed
        )
        add_change(conn, AUDIENCE, key, "ENTER", suppressed=suppressed)
    conn.close()
    return warehouse_location


@pytest.fixture
def emulator(tmp_path: Path):
    server = EmulatorServer(
        tmp_path / "emulator", EmulatorSettings(username=USER, password=PASSWORD)
    )
    server.store.ensure_folder(FOLDER)
    server.store.ensure_list(LIST, FOLDER)
    server.store.ensure_campaign(CAMPAIGN, list_name=LIST)
    server.store.write_members(
        LIST,
        [
            {
                "riid": riid,
                "email_address": f"m{riid}@example.com",
                "email_sha256_hash": sha256(f"m{riid}@example.com"),
                "email_permission_status": "O" if riid in SUPPRESSED else "I",
            }
            for riid in riids()
        ],
        [],
    )
    server.start()
    yield server
    server.stop()


def click_file(folder: Path, n: int) -> tuple[Path, FileRecord]:
    name = f"10001_OPEN_2026010{n}_000000.txt"
    path = folder / name
    lines = [
        "EVENT_TYPE_ID,ACCOUNT_ID,LIST_ID,RIID,CUSTOMER_ID,EVENT_CAPTURED_DT,EVENT_STORED_DT,"
        "CAMPAIGN_ID,LAUNCH_ID,EMAIL_FORMAT\n"
    ]
    lines += [
        f"4,10001,4200,{riid},C{riid},0{n}-Jan-2026 13:05:32,0{n}-Jan-2026 13:06:00,11,21,H\n"
        for riid in range(1, 2001)
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path, FileRecord(name, "OPEN", f"sha-{n}", path.stat().st_size, False, str(path))


def test_two_exports_and_an_ingest_racing_on_a_lake_send_each_record_once(
    lake, emulator, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="responsys_assets.warehouse.retry")
    reports: dict[str, list[ExportReport]] = {TRIGGER.name: [], LIST_EXPORT.name: []}
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def export(config) -> None:
        try:
            conn = open_connection(lake)
            with ResponsysClient(
                endpoint=emulator.base_url, username=USER, password=PASSWORD, timeout=5.0
            ) as client:
                start.wait(60)
                for _ in range(2):  # the second run finds nothing left to send
                    reports[config.name].append(
                        run_export(
                            conn,
                            client,
                            name=config.name,
                            audience=config.audience,
                            handler=handler_for(config),
                            backfill=True,
                            triggers=config.type == "campaign_trigger",
                            batch_size=BATCH,
                        )
                    )
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def ingest() -> None:
        try:
            conn = open_connection(lake)
            start.wait(60)
            for n in range(1, FILES + 1):
                path, record = click_file(tmp_path, n)
                load_file(conn, path, record)
            load_file(conn, *click_file(tmp_path, 1))  # a reload: deletes while others write
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=export, args=(TRIGGER,)),
        threading.Thread(target=export, args=(LIST_EXPORT,)),
        threading.Thread(target=ingest),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors

    expected = {riid for riid in riids() if riid not in SUPPRESSED}
    sends = Counter(send["riid"] for send in emulator.store.email_sends(CAMPAIGN))
    assert dict(sends) == {riid: 1 for riid in expected}  # once each; nobody suppressed
    for name, (first, second) in reports.items():
        assert first.ok and second.ok, (name, first.stopped_by, second.stopped_by)
        assert second.pending == 0 and second.api_calls == 0
    conn = open_connection(lake)
    ledger = conn.execute(
        "select export, outcome, count(*), sum(records) from exports.ledger "
        "group by all order by all"
    ).fetchall()
    assert {(e, o) for e, o, _, _ in ledger} == {
        (TRIGGER.name, "succeeded"),
        (LIST_EXPORT.name, "succeeded"),
    }
    duplicates = conn.execute(
        "select export, contact_key, change_id, count(*) from exports.sent_records "
        "group by all having count(*) > 1"
    ).fetchall()
    assert duplicates == []
    assert conn.execute(
        "select count(*), count(distinct source_file) from responsys.events"
    ).fetchone() == (FILES * 2000, FILES)
    manifest = conn.execute(
        "select file_name, count(*) from responsys.ingested_files group by all having count(*) > 1"
    ).fetchall()
    assert manifest == []
    per_export = conn.execute(
        "select export, count(*), count(distinct contact_key) from exports.sent_records "
        "group by all order by all"
    ).fetchall()
    # every member once per export (suppressed ones are recorded as skipped, never sent)
    assert per_export == [(LIST_EXPORT.name, MEMBERS, MEMBERS), (TRIGGER.name, MEMBERS, MEMBERS)]
    conflicts = [r for r in caplog.records if "commit conflict" in r.getMessage()]
    assert conflicts, "no commit raced: the test did not exercise concurrent writers"
