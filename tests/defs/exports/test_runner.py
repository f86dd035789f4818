"""The shared export runner: watermark, consent, exactly-once triggers, resume and release.

Real DuckDB warehouse, the real REST client, the Responsys emulator with injected faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from responsys_assets.config import CampaignTriggerExport, MergeRuleConfig, ProfileListExport
from responsys_assets.defs.exports import ledger
from responsys_assets.defs.exports.changes import watermark
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.runner import run_export
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from tests.defs.exports.warehouse_rows import add_change, add_contact, open_warehouse, sha256

USER, PASSWORD = "api_user", "runner-Pass-1"
LIST, FOLDER, CAMPAIGN, AUDIENCE = "CONTACTS_LIST", "Exports", "Welcome", "vip"
PEOPLE = {  # contact_key -> (riid, email, suppressed)
    "riid:101": (101, "alice@example.com", False),
    "riid:102": (102, "bob@example.com", True),  # opted out: must never be contacted
    "riid:103": (103, "carol@example.com", False),
}
TRIGGER = CampaignTriggerExport(
    name="welcome",
    type="campaign_trigger",
    audience=AUDIENCE,
    campaign=CAMPAIGN,
    list=LIST,
    folder=FOLDER,
    backfill=True,
    merge_rule=MergeRuleConfig(match_column_1="RIID", insert_on_no_match=False),
)
LIST_EXPORT = ProfileListExport(
    name="vip_list",
    type="profile_list",
    audience=AUDIENCE,
    list=LIST,
    folder=FOLDER,
    merge_rule=MergeRuleConfig(match_column_1="RIID", insert_on_no_match=False),
)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
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
                "email_address": email,
                "email_sha256_hash": sha256(email),
                "email_permission_status": "O" if suppressed else "I",
            }
            for riid, email, suppressed in PEOPLE.values()
        ],
        [],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator) -> Iterator[ResponsysClient]:
    with ResponsysClient(
        endpoint=emulator.base_url, username=USER, password=PASSWORD, timeout=2.0, max_attempts=2
    ) as client:
        yield client


@pytest.fixture
def conn(warehouse_location) -> Iterator[duckdb.DuckDBPyConnection]:
    db = open_warehouse(warehouse_location)
    for key, (riid, email, suppressed) in PEOPLE.items():
        add_contact(
            db, key, riid=riid, email=email, email_sha256=sha256(email), suppressed=suppressed
        )
        add_change(db, AUDIENCE, key, "ENTER", suppressed=suppressed)
    yield db
    db.close()


def run(conn, client, export=TRIGGER, **kwargs):
    return run_export(
        conn,
        client,
        name=export.name,
        audience=export.audience,
        handler=handler_for(export),
        backfill=kwargs.pop("backfill", export.backfill),
        triggers=export.type == "campaign_trigger",
        **kwargs,
    )


def sends(emulator) -> dict[int, int]:
    counts: dict[int, int] = {}
    for send in emulator.store.email_sends(CAMPAIGN):
        counts[send["riid"]] = counts.get(send["riid"], 0) + 1
    return counts


def data_calls(emulator) -> int:
    return sum(
        1
        for call in emulator.store.api_calls()
        if call["api"] not in ("login", "rateLimit", "getProfileExtensions")
    )


def test_entries_are_triggered_once_and_suppressed_contacts_never(emulator, client, conn):
    report = run(conn, client)
    assert report.ok and report.triggered == 2 and report.suppressed == 1
    assert sends(emulator) == {101: 1, 103: 1}
    calls = data_calls(emulator)
    again = run(conn, client)
    assert again.pending == 0 and again.api_calls == 0
    assert data_calls(emulator) == calls  # a run with no changes makes no data calls


def test_without_backfill_the_first_run_only_sets_the_watermark(emulator, client, conn):
    first = run(conn, client, backfill=False)
    assert first.pending == 0 and sends(emulator) == {}
    assert watermark(conn, TRIGGER.name) == 3
    add_change(conn, AUDIENCE, "riid:101", "EXIT")
    add_change(conn, AUDIENCE, "riid:101", "ENTER")  # a new entry after the first run
    run(conn, client, backfill=False)
    assert sends(emulator) == {101: 1}


class KilledAfterSending(BaseException):
    """Stands in for SIGKILL right after the request reached Responsys."""


def test_a_kill_mid_trigger_parks_the_batch_instead_of_resending(emulator, client, conn):
    real = client.merge_trigger_email

    def send_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise KilledAfterSending

    client.merge_trigger_email = send_then_die
    with pytest.raises(KilledAfterSending):
        run(conn, client)
    client.merge_trigger_email = real
    assert sends(emulator) == {101: 1, 103: 1}

    resumed = run(conn, client)
    assert resumed.recovered == 1 and resumed.triggered == 0
    assert sends(emulator) == {101: 1, 103: 1}, "an unknown outcome is never resent by itself"
    parked = ledger.unknown_batches(conn, TRIGGER.name)
    assert len(parked) == 1

    # The operator checked Responsys and accepts the batch as delivered.
    assert ledger.release(conn, TRIGGER.name, parked[0][1], resend=False)
    run(conn, client)
    assert sends(emulator) == {101: 1, 103: 1}
    assert ledger.unknown_batches(conn, TRIGGER.name) == []


def test_release_with_resend_sends_exactly_that_batch_again(emulator, client, conn):
    emulator.faults.inject("drop_after_send", api="mergeTriggerEmail")
    report = run(conn, client)
    assert report.batches_unknown == 1
    assert sends(emulator) == {101: 1, 103: 1}  # applied, but we never heard back
    batch = ledger.unknown_batches(conn, TRIGGER.name)[0][1]
    assert ledger.release(conn, TRIGGER.name, batch, resend=True)
    run(conn, client)
    assert sends(emulator) == {101: 2, 103: 2}  # the operator asked for it
    run(conn, client)
    assert sends(emulator) == {101: 2, 103: 2}


def test_idempotent_list_merge_is_resent_after_an_unknown_outcome(emulator, client, conn):
    emulator.faults.inject("drop_after_send", api="mergeListMembers")
    first = run(conn, client, LIST_EXPORT)
    assert first.batches_unknown == 1
    assert watermark(conn, LIST_EXPORT.name) is None, "the watermark waits for the resend"
    second = run(conn, client, LIST_EXPORT)
    assert second.added == 2 and second.batches_unknown == 0
    assert watermark(conn, LIST_EXPORT.name) == 3
    members = {m["riid"] for m in emulator.store.list_members(LIST)}
    assert members == {101, 102, 103}


def test_exit_removes_from_the_list(emulator, client, conn):
    run(conn, client, LIST_EXPORT)
    add_change(conn, AUDIENCE, "riid:103", "EXIT")
    report = run(conn, client, LIST_EXPORT)
    assert report.removed == 1
    assert {m["riid"] for m in emulator.store.list_members(LIST)} == {101, 102}


def test_capacity_limit_stops_the_export_and_resumes_later(emulator, client, conn):
    emulator.faults.capacity_window_seconds = 0.5
    emulator.faults.inject("capacity", api="mergeTriggerEmail")
    stopped = run(conn, client)
    assert not stopped.ok and "capacity" in stopped.stopped_by
    assert stopped.errors["capacity"] == 1
    assert sends(emulator) == {}
    import time

    time.sleep(0.6)
    resumed = run(conn, client)
    assert resumed.ok and sends(emulator) == {101: 1, 103: 1}


def test_dry_run_writes_nothing(emulator, client, conn):
    report = run(conn, None, dry_run=True)
    assert report.triggered == 2
    assert {row["contact_key"] for row in report.planned} == {"riid:101", "riid:103"}
    assert data_calls(emulator) == 0
    assert conn.execute("select count(*) from exports.ledger").fetchone()[0] == 0
