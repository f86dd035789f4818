"""The custom event, PET, supplemental table and SFTP file exports, end to end: a real DuckDB
warehouse, the shared runner, the real REST client against the Responsys emulator, and the
sandbox SFTP server."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from responsys_assets.config import (
    CustomEventExport,
    PetExport,
    SftpFileExport,
    SupplementalTableExport,
)
from responsys_assets.defs.exports.changes import watermark
from responsys_assets.defs.exports.handlers.custom_event import CustomEventHandler
from responsys_assets.defs.exports.handlers.pet import PetHandler, SchemaDrift
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.handlers.sftp_file import SftpFileHandler
from responsys_assets.defs.exports.handlers.supplemental_table import SupplementalTableHandler
from responsys_assets.defs.exports.runner import ExportReport, run_export
from responsys_assets.lib.pgp import Decryptor
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.lib.sftp import SFTPSource
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from responsys_assets.sandbox.keys import ensure_ssh_keys
from responsys_assets.sandbox.sftp_server import SandboxSFTPServer
from tests.defs.exports.warehouse_rows import add_change, add_contact, open_warehouse, sha256

USER, PASSWORD = "api_user", "s3cret-Pass!"
LIST, FOLDER, EVENT, AUDIENCE = "CONTACTS_LIST", "Exports", "AUDIENCE_CHANGED", "vip"
ALICE, BOB, CAROL, DAVE = "riid:101", "riid:102", "riid:103", "email:dave"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """The emulator with a list holding Alice (101) and Bob (102); Carol is not a member."""
    server = EmulatorServer(
        tmp_path / "emulator", EmulatorSettings(username=USER, password=PASSWORD)
    )
    server.store.ensure_list(LIST, FOLDER)
    server.store.ensure_custom_event(EVENT)
    server.store.write_members(
        LIST,
        [
            {
                "riid": 101,
                "email_address": "alice@example.com",
                "email_sha256_hash": sha256("alice@example.com"),
                "customer_id": "C-1",
            },
            {
                "riid": 102,
                "email_address": "bob@example.com",
                "email_sha256_hash": sha256("bob@example.com"),
                "customer_id": "C-2",
            },
        ],
        [],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[ResponsysClient]:
    with ResponsysClient(
        endpoint=emulator.base_url, username=USER, password=PASSWORD, timeout=10.0, max_attempts=2
    ) as client:
        yield client


@pytest.fixture
def warehouse(warehouse_location) -> Iterator[duckdb.DuckDBPyConnection]:
    """Alice enters with a score; Bob enters suppressed; Carol enters (unknown to Responsys);
    Dave enters with no RIID.
    On each backend (`warehouse_location`: tests/support/warehouses.py)."""
    conn = open_warehouse(warehouse_location)
    contacts = [
        (ALICE, 101, "alice@example.com", "C-1", False, 91),
        (BOB, 102, "bob@example.com", "C-2", True, 12),
        (CAROL, 103, "carol@example.com", "C-3", False, 40),
        (DAVE, None, "dave@example.com", None, False, 70),
    ]
    for key, riid, email, customer, suppressed, score in contacts:
        add_contact(
            conn,
            key,
            riid=riid,
            email=email,
            email_sha256=sha256(email),
            customer_id=customer,
            suppressed=suppressed,
            recency_score=score,
        )
        add_change(conn, AUDIENCE, key, "ENTER", suppressed=suppressed)
    yield conn
    conn.close()


def run(conn, client, export, handler=None) -> ExportReport:
    return run_export(
        conn,
        client,
        name=export.name,
        audience=export.audience,
        handler=handler or handler_for(export),
        backfill=export.backfill,
    )


def rejected(conn, export: str) -> dict[str, str]:
    rows = conn.execute(
        "select contact_key, message from exports.rejected_records where export = ?", [export]
    ).fetchall()
    return dict(rows)


# --------------------------------------------------------------------------- custom events


def _event_export(**overrides) -> CustomEventExport:
    settings = dict(
        type="custom_event",
        name="vip_event",
        audience=AUDIENCE,
        event=EVENT,
        list=LIST,
        folder=FOLDER,
        properties={"SCORE": "recency_score"},
    )
    return CustomEventExport(**(settings | overrides))


@pytest.mark.parametrize("identify_by", ["riid", "email_sha256", "customer_id"])
def test_custom_event_add_then_remove_then_nothing(
    emulator, client, warehouse, identify_by: str
) -> None:
    export = _event_export(identify_by=identify_by)
    first = run(warehouse, client, export)

    assert first.ok, first.stopped_by
    assert (first.added, first.suppressed, first.api_calls) == (1, 1, 1)
    events = emulator.store.custom_events(EVENT)
    assert [(e["riid"], e["optional_data"]) for e in events] == [
        (101, [{"name": "callType", "value": "ADD"}, {"name": "SCORE", "value": "91"}])
    ]
    problems = rejected(warehouse, export.name)
    assert "RECIPIENT_NOT_FOUND" in problems[CAROL]  # Responsys' answer, row by row
    if identify_by == "customer_id":
        assert problems[DAVE].startswith("no customer_id")  # refused before the call
    assert BOB not in problems  # suppressed: never sent, not even as a rejection

    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    second = run(warehouse, client, export)
    assert second.ok and (second.removed, second.api_calls) == (1, 1)
    last = emulator.store.custom_events(EVENT)[-1]
    assert (last["riid"], last["optional_data"][0]) == (
        101,
        {"name": "callType", "value": "REMOVE"},
    )

    third = run(warehouse, client, export)
    assert (third.pending, third.api_calls) == (0, 0)
    assert len(emulator.store.custom_events(EVENT)) == 2
    assert len(emulator.store.api_calls("customEvent")) == 2


def test_custom_event_exits_not_sent_when_turned_off(emulator, client, warehouse) -> None:
    export = _event_export(send_exits=False)
    run(warehouse, client, export)
    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    report = run(warehouse, client, export)
    assert (report.skipped_exits, report.api_calls) == (1, 0)
    assert len(emulator.store.custom_events(EVENT)) == 1


def test_custom_event_over_the_async_api_keeps_row_results(emulator, client, warehouse) -> None:
    export = _event_export(async_api=True)
    report = run(warehouse, client, export)
    assert report.ok, report.stopped_by
    assert (report.added, report.rejected) == (1, 2)
    assert [e["riid"] for e in emulator.store.custom_events(EVENT)] == [101]
    assert "RECIPIENT_NOT_FOUND" in rejected(warehouse, export.name)[CAROL]


# --------------------------------------------------------------------------- PETs


def _pet_export(**overrides) -> PetExport:
    settings = dict(
        type="pet",
        name="vip_pet",
        audience=AUDIENCE,
        list=LIST,
        folder="Pets",
        pet="VIP_PET",
        fields={"RECENCY": "recency_score", "CUST": "customer_id"},
    )
    return PetExport(**(settings | overrides))


def test_pet_created_when_missing_and_rows_merged(emulator, client, warehouse) -> None:
    export = _pet_export()
    report = run(warehouse, client, export)

    assert report.ok, report.stopped_by
    pet = emulator.store.pet(LIST, "VIP_PET")
    assert pet["folder"] == "Pets"
    assert sorted((f["fieldName"], f["fieldType"]) for f in pet["fields"]) == [
        ("CUST", "STR500"),
        ("RECENCY", "STR500"),
    ]
    rows = {r["riid"]: r["fields"] for r in emulator.store.pet_rows(LIST, "VIP_PET")}
    assert rows == {101: {"RECENCY": "91", "CUST": "C-1"}}
    problems = rejected(warehouse, export.name)
    assert problems[DAVE].startswith("no RIID")
    assert "RECIPIENT_NOT_FOUND" in problems[CAROL]
    assert report.added == 1 and report.rejected == 2

    # In fields mode an exit deletes the member's PET row.
    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    report = run(warehouse, client, export)
    assert report.ok and report.removed == 1
    assert emulator.store.pet_rows(LIST, "VIP_PET") == []
    assert len(emulator.store.api_calls("createPet")) == 1  # created once, then found


def test_pet_membership_column_set_and_cleared(emulator, client, warehouse) -> None:
    export = _pet_export(name="vip_flags", pet="SEGMENTS", mode="membership", fields={})
    assert run(warehouse, client, export).ok
    assert [f["fieldName"] for f in emulator.store.pet(LIST, "SEGMENTS")["fields"]] == ["VIP"]
    assert emulator.store.pet_rows(LIST, "SEGMENTS")[0]["fields"] == {"VIP": "1"}

    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    report = run(warehouse, client, export)
    assert report.ok and report.removed == 1
    rows = emulator.store.pet_rows(LIST, "SEGMENTS")
    assert [(r["riid"], r["fields"]["VIP"]) for r in rows] == [(101, "0")]  # kept, not deleted


def test_pet_schema_drift_stops_before_sending(emulator, client, warehouse) -> None:
    emulator.store.ensure_folder("Pets")
    emulator.store.create_pet(
        LIST, "VIP_PET", "Pets", [{"fieldName": "RECENCY", "fieldType": "STR500"}]
    )
    export = _pet_export()
    report = run(warehouse, client, export)

    assert not report.ok
    assert report.stopped_by.startswith("SchemaDrift")
    assert "no column CUST" in report.stopped_by and "new PET name" in report.stopped_by
    assert emulator.store.api_calls("mergePetMembers") == []
    assert watermark(warehouse, export.name) is None  # the next run starts over
    outcomes = warehouse.execute(
        "select outcome from exports.ledger where export = ? and batch_id not like 'nocall-%'",
        [export.name],
    ).fetchall()
    assert outcomes == []  # no batch was begun

    handler = PetHandler(export)
    with pytest.raises(SchemaDrift) as info:
        handler.prepare(client)
    assert info.value.missing == ["CUST"]


# --------------------------------------------------------------------------- supplemental tables


def test_supplemental_table_created_and_rows_merged(emulator, client, warehouse) -> None:
    export = SupplementalTableExport(
        type="supplemental_table",
        name="vip_supp",
        audience=AUDIENCE,
        folder="Supp",
        table="AUDIENCE_ROWS",
        fields={"EMAIL": "email", "RECENCY": "recency_score"},
    )
    report = run(warehouse, client, export)

    assert report.ok, report.stopped_by
    assert emulator.store.folder_exists("Supp")
    table = emulator.store.supp_table("Supp", "AUDIENCE_ROWS")
    assert table["primary_keys"] == ["RIID", "CAMPAIGN_ID"]
    rows = {
        r["fields"]["RIID"]: r["fields"] for r in emulator.store.supp_rows("Supp", "AUDIENCE_ROWS")
    }
    assert rows["101"] == {
        "RIID": "101",
        "CAMPAIGN_ID": "vip_supp",
        "EMAIL": "alice@example.com",
        "RECENCY": "91",
        "IN_AUDIENCE": "1",
    }
    assert sorted(rows) == ["101", "103"]  # no RIID check in Responsys for a supp table
    assert "RIID is empty" in rejected(warehouse, export.name)[DAVE]

    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    report = run(warehouse, client, export)
    assert report.ok and (report.removed, report.api_calls) == (1, 1)
    rows = {
        r["fields"]["RIID"]: r["fields"] for r in emulator.store.supp_rows("Supp", "AUDIENCE_ROWS")
    }
    assert rows["101"]["IN_AUDIENCE"] == "0"
    assert len(emulator.store.api_calls("createSuppTable")) == 1


# --------------------------------------------------------------------------- SFTP files


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[tuple[SandboxSFTPServer, object]]:
    root = tmp_path / "sftp"
    (root / "connect").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "import").mkdir()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", 0)
    server = SandboxSFTPServer(root, keys.host_key_path, keys.client_public_key)
    port = server.start()
    keys = ensure_ssh_keys(tmp_path / "ssh", "127.0.0.1", port)
    yield server, keys
    server.stop()


def _factory(server: SandboxSFTPServer, keys):
    def make() -> SFTPSource:
        return SFTPSource(
            host="127.0.0.1",
            port=server.port,
            username="responsys",
            private_key=keys.client_key_path.read_text(),
            known_hosts_path=str(keys.known_hosts_path),
            remote_dir="/connect",
            connect_timeout=5.0,
            read_timeout=10.0,
            max_attempts=2,
            backoff_seconds=0.05,
        )

    return make


def _sftp_export(**overrides) -> SftpFileExport:
    settings = dict(
        type="sftp_file",
        name="vip_file",
        audience=AUDIENCE,
        remote_dir="/import",
        fields={"RIID_": "riid", "EMAIL_ADDRESS_": "email", "NOTE": "customer_id"},
    )
    return SftpFileExport(**(settings | overrides))


def test_sftp_file_uploaded_with_quoted_csv(sftp, warehouse) -> None:
    server, keys = sftp
    warehouse.execute(
        "update audiences.profiles set customer_id = 'Smith, \"Al\"' where contact_key = ?",
        [ALICE],
    )
    export = _sftp_export()
    handler = handler_for(export, sftp_factory=_factory(server, keys))
    report = run(warehouse, None, export, handler)

    assert report.ok, report.stopped_by
    assert (report.added, report.suppressed, report.api_calls) == (3, 1, 1)
    files = sorted((server.root / "import").iterdir())
    assert len(files) == 1 and files[0].name.startswith("vip_file_")
    assert files[0].name.endswith(".csv") and not files[0].name.startswith(".")
    rows = list(csv.reader(io.StringIO(files[0].read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["RIID_", "EMAIL_ADDRESS_", "NOTE", "ACTION"]
    assert rows[1:] == [
        ["101", "alice@example.com", 'Smith, "Al"', "ENTER"],
        ["103", "carol@example.com", "C-3", "ENTER"],
        ["", "dave@example.com", "", "ENTER"],
    ]  # Bob is suppressed: not in the file

    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    handler = handler_for(export, sftp_factory=_factory(server, keys))
    report = run(warehouse, None, export, handler)
    assert report.ok and report.removed == 1
    newest = sorted((server.root / "import").iterdir())[-1]
    assert newest.read_text().splitlines()[1] == '"101","alice@example.com","Smith, ""Al""","EXIT"'


def test_sftp_file_encrypted_decrypts_to_the_csv(sftp, warehouse, gpg_home, monkeypatch, tmp_path):
    server, keys = sftp
    monkeypatch.setenv("VIP_FILE_PGP_KEY", gpg_home.public_key_armored)
    export = _sftp_export(
        encrypt_to_env="VIP_FILE_PGP_KEY", remote_dir="/other", file_prefix="audience-vip"
    )
    handler = SftpFileHandler(export, _factory(server, keys))
    report = run(warehouse, None, export, handler)

    assert report.ok, report.stopped_by
    assert list((server.root / "connect").iterdir()) == []  # never the ingest folder
    (uploaded,) = (server.root / "other").iterdir()
    assert uploaded.name.startswith("audience-vip_") and uploaded.name.endswith(".csv.gpg")
    plain = tmp_path / "plain.csv"
    with Decryptor(gpg_home.private_key_armored, gpg_home.passphrase) as decryptor:
        decryptor.decrypt_file(uploaded, plain)
    lines = plain.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"RIID_","EMAIL_ADDRESS_","NOTE","ACTION"'
    assert lines[1] == '"101","alice@example.com","C-1","ENTER"'
    assert len(lines) == 4


def test_sftp_file_missing_key_stops_before_upload(sftp, warehouse, monkeypatch) -> None:
    server, keys = sftp
    monkeypatch.delenv("VIP_FILE_PGP_KEY", raising=False)
    export = _sftp_export(encrypt_to_env="VIP_FILE_PGP_KEY")
    report = run(warehouse, None, export, SftpFileHandler(export, _factory(server, keys)))
    assert not report.ok and "VIP_FILE_PGP_KEY is empty" in report.stopped_by
    assert list((server.root / "import").iterdir()) == []

    report = run(warehouse, None, export, SftpFileHandler(export))  # no SFTP connection given
    assert not report.ok and "no SFTP connection" in report.stopped_by


# --------------------------------------------------------------------------- registry


def _one_export_per_new_type() -> list:
    supplemental = SupplementalTableExport(
        type="supplemental_table", name="t", audience=AUDIENCE, folder="F", table="T"
    )
    return [_event_export(), _pet_export(), supplemental, _sftp_export()]


def test_handler_for_every_new_type_without_resources() -> None:
    exports = _one_export_per_new_type()
    kinds = [type(handler_for(e)) for e in exports]
    assert kinds == [CustomEventHandler, PetHandler, SupplementalTableHandler, SftpFileHandler]
    assert handler_for(_sftp_export()).sftp_factory is None


def test_dry_run_plans_every_new_type_without_calls(warehouse) -> None:
    exports = _one_export_per_new_type()
    for export in exports:
        report = run_export(
            warehouse,
            None,
            name=export.name,
            audience=AUDIENCE,
            handler=handler_for(export),
            backfill=True,
            dry_run=True,
        )
        planned = {row["contact_key"]: row["after"] for row in report.planned}
        assert set(planned) == {ALICE, CAROL, DAVE}, export.type  # Bob is suppressed
    assert planned[ALICE] == {
        "RIID_": "101",
        "EMAIL_ADDRESS_": "alice@example.com",
        "NOTE": "C-1",
        "ACTION": "ENTER",
    }
