"""The Retrieve APIs (profile list members, PET rows, supplemental rows) through the real client
against the emulator over HTTP: documented request and answer shapes, not-found answers, the
150-character `fs` limit, and pacing under the Retrieve APIs' own low limits."""

from __future__ import annotations

import time

import httpx
import pytest

from responsys_assets.lib.responsys import (
    MergeRule,
    RequestRejected,
    ResponsysClient,
)
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings

USER, PASSWORD = "retrieve_user", "Retrieve-Pa55!"
LIST, FOLDER, PET, TABLE = "CONTACTS", "Marketing", "Scores", "Clicks"
RULE = MergeRule(match_column_1="CUSTOMER_ID_")


def make_client(server: EmulatorServer, **kw) -> ResponsysClient:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("backoff_base_seconds", 0.05)
    return ResponsysClient(endpoint=server.base_url, username=USER, password=PASSWORD, **kw)


@pytest.fixture
def server(tmp_path):
    with EmulatorServer(tmp_path / "api", EmulatorSettings(USER, PASSWORD)) as server:
        server.store.ensure_folder(FOLDER)
        server.store.ensure_list(LIST, FOLDER)
        yield server


@pytest.fixture
def client(server):
    with make_client(server) as client:
        rows = client.merge_list_members(
            LIST,
            ["CUSTOMER_ID_", "EMAIL_ADDRESS_", "CITY_"],
            [["c1", "ann@example.com", "Lyon"], ["c2", "ben@example.com", None]],
            RULE,
        )
        client.riids = [r.riid for r in rows]
        yield client


def raw_get(server: EmulatorServer, client: ResponsysClient, path: str, params) -> httpx.Response:
    """A request as Oracle documents it, without the client (to see the emulator's answer)."""
    token = client._token  # the client logged in already; no secret leaves the test
    return httpx.get(
        f"{server.base_url}/rest/api/v1.3{path}",
        params=params,
        headers={"Authorization": token or ""},
        timeout=5.0,
    )


def test_list_member_by_riid_customer_id_and_email(server, client):
    riid = client.riids[0]
    by_riid = client.retrieve_list_member(LIST, "r", str(riid), ["RIID_", "CITY_"])
    assert by_riid == {"RIID_": str(riid), "CITY_": "Lyon"}
    by_customer = client.retrieve_list_member(LIST, "c", "c2", ["CUSTOMER_ID_", "CITY_"])
    assert by_customer == {"CUSTOMER_ID_": "c2", "CITY_": None}  # empty comes back as null
    by_email = client.retrieve_list_member(LIST, "e", "ann@example.com", ["RIID_"])
    assert by_email == {"RIID_": str(riid)}
    assert client.retrieve_list_member(LIST, "r", "999999", ["RIID_"]) is None
    answer = raw_get(
        server, client, f"/lists/{LIST}/members", {"qa": "r", "id": "999999", "fs": "RIID_"}
    )
    assert answer.status_code == 404
    assert answer.json()["errorCode"] == "RECIPIENT_NOT_FOUND"
    assert set(answer.json()) == {"type", "title", "errorCode", "detail", "errorDetails"}


def test_unknown_list_is_an_error_not_a_missing_member(client):
    with pytest.raises(RequestRejected) as caught:
        client.retrieve_list_member("NO_SUCH_LIST", "r", "1", ["RIID_"])
    assert caught.value.error_code == "LIST_NOT_FOUND"


def test_pet_row_by_riid(server, client):
    client.create_pet(LIST, PET, FOLDER, [("RECENCY", "STR500")])
    riid = str(client.riids[0])
    assert client.merge_pet_members(LIST, PET, ["RIID_", "RECENCY"], [[riid, "90"]])[0].ok
    assert client.retrieve_pet_member(LIST, PET, "r", riid, ["RIID_", "RECENCY"]) == {
        "RIID_": riid,
        "RECENCY": "90",
    }
    other = str(client.riids[1])  # a list member without a PET row
    assert client.retrieve_pet_member(LIST, PET, "r", other, ["RECENCY"]) is None


def test_supplemental_row_by_composite_primary_key(server, client):
    client.create_supplemental_table(
        FOLDER,
        TABLE,
        [("RIID", "STR500"), ("CAMPAIGN_ID", "STR500"), ("Clicks", "STR500")],
        ["RIID", "CAMPAIGN_ID"],
    )
    rows = client.merge_supplemental_rows(
        FOLDER, TABLE, ["RIID", "CAMPAIGN_ID", "Clicks"], [["7", "spring", "3"], ["7", "fall", "1"]]
    )
    assert all(r.ok for r in rows)
    key = [("RIID", "7"), ("CAMPAIGN_ID", "fall")]
    assert client.retrieve_supplemental_row(FOLDER, TABLE, key, ["RIID", "Clicks"]) == {
        "RIID": "7",
        "Clicks": "1",
    }
    assert (
        client.retrieve_supplemental_row(
            FOLDER, TABLE, [("RIID", "7"), ("CAMPAIGN_ID", "winter")], ["Clicks"]
        )
        is None
    )
    # The documented request: every primary-key column as a repeated qa, ids in the same order.
    answer = raw_get(
        server,
        client,
        f"/folders/{FOLDER}/suppData/{TABLE}/members",
        [("qa", "CAMPAIGN_ID"), ("qa", "RIID"), ("id", "spring"), ("id", "7"), ("fs", "all")],
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["recordData"]["fieldNames"] == ["RIID", "CAMPAIGN_ID", "Clicks"]
    assert body["recordData"]["records"] == [["7", "spring", "3"]]
    assert body["insertOnNoMatch"] is False and body["updateOnMatch"] is None
    # Names are case-sensitive, and every primary-key column is required.
    with pytest.raises(RequestRejected) as caught:
        client.retrieve_supplemental_row(FOLDER, TABLE, key, ["clicks"])
    assert caught.value.error_code == "INVALID_PARAMETER"
    with pytest.raises(RequestRejected):
        client.retrieve_supplemental_row(FOLDER, TABLE, [("RIID", "7")], ["Clicks"])
    missing = raw_get(
        server,
        client,
        f"/folders/{FOLDER}/suppData/{TABLE}/members",
        [("qa", "RIID"), ("qa", "CAMPAIGN_ID"), ("id", "8"), ("id", "x"), ("fs", "Clicks")],
    )
    assert missing.status_code == 404 and missing.json()["errorCode"] == "RECORD_NOT_FOUND"


def test_field_selection_over_150_characters(server, client):
    names = [f"FIELD_NUMBER_{i:02d}" for i in range(12)]  # 12 x 15 characters + commas
    assert len(",".join(names)) > 150
    answer = raw_get(
        server, client, f"/lists/{LIST}/members", {"qa": "c", "id": "c1", "fs": ",".join(names)}
    )
    assert answer.status_code == 400 and answer.json()["errorCode"] == "INVALID_PARAMETER"
    # The client asks for `all` instead and picks nothing out itself: the caller gets every field.
    member = client.retrieve_list_member(LIST, "c", "c1", [*names, "CITY_"])
    assert member["CITY_"] == "Lyon" and member["CUSTOMER_ID_"] == "c1"
    assert server.store.api_calls("retrieveListMembers")[-1]["error_code"] is None


def test_ratelimit_lists_every_retrieve_api(server, client):
    limits = client.rate_limits()
    assert limits["GET /lists/{}/members"] == 100
    assert limits["GET /lists/{}/listextensions/{}/members"] == 100
    assert limits["GET /folders/{}/suppdata/{}/members"] == 100


def test_retrieves_are_paced_under_their_own_low_limit(tmp_path):
    """Retrieve budget 5 per 2-second window: 12 reads take more than two windows and none is
    refused; merges (limit 1000) are not slowed by it."""
    window = 2.0
    limits = {**EmulatorSettings(USER, PASSWORD).rate_limits, "retrieveListMembers": 5}
    settings = EmulatorSettings(USER, PASSWORD, rate_limits=limits, rate_window_seconds=window)
    with EmulatorServer(tmp_path / "api", settings) as server:
        server.store.ensure_list(LIST, FOLDER)
        with make_client(server, rate_window_seconds=window) as client:
            client.merge_list_members(LIST, ["CUSTOMER_ID_"], [["c1"]], RULE)
            started = time.monotonic()
            for _ in range(12):
                assert client.retrieve_list_member(LIST, "c", "c1", ["CUSTOMER_ID_"])
            elapsed = time.monotonic() - started
            assert client.stats.throttled == 0
        reads = server.store.api_calls("retrieveListMembers")
    assert len(reads) == 12 and all(r["error_code"] is None for r in reads)
    assert elapsed >= 2 * window * 0.9, f"12 reads at 5/window took only {elapsed:.1f}s"
