"""The `matches_responsys` check end to end: export assets materialised with Dagster into the
Responsys emulator over HTTP, then the emulator's store edited directly, as a marketer editing
Responsys would, and the next run's read-back naming the records and fields that drifted."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from responsys_assets.config import (
    MergeRuleConfig,
    PetExport,
    ProfileListExport,
    ProjectConfig,
    SupplementalTableExport,
)
from responsys_assets.defs.exports.assets import build_export_asset
from responsys_assets.keys import RECONCILE_CHECK
from responsys_assets.resources import ResponsysAPIResource, SFTPResource
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from responsys_assets.sandbox.store import Store
from responsys_assets.warehouse.resource import WarehouseResource
from tests.defs.exports.warehouse_rows import add_change, add_contact, open_warehouse, sha256

USER, PASSWORD = "reconcile_user", "Reconcile-Pa55!"
LIST, FOLDER, PET, TABLE, AUDIENCE = "CONTACTS_LIST", "Exports", "Scores", "Clicks", "vip"
RIIDS = (101, 102, 103)

LIST_EXPORT = ProfileListExport(
    type="profile_list",
    name="vip_list",
    audience=AUDIENCE,
    list=LIST,
    folder=FOLDER,
    merge_rule=MergeRuleConfig(insert_on_no_match=False),
    fields={"RECENCY": "recency_score"},
)
PET_EXPORT = PetExport(
    type="pet",
    name="vip_pet",
    audience=AUDIENCE,
    list=LIST,
    folder=FOLDER,
    pet=PET,
    fields={"RECENCY_SCORE": "recency_score"},
)
TABLE_EXPORT = SupplementalTableExport(
    type="supplemental_table",
    name="vip_table",
    audience=AUDIENCE,
    folder=FOLDER,
    table=TABLE,
    fields={"RECENCY": "recency_score"},
)
EXPORTS = (LIST_EXPORT, PET_EXPORT, TABLE_EXPORT)


@pytest.fixture
def emulator(tmp_path: Path):
    server = EmulatorServer(tmp_path / "emulator", EmulatorSettings(USER, PASSWORD))
    server.store.ensure_folder(FOLDER)
    server.store.ensure_list(LIST, FOLDER)
    server.store.write_members(
        LIST,
        [{"riid": r, "email_address": f"p{r}@example.com", "customer_id": f"C-{r}"} for r in RIIDS],
        [],
    )
    with server:
        yield server


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    conn = open_warehouse(path)
    for riid in RIIDS:
        email = f"p{riid}@example.com"
        key = f"riid:{riid}"
        add_contact(
            conn, key, riid=riid, email=email, email_sha256=sha256(email), recency_score=riid - 60
        )
        add_change(conn, AUDIENCE, key, "ENTER")
    conn.close()
    return path


def materialize(
    export, warehouse_path: Path, emulator: EmulatorServer
) -> dg.ExecuteInProcessResult:
    asset = build_export_asset(export, ProjectConfig(exports=list(EXPORTS)))
    return dg.materialize(
        [asset],
        resources={
            "warehouse": WarehouseResource(
                location=str(warehouse_path), landing_dir=str(warehouse_path.parent / "landing")
            ),
            "responsys": ResponsysAPIResource(
                endpoint=emulator.base_url, username=USER, password=PASSWORD, timeout_seconds=10
            ),
            "sftp": SFTPResource(),
        },
    )


def reconcile_check(result: dg.ExecuteInProcessResult):
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == RECONCILE_CHECK
    ]
    return evaluation


def drifted(evaluation) -> list[str]:
    return evaluation.metadata["drifted_records"].value


def reconciliations(warehouse_path: Path, export: str) -> list[tuple]:
    conn = open_warehouse(warehouse_path)
    try:
        return conn.execute(
            "select checked, matched, missing, differing, still_present, details "
            "from exports.reconciliations where export = ? order by checked_at",
            [export],
        ).fetchall()
    finally:
        conn.close()


def enter_contact(warehouse_path: Path, emulator: EmulatorServer, riid: int) -> None:
    email = f"p{riid}@example.com"
    emulator.store.write_members(
        LIST, [{"riid": riid, "email_address": email, "customer_id": f"C-{riid}"}], []
    )
    conn = open_warehouse(warehouse_path)
    key = f"riid:{riid}"
    add_contact(conn, key, riid=riid, email=email, email_sha256=sha256(email), recency_score=1)
    add_change(conn, AUDIENCE, key, "ENTER")
    conn.close()


def test_a_run_that_writes_nothing_reads_nothing_back(warehouse_path, emulator):
    """A no-change run stays free of API calls: Retrieve APIs are paced at about 100 a minute."""
    assert reconcile_check(materialize(LIST_EXPORT, warehouse_path, emulator)).passed
    before = len(emulator.store.api_calls())
    check = reconcile_check(materialize(LIST_EXPORT, warehouse_path, emulator))
    assert check.passed and check.metadata["reconcile_checked"].value == 0
    assert "wrote nothing" in check.description
    assert [c["api"] for c in emulator.store.api_calls()[before:]] == []


def exit_contact(warehouse_path: Path, riid: int) -> None:
    conn = open_warehouse(warehouse_path)
    add_change(conn, AUDIENCE, f"riid:{riid}", "EXIT")
    conn.close()


def test_untampered_exports_pass_and_are_recorded(warehouse_path, emulator):
    for export in EXPORTS:
        result = materialize(export, warehouse_path, emulator)
        assert result.success
        check = reconcile_check(result)
        assert check.passed, drifted(check)
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert check.metadata["reconcile_checked"].value == 3
        [materialization] = result.asset_materializations_for_node(f"exports__{export.name}")
        assert materialization.metadata["reconcile_match"].value == 3
        assert reconciliations(warehouse_path, export.name) == [(3, 3, 0, 0, 0, "[]")]
    reads = {c["api"] for c in emulator.store.api_calls() if c["api"].startswith("retrieve")}
    assert reads == {"retrieveListMembers", "retrievePetMembers", "retrieveSuppData"}


def test_edits_in_responsys_fail_the_check_naming_record_and_field(warehouse_path, emulator):
    for export in EXPORTS:
        assert reconcile_check(materialize(export, warehouse_path, emulator)).passed
    store: Store = emulator.store
    # A marketer edits member 101's RECENCY, deletes member 102 (and with it its PET row),
    # edits 103's PET score, and deletes 101's supplemental row.
    [ann] = store.find_members(LIST, "riid", [101])
    store.write_members(LIST, [], [{**ann, "fields": {**ann["fields"], "RECENCY": "99"}}])
    store.delete_members(LIST, [102])
    pet_row = store.pet_rows_for(LIST, PET, [103])[103]
    store.write_pet_rows(LIST, PET, {103: {**pet_row, "RECENCY_SCORE": "0"}})
    [supp_key] = [r["pk"] for r in store.supp_rows(FOLDER, TABLE) if r["pk"][0] == "101"]
    assert store.delete_supp_row(FOLDER, TABLE, Store.supp_key(supp_key))
    # A run reads back only when it wrote something: contact 104 enters the audience.
    enter_contact(warehouse_path, emulator, 104)

    list_check = reconcile_check(materialize(LIST_EXPORT, warehouse_path, emulator))
    assert not list_check.passed
    assert sorted(drifted(list_check)) == [
        "RIID_ 101: field_differs RECENCY",
        "RIID_ 102: missing_in_responsys",
    ]
    details = {d["record"]: d for d in list_check.metadata["details"].value}
    assert details["RIID_ 101"]["fields"] == [
        {"field": "RECENCY", "expected": "41", "actual": "99"}
    ]
    assert "@" not in json.dumps(list_check.metadata["details"].value)

    pet_check = reconcile_check(materialize(PET_EXPORT, warehouse_path, emulator))
    assert sorted(drifted(pet_check)) == [
        "RIID_ 102: missing_in_responsys",
        "RIID_ 103: field_differs RECENCY_SCORE",
    ]

    table_check = reconcile_check(materialize(TABLE_EXPORT, warehouse_path, emulator))
    assert drifted(table_check) == ["RIID=101, CAMPAIGN_ID=vip_table: missing_in_responsys"]

    [_, latest] = reconciliations(warehouse_path, LIST_EXPORT.name)
    assert latest[:5] == (4, 2, 1, 1, 0)
    assert "RIID_ 101" in latest[5] and "@" not in latest[5]


def test_a_deleted_exit_found_again_is_still_present(warehouse_path, emulator):
    assert reconcile_check(materialize(PET_EXPORT, warehouse_path, emulator)).passed
    exit_contact(warehouse_path, 103)
    result = materialize(PET_EXPORT, warehouse_path, emulator)
    check = reconcile_check(result)
    assert check.passed, drifted(check)  # 101 and 102 still match; 103's row is gone
    assert emulator.store.pet_rows_for(LIST, PET, [103]) == {}
    # Someone puts 103's row back by hand.
    emulator.store.write_pet_rows(LIST, PET, {103: {"RECENCY_SCORE": "43"}})
    enter_contact(warehouse_path, emulator, 104)  # the next run writes, so it reads back
    check = reconcile_check(materialize(PET_EXPORT, warehouse_path, emulator))
    assert drifted(check) == ["RIID_ 103: still_present"]


def test_marked_exits_are_checked_for_their_mark(warehouse_path, emulator):
    assert reconcile_check(materialize(TABLE_EXPORT, warehouse_path, emulator)).passed
    exit_contact(warehouse_path, 102)
    assert reconcile_check(materialize(TABLE_EXPORT, warehouse_path, emulator)).passed
    store: Store = emulator.store
    [row] = [r for r in store.supp_rows(FOLDER, TABLE) if r["pk"][0] == "102"]
    assert row["fields"]["IN_AUDIENCE"] == "0"
    store.write_supp_rows(
        FOLDER, TABLE, {Store.supp_key(row["pk"]): {**row["fields"], "IN_AUDIENCE": "1"}}
    )
    enter_contact(warehouse_path, emulator, 104)  # the next run writes, so it reads back
    check = reconcile_check(materialize(TABLE_EXPORT, warehouse_path, emulator))
    assert drifted(check) == ["RIID=102, CAMPAIGN_ID=vip_table: field_differs IN_AUDIENCE"]


def test_sample_zero_turns_the_check_off(warehouse_path, emulator):
    off = LIST_EXPORT.model_copy(
        update={"reconcile": LIST_EXPORT.reconcile.model_copy(update={"sample": 0})}
    )
    result = materialize(off, warehouse_path, emulator)
    assert result.success
    assert [e.check_name for e in result.get_asset_check_evaluations()] == [
        "no_batch_with_unknown_outcome"
    ]
    assert not [c for c in emulator.store.api_calls() if c["api"] == "retrieveListMembers"]
