"""Per-record destinations (`destination_override`) and custom-event UPDATEs, end to end: a real
DuckDB warehouse, the shared runner, the real REST client and the Responsys emulator.

The override column in these tests is `engagement_bucket` (a text score column), set by hand to
the names each contact should go to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from responsys_assets.config import (
    CampaignTriggerExport,
    ConfigError,
    CustomEventExport,
    MergeRuleConfig,
    PetExport,
    ProfileListExport,
    SupplementalTableExport,
    parse_config,
)
from responsys_assets.defs.exports import ledger
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.runner import ExportReport, run_export
from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from responsys_assets.validation import validate_project
from tests.defs.exports.warehouse_rows import add_change, add_contact, open_warehouse, sha256

USER, PASSWORD = "api_user", "dest-Pass-1"
LIST, FOLDER, AUDIENCE = "CONTACTS_LIST", "Exports", "vip"
LISTS = (LIST, "VIP_A", "VIP_B")
CAMPAIGNS = ("Welcome", "Welcome_A", "Welcome_B")
EVENTS = ("AUDIENCE_CHANGED", "EVENT_A", "EVENT_B")
RIIDS = (101, 102, 103, 104, 105)
ALICE, BOB, CAROL, DAVE, ERIN = (f"riid:{riid}" for riid in RIIDS)
RULE = MergeRuleConfig(match_column_1="RIID", insert_on_no_match=False)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """Three lists holding every contact (opted in), three campaigns and three custom events."""
    server = EmulatorServer(
        tmp_path / "emulator", EmulatorSettings(username=USER, password=PASSWORD)
    )
    members = [
        {
            "riid": riid,
            "email_address": f"c{riid}@example.com",
            "email_sha256_hash": sha256(f"c{riid}@example.com"),
            "email_permission_status": "I",
        }
        for riid in RIIDS
    ]
    for name in LISTS:
        server.store.ensure_list(name, FOLDER)
        server.store.write_members(name, members, [])
    for name in CAMPAIGNS:
        server.store.ensure_campaign(name, list_name=LIST)
    for name in EVENTS:
        server.store.ensure_custom_event(name)
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
    """Five contacts enter; Erin is suppressed. Nobody has an override value yet.
    On each backend (`warehouse_location`: tests/support/warehouses.py)."""
    conn = open_warehouse(warehouse_location)
    for riid, key in zip(RIIDS, (ALICE, BOB, CAROL, DAVE, ERIN), strict=True):
        suppressed = key == ERIN
        add_contact(
            conn,
            key,
            riid=riid,
            email=f"c{riid}@example.com",
            suppressed=suppressed,
            recency_score=riid - 50,
        )
        add_change(conn, AUDIENCE, key, "ENTER", suppressed=suppressed)
    conn.execute("update audiences.scores set engagement_bucket = ''")
    yield conn
    conn.close()


def aim(conn, **names: str) -> None:
    """Set contacts' override column: aim(conn, r101="VIP_A") sets it for riid:101."""
    for key, value in names.items():
        conn.execute(
            "update audiences.scores set engagement_bucket = ? where contact_key = ?",
            [value, f"riid:{key[1:]}"],
        )


def run(conn, client, export, **kwargs) -> ExportReport:
    return run_export(
        conn,
        client,
        name=export.name,
        audience=export.audience,
        handler=handler_for(export),
        backfill=export.backfill,
        triggers=export.type == "campaign_trigger",
        **kwargs,
    )


def rejected(conn, export: str) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "select contact_key, error_class, message from exports.rejected_records where export = ?",
        [export],
    ).fetchall()
    return {key: (error_class, message) for key, error_class, message in rows}


def flagged(emulator, list_name: str, column: str = "VIP") -> set[int]:
    return {
        m["riid"] for m in emulator.store.list_members(list_name) if m["fields"].get(column) == "1"
    }


def sends(emulator, campaign: str) -> list[int]:
    return [s["riid"] for s in emulator.store.email_sends(campaign)]


def batch_destinations(conn, export: str) -> set[str]:
    rows = conn.execute(
        "select destination::varchar from exports.ledger where export = ? "
        "and destination is not null",
        [export],
    ).fetchall()
    return {row[0] for row in rows}


# --------------------------------------------------------------------------- profile lists


def _list_export(**overrides) -> ProfileListExport:
    settings = dict(
        type="profile_list",
        name="vip_list",
        audience=AUDIENCE,
        list=LIST,
        folder=FOLDER,
        merge_rule=RULE,
        on_exit="clear_column",
        membership_column="VIP",
        destination_override={"list": "engagement_bucket"},
    )
    return ProfileListExport(**(settings | overrides))


def test_each_member_goes_to_the_list_their_profile_names(emulator, client, warehouse):
    aim(warehouse, r101="VIP_A", r102="VIP_B", r103="", r104="bad name!", r105="VIP_A")
    export = _list_export()
    report = run(warehouse, client, export)

    assert report.ok, report.stopped_by
    assert flagged(emulator, "VIP_A") == {101}
    assert flagged(emulator, "VIP_B") == {102}
    assert flagged(emulator, LIST) == {103}  # empty value: the configured list
    assert (report.added, report.rejected, report.suppressed) == (3, 1, 1)
    assert report.errors["invalid_destination"] == 1
    error_class, message = rejected(warehouse, export.name)[DAVE]
    assert error_class == "invalid_destination"
    assert "export 'vip_list'" in message and DAVE in message and "'bad name!'" in message
    assert "list name" in message
    paths = sorted(c["path"] for c in emulator.store.api_calls("mergeListMembers"))
    assert paths == [f"/rest/api/v1.3/lists/{name}/members" for name in sorted(LISTS)]
    assert batch_destinations(warehouse, export.name) == {f'{{"list": "{name}"}}' for name in LISTS}

    again = run(warehouse, client, export)
    assert (again.pending, again.api_calls, again.rejected) == (0, 0, 0)
    assert len(rejected(warehouse, export.name)) == 1  # refused once, not on every run

    # Alice's profile now names VIP_B, then she leaves: the exit clears her where she was put.
    aim(warehouse, r101="VIP_B")
    add_change(warehouse, AUDIENCE, ALICE, "EXIT")
    report = run(warehouse, client, export)
    assert report.ok and report.removed == 1
    assert flagged(emulator, "VIP_A") == set() and flagged(emulator, "VIP_B") == {102}


def test_more_than_a_batch_per_destination_is_split_per_destination(emulator, client, warehouse):
    aim(warehouse, r101="VIP_A", r102="VIP_B", r103="VIP_A", r104="VIP_A")
    report = run(warehouse, client, _list_export(), batch_size=2)
    assert report.ok and report.batches == 3  # VIP_A: 2 + 1, VIP_B: 1
    calls = [c["records"] for c in emulator.store.api_calls("mergeListMembers")]
    assert sorted(calls) == [1, 1, 2]
    assert flagged(emulator, "VIP_A") == {101, 103, 104}


class KilledAfterSending(BaseException):
    """Stands in for SIGKILL right after the request reached Responsys."""


def test_a_merge_killed_mid_call_is_resent_to_the_same_list(emulator, client, warehouse):
    aim(warehouse, r101="VIP_A", r102="VIP_B")
    export = _list_export()
    real = client.merge_list_members

    def die_after_vip_a(list_name, *args, **kwargs):
        results = real(list_name, *args, **kwargs)
        if list_name == "VIP_A":
            raise KilledAfterSending
        return results

    client.merge_list_members = die_after_vip_a
    with pytest.raises(KilledAfterSending):
        run(warehouse, client, export)
    client.merge_list_members = real

    aim(warehouse, r101="VIP_B")  # the interrupted merge must not follow the profile
    resumed = run(warehouse, client, export)
    assert resumed.ok and resumed.recovered == 1 and resumed.added == 4
    assert flagged(emulator, "VIP_A") == {101}
    assert flagged(emulator, "VIP_B") == {102}
    merges = [c["path"].split("/")[-2] for c in emulator.store.api_calls("mergeListMembers")]
    assert merges.count("VIP_A") == 2  # the kill, then the resend


# --------------------------------------------------------------------------- campaigns


def test_campaigns_per_member_and_a_resend_keeps_the_destination(emulator, client, warehouse):
    aim(warehouse, r101="Welcome_A", r102="Welcome_B")
    export = CampaignTriggerExport(
        type="campaign_trigger",
        name="welcome",
        audience=AUDIENCE,
        campaign="Welcome",
        list=LIST,
        folder=FOLDER,
        backfill=True,
        merge_rule=RULE,
        destination_override={"campaign": "engagement_bucket"},
    )
    real = client.merge_trigger_email

    def die_after_welcome_b(campaign, *args, **kwargs):
        results = real(campaign, *args, **kwargs)
        if campaign == "Welcome_B":
            raise KilledAfterSending
        return results

    client.merge_trigger_email = die_after_welcome_b
    with pytest.raises(KilledAfterSending):
        run(warehouse, client, export)
    client.merge_trigger_email = real
    assert (sends(emulator, "Welcome_A"), sends(emulator, "Welcome_B")) == ([101], [102])
    assert sends(emulator, "Welcome") == []  # the kill came first

    # Bob's profile now names Welcome_A; his parked batch must still go to Welcome_B.
    aim(warehouse, r102="Welcome_A")
    resumed = run(warehouse, client, export)
    assert resumed.recovered == 1 and resumed.triggered == 2  # Carol and Dave: Welcome
    assert sends(emulator, "Welcome") == [103, 104]
    assert sends(emulator, "Welcome_B") == [102], "an unknown outcome is never resent by itself"
    (parked,) = ledger.unknown_batches(conn=warehouse, export=export.name)

    assert ledger.release(warehouse, export.name, parked[1], resend=True)  # operator decision
    run(warehouse, client, export)
    assert sends(emulator, "Welcome_B") == [102, 102]
    assert sends(emulator, "Welcome_A") == [101]
    run(warehouse, client, export)
    assert sends(emulator, "Welcome_B") == [102, 102]


# --------------------------------------------------------------------------- PETs and tables


def test_pets_created_per_destination_and_an_unknown_merge_resent_to_the_same_pet(
    emulator, client, warehouse
):
    aim(warehouse, r101="PET_A", r102="PET_B", r103="PET_A", r104="PET_B")
    export = PetExport(
        type="pet",
        name="vip_pet",
        audience=AUDIENCE,
        list=LIST,
        folder="Pets",
        pet="VIP_PET",
        fields={"RECENCY": "recency_score"},
        destination_override={"pet": "engagement_bucket"},
    )
    emulator.faults.inject("drop_after_send", api="mergePetMembers")  # PET_A's merge: no answer
    first = run(warehouse, client, export)
    assert first.batches_unknown == 1 and first.added == 2
    assert sorted(p["name"] for p in emulator.store.pets(LIST)) == ["PET_A", "PET_B"]
    assert len(emulator.store.api_calls("createPet")) == 2  # each created once, VIP_PET never

    aim(warehouse, r101="PET_B", r103="PET_B")  # the resend must not follow the profile
    second = run(warehouse, client, export)
    assert second.ok and second.added == 2
    rows = {
        pet: sorted(r["riid"] for r in emulator.store.pet_rows(LIST, pet))
        for pet in ("PET_A", "PET_B")
    }
    assert rows == {"PET_A": [101, 103], "PET_B": [102, 104]}


def test_supplemental_tables_created_per_folder_and_table(emulator, client, warehouse):
    aim(warehouse, r101="ROWS_A", r102="ROWS_B")
    export = SupplementalTableExport(
        type="supplemental_table",
        name="vip_supp",
        audience=AUDIENCE,
        folder="Supp",
        table="ROWS",
        destination_override={"table": "engagement_bucket", "folder": "customer_id"},
    )
    warehouse.execute("update audiences.profiles set customer_id = 'Supp B' where riid = 102")
    report = run(warehouse, client, export)
    assert report.ok, report.stopped_by
    tables = {
        (folder, table): sorted(
            r["fields"]["RIID"] for r in emulator.store.supp_rows(folder, table)
        )
        for folder, table in (("Supp", "ROWS_A"), ("Supp B", "ROWS_B"), ("Supp", "ROWS"))
    }
    assert tables == {
        ("Supp", "ROWS_A"): ["101"],
        ("Supp B", "ROWS_B"): ["102"],
        ("Supp", "ROWS"): ["103", "104"],
    }


# --------------------------------------------------------------------------- custom events


def _event_export(**overrides) -> CustomEventExport:
    settings = dict(
        type="custom_event",
        name="vip_event",
        audience=AUDIENCE,
        event="AUDIENCE_CHANGED",
        list=LIST,
        folder=FOLDER,
        properties={"SCORE": "recency_score"},
        send_updates=True,
    )
    return CustomEventExport(**(settings | overrides))


def events(emulator, event: str = "AUDIENCE_CHANGED") -> list[tuple[int, str, str]]:
    """(riid, callType, SCORE) of every event raised."""
    out = []
    for e in emulator.store.custom_events(event):
        data = {pair["name"]: pair["value"] for pair in e["optional_data"]}
        out.append((e["riid"], data["callType"], data.get("SCORE")))
    return out


def score(conn, key: str, value: int) -> None:
    conn.execute(
        "update audiences.scores set recency_score = ? where contact_key = ?", [value, key]
    )


def test_update_sent_once_when_a_property_changes(emulator, client, warehouse):
    export = _event_export()
    assert run(warehouse, client, export).added == 4
    added = events(emulator)
    assert sorted(added) == [(r, "ADD", str(r - 50)) for r in (101, 102, 103, 104)]

    unchanged = run(warehouse, client, export)
    assert (unchanged.pending, unchanged.api_calls) == (0, 0)

    score(warehouse, ALICE, 99)
    score(warehouse, BOB, 52)  # 102 - 50: the value already sent
    changed = run(warehouse, client, export)
    assert changed.ok and (changed.pending, changed.added, changed.api_calls) == (1, 1, 1)
    assert events(emulator)[len(added) :] == [(101, "UPDATE", "99")]

    rerun = run(warehouse, client, export)
    assert (rerun.pending, rerun.api_calls) == (0, 0)
    assert len(events(emulator)) == 5

    # Exits still REMOVE; a member who left is never updated.
    add_change(warehouse, AUDIENCE, CAROL, "EXIT")
    score(warehouse, CAROL, 7)
    report = run(warehouse, client, export)
    assert report.removed == 1 and report.added == 0
    assert events(emulator)[-1] == (103, "REMOVE", "7")
    score(warehouse, CAROL, 8)
    assert run(warehouse, client, export).api_calls == 0


def test_no_update_for_a_suppressed_contact(emulator, client, warehouse):
    export = _event_export()
    run(warehouse, client, export)
    before = len(events(emulator))
    warehouse.execute(
        "update audiences.profiles set suppressed = true where contact_key = ?", [BOB]
    )
    score(warehouse, BOB, 1)
    report = run(warehouse, client, export)
    assert (report.suppressed, report.api_calls) == (1, 0)
    assert len(events(emulator)) == before
    again = run(warehouse, client, export)  # settled without a call: not counted every run
    assert (again.pending, again.suppressed, again.api_calls) == (0, 0, 0)
    assert 102 not in {riid for riid, call, _ in events(emulator) if call == "UPDATE"}


def test_updates_are_off_unless_asked_for(emulator, client, warehouse):
    settings = _event_export().model_dump(exclude={"send_updates"})
    export = CustomEventExport(**settings)  # the default
    run(warehouse, client, export)
    score(warehouse, ALICE, 99)
    report = run(warehouse, client, export)
    assert (report.pending, report.api_calls) == (0, 0)
    assert [call for _, call, _ in events(emulator)] == ["ADD"] * 4


def test_an_update_with_an_unknown_outcome_is_parked_not_resent(emulator, client, warehouse):
    export = _event_export()
    run(warehouse, client, export)
    score(warehouse, ALICE, 99)
    emulator.faults.inject("drop_after_send", api="customEvent")
    report = run(warehouse, client, export)
    assert report.batches_unknown == 1
    (parked,) = ledger.unknown_batches(warehouse, export.name)
    assert parked[1].startswith("update-")
    for _ in range(2):
        assert run(warehouse, client, export).api_calls == 0
    assert [e for e in events(emulator) if e[1] == "UPDATE"] == [(101, "UPDATE", "99")]

    score(warehouse, ALICE, 98)  # a newer value is new information: sent once
    assert run(warehouse, client, export).added == 1
    assert [e for e in events(emulator) if e[1] == "UPDATE"][-1] == (101, "UPDATE", "98")


def test_events_per_member_and_updates_follow_the_member(emulator, client, warehouse):
    aim(warehouse, r101="EVENT_A", r102="EVENT_B")
    export = _event_export(destination_override={"event": "engagement_bucket"})
    report = run(warehouse, client, export)
    assert report.ok and report.added == 4
    assert [r for r, _, _ in events(emulator, "EVENT_A")] == [101]
    assert [r for r, _, _ in events(emulator, "EVENT_B")] == [102]
    assert sorted(r for r, _, _ in events(emulator)) == [103, 104]

    aim(warehouse, r101="EVENT_B")
    score(warehouse, ALICE, 99)
    run(warehouse, client, export)
    assert events(emulator, "EVENT_A") == [(101, "ADD", "51"), (101, "UPDATE", "99")]
    assert [r for r, _, _ in events(emulator, "EVENT_B")] == [102]


# --------------------------------------------------------------------------- dry run and config


def test_dry_run_shows_each_records_destination(warehouse):
    aim(warehouse, r101="VIP_A", r104="x" * 31)
    report = run(warehouse, None, _list_export(), dry_run=True)
    planned = {row["contact_key"]: row for row in report.planned}
    assert planned[ALICE]["destination"] == {"list": "VIP_A"}
    assert planned[BOB]["destination"] == {"list": LIST}
    assert planned[DAVE]["action"] == "reject" and "31 characters" in planned[DAVE]["reason"]
    assert (report.added, report.rejected) == (3, 1)
    assert warehouse.execute("select count(*) from exports.ledger").fetchone()[0] == 0


def _config(override: str, export_type: str = "profile_list") -> str:
    extra = {
        "profile_list": "list: L\n    folder: F",
        "sftp_file": "remote_dir: /in",
    }[export_type]
    return f"""
exports:
  - name: e
    type: {export_type}
    audience: engaged
    {extra}
    destination_override: {override}
"""


def test_override_keys_and_columns_are_checked_when_the_config_loads():
    validate_project(parse_config(_config("{list: engagement_bucket}")))
    with pytest.raises(ConfigError, match="pet cannot be overridden in a profile_list export"):
        parse_config(_config("{pet: engagement_bucket}"))
    with pytest.raises(ConfigError, match="allowed: none"):
        parse_config(_config("{list: email}", "sftp_file"))
    with pytest.raises(ConfigError) as info:
        validate_project(parse_config(_config("{list: favourite_list}")))
    assert "destination_override.list reads profile column 'favourite_list'" in str(info.value)
