"""A profile list export's side PETs (user fields, segment memberships) against the emulator,
and the config checks that guard them. Real DuckDB, real REST client, the Responsys emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from responsys_assets.config import ConfigError, parse_config
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.runner import ExportReport, run_export
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.sandbox.api import EmulatorServer
from responsys_assets.validation import validate_project
from tests.defs.exports.hybrid_support import (
    AUDIENCE,
    FIRST_RIID,
    FOLDER,
    LIST,
    add_changes,
    add_people,
    email,
    list_export,
    seeded_emulator,
)
from tests.defs.exports.warehouse_rows import open_warehouse

USER, PASSWORD = "api_user", "side-Pets-1"
PEOPLE = range(FIRST_RIID, FIRST_RIID + 6)
SUPPRESSED = {FIRST_RIID + 5}
LAPSING = "lapsing"
USER_FIELDS = {
    "name": "RA_USER_FIELDS",
    "fields": {"TOWN": "customer_id", "RECENCY": "recency_score"},
}
SEGMENTS = {"name": "RA_SEGMENTS", "audiences": [AUDIENCE, LAPSING]}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    server = seeded_emulator(tmp_path / "emulator", USER, PASSWORD, members=20)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator) -> Iterator[ResponsysClient]:
    with ResponsysClient(
        endpoint=emulator.base_url, username=USER, password=PASSWORD, timeout=5.0, max_attempts=2
    ) as client:
        yield client


@pytest.fixture
def warehouse(warehouse_location) -> Iterator[duckdb.DuckDBPyConnection]:
    """Six contacts enter `vip` (one suppressed); the first two are also `lapsing`.
    On each backend (`warehouse_location`: tests/support/warehouses.py)."""
    conn = open_warehouse(warehouse_location)
    add_people(conn, PEOPLE, suppressed=SUPPRESSED)
    add_changes(conn, LAPSING, [f"riid:{r}" for r in PEOPLE[:2]], "ENTER")
    yield conn
    conn.close()


def export_with_pets(**overrides):
    settings = {"file_import": None, "user_fields_pet": USER_FIELDS, "segments_pet": SEGMENTS}
    return list_export(**(settings | overrides))


def run(conn, client, export) -> ExportReport:
    return run_export(
        conn,
        client,
        name=export.name,
        audience=AUDIENCE,
        handler=handler_for(export),
        backfill=True,
    )


def pet_rows(emulator, pet: str) -> dict[int, dict]:
    return {r["riid"]: r["fields"] for r in emulator.store.pet_rows(LIST, pet)}


def pet_merges(emulator) -> list[str]:
    return [c["path"] for c in emulator.store.api_calls("mergePetMembers")]


# --------------------------------------------------------------------------- sending


def test_pets_created_and_filled_then_kept_in_line(emulator, client, warehouse):
    export = export_with_pets()
    report = run(warehouse, client, export)
    assert report.ok, report.stopped_by
    assert report.added == 5 and report.warnings == []

    user_fields = emulator.store.pet(LIST, "RA_USER_FIELDS")
    assert user_fields["folder"] == FOLDER
    assert sorted((f["fieldName"], f["fieldType"]) for f in user_fields["fields"]) == [
        ("RECENCY", "STR500"),
        ("TOWN", "STR500"),
    ]
    assert [f["fieldName"] for f in emulator.store.pet(LIST, "RA_SEGMENTS")["fields"]] == [
        "VIP",
        "LAPSING",
    ]
    sent = [r for r in PEOPLE if r not in SUPPRESSED]
    assert pet_rows(emulator, "RA_USER_FIELDS") == {
        r: {"TOWN": f'Town {r}, "Old" quarter', "RECENCY": "0"} for r in sent
    }
    assert pet_rows(emulator, "RA_SEGMENTS") == {
        r: {"VIP": "true", "LAPSING": "true" if r < FIRST_RIID + 2 else "false"} for r in sent
    }
    assert report.details["segments_pet"] == {
        "pet": "RA_SEGMENTS",
        "rows_owed": 5,
        "rows_written": 5,
        "created": True,
    }
    assert len(pet_merges(emulator)) == 2

    # Nothing changed: no PET call at all (not even a listing).
    quiet = run(warehouse, client, export)
    assert quiet.api_calls == 0 and len(emulator.store.api_calls("getProfileExtensions")) == 2

    # A contact enters `lapsing` only: its own audience did not change, its segments row does.
    third = FIRST_RIID + 3
    add_changes(warehouse, LAPSING, [f"riid:{third}"], "ENTER")
    report = run(warehouse, client, export)
    assert report.ok and report.pending == 0
    assert report.details["segments_pet"]["rows_written"] == 1
    assert report.details["user_fields_pet"]["rows_owed"] == 0
    assert pet_rows(emulator, "RA_SEGMENTS")[third] == {"VIP": "true", "LAPSING": "true"}
    assert len(pet_merges(emulator)) == 3 and "RA_SEGMENTS" in pet_merges(emulator)[-1]

    # Leaving the export's audience with on_exit: delete removes the member and its PET rows.
    add_changes(warehouse, AUDIENCE, [f"riid:{FIRST_RIID}"], "EXIT")
    report = run(warehouse, client, export)
    assert report.ok and report.removed == 1
    assert FIRST_RIID not in pet_rows(emulator, "RA_SEGMENTS")
    state = warehouse.execute(
        "select count(*) from exports.pet_rows_sent where contact_key = ?", [f"riid:{FIRST_RIID}"]
    ).fetchone()[0]
    assert state == 0  # a re-entry writes its rows again


def test_a_member_that_exits_but_stays_gets_its_segment_cleared(emulator, client, warehouse):
    export = export_with_pets(
        on_exit="clear_column", membership_column="IN_VIP", user_fields_pet=None
    )
    assert run(warehouse, client, export).ok
    add_changes(warehouse, AUDIENCE, [f"riid:{FIRST_RIID}"], "EXIT")
    report = run(warehouse, client, export)
    assert report.ok and report.removed == 1
    assert pet_rows(emulator, "RA_SEGMENTS")[FIRST_RIID] == {"VIP": "false", "LAPSING": "true"}
    # Still a list member: later changes of a listed audience keep reaching its row.
    add_changes(warehouse, LAPSING, [f"riid:{FIRST_RIID}"], "EXIT")
    assert run(warehouse, client, export).ok
    assert pet_rows(emulator, "RA_SEGMENTS")[FIRST_RIID] == {"VIP": "false", "LAPSING": "false"}


def test_custom_member_values(emulator, client, warehouse):
    segments = SEGMENTS | {"member_value": "Y", "non_member_value": "N", "field_type": "STR4000"}
    export = export_with_pets(user_fields_pet=None, segments_pet=segments)
    assert run(warehouse, client, export).ok
    pet = emulator.store.pet(LIST, "RA_SEGMENTS")
    assert {f["fieldType"] for f in pet["fields"]} == {"STR4000"}
    assert pet_rows(emulator, "RA_SEGMENTS")[FIRST_RIID + 2] == {"VIP": "Y", "LAPSING": "N"}


def test_an_existing_pet_without_a_column_gets_the_others_and_a_warning(
    emulator, client, warehouse
):
    emulator.store.create_pet(
        LIST, "RA_USER_FIELDS", FOLDER, [{"fieldName": "TOWN", "fieldType": "STR500"}]
    )
    export = export_with_pets(segments_pet=None)
    report = run(warehouse, client, export)

    assert report.ok, report.stopped_by  # unlike a `pet` export, which stops on drift
    assert report.added == 5  # the list merge is not held back
    (warning,) = report.warnings
    assert "has no column RECENCY" in warning and "by hand" in warning
    assert report.metadata()["warnings"] == [warning]
    assert report.details["user_fields_pet"]["dropped_columns"] == ["RECENCY"]
    assert report.details["user_fields_pet"]["created"] is False
    rows = pet_rows(emulator, "RA_USER_FIELDS")
    assert rows[FIRST_RIID] == {"TOWN": 'Town 1000, "Old" quarter'}
    assert len(emulator.store.api_calls("createPet")) == 0
    written = warehouse.execute(
        "select fields from exports.pet_rows_sent where pet = 'RA_USER_FIELDS' limit 1"
    ).fetchone()[0]
    assert set(json.loads(written)) == {"TOWN"}


def test_rows_the_list_does_not_hold_yet_are_owed_until_it_does(emulator, client, warehouse):
    """As after a file backfill the Connect job has not imported yet: the PET merge is refused
    row by row, the rows stay owed, and go once the member exists."""
    export = export_with_pets(segments_pet=None)
    assert run(warehouse, client, export).ok
    add_people(warehouse, range(FIRST_RIID + 50, FIRST_RIID + 51))  # not on the emulator list
    warehouse.execute(
        "insert into exports.last_sent (export, contact_key, fields, sent_at) "
        "values ('vip_list', 'riid:1050', '{}', now())"
    )
    report = run(warehouse, client, export)
    assert report.ok and "RECIPIENT_NOT_FOUND" in report.warnings[0]
    assert report.details["user_fields_pet"]["rows_refused"] == {"RECIPIENT_NOT_FOUND": 1}

    emulator.store.write_members(LIST, [{"riid": 1050, "email_address": email(1050)}], [])
    report = run(warehouse, client, export)
    assert report.ok and report.warnings == []
    assert 1050 in pet_rows(emulator, "RA_USER_FIELDS")


# --------------------------------------------------------------------------- config checks


def _config(**profile_list) -> str:
    export = {
        "name": "vip_list",
        "type": "profile_list",
        "audience": "vip",
        "list": "CONTACTS_LIST",
        "folder": "Exports",
    } | profile_list
    return yaml.safe_dump(
        {
            "audiences": {
                "definitions": [
                    {"name": "vip", "rule": "recency_score > 50"},
                    {"name": "a_very_long_audience_name_for_a_column", "rule": "clicks > 1"},
                ]
            },
            "exports": [export],
        }
    )


def _problems(**profile_list) -> str:
    with pytest.raises(ConfigError) as info:
        validate_project(parse_config(_config(**profile_list), source="test.yaml"))
    return str(info.value)


def test_a_valid_config_loads():
    config = parse_config(
        _config(
            user_fields_pet={"fields": {"TOWN": "customer_id"}},
            segments_pet={"audiences": ["vip", "engaged"]},
            file_import={"remote_dir": "/inbound", "threshold": 10000},
        )
    )
    validate_project(config)
    (export,) = config.exports
    assert (export.user_fields_pet.name, export.segments_pet.name) == (
        "RA_USER_FIELDS",
        "RA_SEGMENTS",
    )
    assert (export.segments_pet.member_value, export.segments_pet.non_member_value) == (
        "true",
        "false",
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"user_fields_pet": {"fields": {f"F{i}": "clicks" for i in range(30)}}},
            "user_fields_pet.fields: Value error, at most 29 fields (got 30)",
        ),
        (
            {"segments_pet": {"audiences": [f"a{i}" for i in range(30)]}},
            "at most 29 audiences (got 30)",
        ),
        ({"segments_pet": {"audiences": []}}, "needs at least one audience"),
        ({"segments_pet": {"audiences": ["vip", "vip"]}}, "audiences listed twice: vip"),
        (
            {"segments_pet": {"audiences": ["vip"], "member_value": "1", "non_member_value": "1"}},
            "member_value and non_member_value must differ",
        ),
        (
            {
                "user_fields_pet": {"name": "SAME", "fields": {"TOWN": "customer_id"}},
                "segments_pet": {"name": "same", "audiences": ["vip"]},
            },
            "need different PET names",
        ),
        (
            {
                "segments_pet": {"audiences": ["vip"]},
                "destination_override": {"list": "customer_id"},
            },
            "segments_pet write to the export's own list and cannot be combined",
        ),
        ({"file_import": {"remote_dir": "/in", "threshold": 0}}, "file_import.threshold"),
        (
            {"file_import": {"remote_dir": "/in", "threshold": 5, "file_prefix": "a b"}},
            "file_import.file_prefix",
        ),
    ],
)
def test_shape_errors_name_the_key(settings, message):
    with pytest.raises(ConfigError) as info:
        parse_config(_config(**settings), source="test.yaml")
    assert "test.yaml" in str(info.value) and message in str(info.value)


def test_names_audiences_and_columns_are_checked_at_load():
    problems = _problems(
        user_fields_pet={
            "name": "1BAD",
            "fields": {"NUMBER": "clicks", "RIID_": "riid", "TOWN": "no_such_column"},
        },
        segments_pet={
            "audiences": ["vip", "nobody", "a_very_long_audience_name_for_a_column"],
            "folder": "Bad/Folder",
        },
    )
    assert "export 'vip_list' user_fields_pet: PET name '1BAD' must start with a letter" in problems
    assert "user_fields_pet: field 'NUMBER' is an Oracle reserved word" in problems
    assert "user_fields_pet: RIID_ is a Responsys system column" in problems
    assert "fields.TOWN reads profile column 'no_such_column', which does not exist" in problems
    assert "segments_pet: folder name 'Bad/Folder'" in problems
    assert "segments_pet: audiences lists 'nobody', which is not defined" in problems
    assert (
        "field 'A_VERY_LONG_AUDIENCE_NAME_FOR_A_COLUMN' is 38 characters long; the limit is 30 "
        "(the column of audience 'a_very_long_audience_name_for_a_column' is its name "
        "upper-cased)" in problems
    )
