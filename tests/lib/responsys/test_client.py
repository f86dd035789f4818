"""ResponsysClient: refusals before any network, and behaviour against the sandbox emulator
(integration)."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from responsys_assets.lib.responsys import (
    CapacityLimitExceeded,
    InsecureEndpoint,
    InvalidCredentials,
    MergeRule,
    OutcomeUnknown,
    Recipient,
    RequestRejected,
    ResponsysClient,
    ResponsysThrottled,
    ResponsysUnavailable,
    classify,
)
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings

PASSWORD = "s3cret-Pa55word!"


def test_client_refuses_bad_batches_before_any_network():
    # Port 9 on loopback: nothing listens; a network call would fail differently.
    with ResponsysClient(endpoint="http://127.0.0.1:9", username="u", password=PASSWORD) as c:
        rule = MergeRule(match_column_1="CUSTOMER_ID_")
        with pytest.raises(ValueError, match="at most 200"):
            c.merge_list_members("L", ["CUSTOMER_ID_"], [[str(i)] for i in range(201)], rule)
        with pytest.raises(ValueError, match="record 1 has 1 values for 2"):
            c.merge_list_members("L", ["CUSTOMER_ID_", "CITY"], [["1", "x"], ["2"]], rule)
        with pytest.raises(ValueError, match="match column"):
            c.merge_list_members("L", ["EMAIL_ADDRESS_"], [["a@b.c"]], rule)
        with pytest.raises(ValueError, match="no trailing underscore"):
            c.merge_pet_members("L", "P", ["RIID_", "X"], [["1", "2"]], match_column_1="RIID_")
        with pytest.raises(ValueError, match="list key"):
            c.merge_pet_members("L", "P", ["X"], [["1"]])
        with pytest.raises(ValueError, match="at most 200"):
            c.delete_list_members("L", "c", [str(i) for i in range(201)])
        with pytest.raises(ValueError, match="at most 200"):
            c.trigger_email("C", [Recipient("L", "F", recipient_id=i) for i in range(201)])
        with pytest.raises(ValueError, match="bytes"):
            c.merge_list_members("L", ["CUSTOMER_ID_", "X"], [["1", "x" * 11_000_000]], rule)
        assert c.stats.snapshot()["calls_total"] == 0
        assert PASSWORD not in repr(c)


# =========================================================================== integration
# Against the sandbox emulator over 127.0.0.1 (real HTTP, real uvicorn server).


USER = "api_user"
LIST = "CONTACTS"
FOLDER = "Marketing"
RULE = MergeRule(match_column_1="CUSTOMER_ID_")


@pytest.fixture
def emulator(tmp_path):
    server = EmulatorServer(tmp_path / "api", EmulatorSettings(username=USER, password=PASSWORD))
    server.start()
    server.store.ensure_list(LIST, FOLDER)
    yield server
    server.stop()


def make_client(server: EmulatorServer, **kw) -> ResponsysClient:
    kw.setdefault("backoff_base_seconds", 0.05)
    kw.setdefault("throttle_backoff_seconds", 0.05)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("async_poll_seconds", 10.0)
    return ResponsysClient(endpoint=server.base_url, username=USER, password=PASSWORD, **kw)


def people(n: int, start: int = 0) -> list[list[str]]:
    return [[f"c{i}", f"person{i}@example.com", "Zürich"] for i in range(start, start + n)]


FIELDS = ["CUSTOMER_ID_", "EMAIL_ADDRESS_", "CITY_"]


def calls(server: EmulatorServer, api: str) -> list[dict]:
    return server.store.api_calls(api)


def test_login_merge_retrieve_delete(emulator):
    with make_client(emulator) as client:
        rows = client.merge_list_members(LIST, FIELDS, people(3), RULE)
        assert [r.ok for r in rows] == [True, True, True]
        assert all(isinstance(r.riid, int) for r in rows)
        assert client.api_endpoint == emulator.base_url
        member = client.retrieve_list_member(LIST, "c", "c1", ["CUSTOMER_ID_", "CITY_"])
        assert member == {"CUSTOMER_ID_": "c1", "CITY_": "Zürich"}
        assert client.retrieve_list_member(LIST, "c", "nobody", ["CUSTOMER_ID_"]) is None
        deleted = client.delete_list_members(LIST, "c", ["c0", "nobody"])
        assert deleted[0].ok and deleted[0].riid == rows[0].riid
        assert not deleted[1].ok and deleted[1].error_code == "RECIPIENT_NOT_FOUND"
        snap = client.stats.snapshot()
    assert {m["customer_id"] for m in emulator.store.list_members(LIST)} == {"c1", "c2"}
    login_calls = calls(emulator, "login")
    assert len(login_calls) == 1 and login_calls[0]["path"] == "/rest/api/v1.3/auth/token"
    assert all(PASSWORD not in c["path"] for c in emulator.store.api_calls())
    assert len(calls(emulator, "rateLimit")) == 1  # read once, then cached
    assert snap["calls"]["merge_list_members"] == 1
    assert snap["records_sent"]["merge_list_members"] == 3
    assert snap["errors"] == {"rejected_record": 1}  # the unknown id; "not found" is no error


class OffsetClock:
    """time.monotonic plus an offset the test moves forward, to reach the refresh age."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def test_token_refreshed_before_it_expires(emulator):
    clock = OffsetClock()
    with make_client(emulator, clock=clock) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        first_token = client._token
        clock.offset += 6001  # past the 100-minute refresh age, inside the 2-hour lifetime
        client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)
        assert client._token != first_token
        assert (client.stats.logins, client.stats.refreshes) == (1, 1)
    assert [c["status"] for c in calls(emulator, "login")] == [200, 200]
    assert [c["status"] for c in calls(emulator, "mergeListMembers")] == [200, 200]


def test_refused_refresh_falls_back_to_password_login(emulator):
    clock = OffsetClock()
    with make_client(emulator, clock=clock) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("expired_token")  # the refresh itself is refused now
        clock.offset += 6001
        assert client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)[0].ok
        assert (client.stats.logins, client.stats.refreshes) == (2, 0)
    assert [c["status"] for c in calls(emulator, "login")] == [200, 500, 200]


def test_ratelimit_failure_falls_back_to_defaults(emulator):
    emulator.faults.inject("server_error", count=3, api="rateLimit")
    with make_client(emulator, max_attempts=2) as client:
        assert client.merge_list_members(LIST, FIELDS, people(1), RULE)[0].ok
        assert client.rate_limits() == {}
        assert client.stats.errors == {"unavailable": 1}
    assert len(calls(emulator, "rateLimit")) == 2
    emulator.faults.clear()


def test_expired_token_logs_in_again_and_retries_once(emulator):
    with make_client(emulator) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("expired_token")
        rows = client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)
        assert rows[0].ok
        assert client.stats.logins == 2
    assert [c["status"] for c in calls(emulator, "mergeListMembers")] == [200, 500, 200]


def test_token_lifetime_expiry_is_recovered(tmp_path):
    settings = EmulatorSettings(username=USER, password=PASSWORD, token_lifetime_seconds=1)
    with EmulatorServer(tmp_path / "api", settings) as server:
        server.store.ensure_list(LIST, FOLDER)
        with make_client(server) as client:
            client.merge_list_members(LIST, FIELDS, people(1), RULE)
            time.sleep(1.2)
            assert client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)[0].ok
            assert client.stats.logins == 2


def test_throttle_backs_off_then_succeeds(emulator):
    with make_client(emulator) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("rate_limit", count=2, api="mergeListMembers")
        assert client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)[0].ok
        assert client.stats.throttled == 2 and client.stats.retries == 2
        emulator.faults.inject("rate_limit", count=10, api="mergeListMembers")
        with pytest.raises(ResponsysThrottled) as info:
            client.merge_list_members(LIST, FIELDS, people(1, 2), RULE)
        assert info.value.error_code == "API_LIMIT_EXCEEDED"
        assert client.stats.errors["throttled"] == 1
    emulator.faults.clear()


def test_capacity_limit_raises_at_once(emulator):
    with make_client(emulator) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("capacity")
        with pytest.raises(CapacityLimitExceeded) as info:
            client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)
        assert info.value.resume_after == 600
        assert classify(info.value) == "capacity"
        assert client.stats.retries == 0
    assert len(calls(emulator, "mergeListMembers")) == 2
    emulator.faults.clear()


def test_503_is_retried_then_gives_up(emulator):
    with make_client(emulator, max_attempts=3) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("server_error", count=2, api="mergeListMembers")
        assert client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)[0].ok
        assert client.stats.retries == 2
        emulator.faults.inject("server_error", count=5, api="mergeListMembers")
        with pytest.raises(ResponsysUnavailable) as info:
            client.merge_list_members(LIST, FIELDS, people(1, 2), RULE)
        assert info.value.http_status == 503
    emulator.faults.clear()


def test_slow_write_is_outcome_unknown_but_slow_read_is_retried(emulator):
    with make_client(emulator, timeout=0.5) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("slow", api="mergeListMembers", delay_seconds=1.5)
        with pytest.raises(OutcomeUnknown) as info:
            client.merge_list_members(LIST, FIELDS, people(2, 1), RULE)
        assert info.value.records == 2 and classify(info.value) == "unknown_outcome"
        emulator.faults.inject("slow", api="retrieveListMembers", delay_seconds=1.5)
        assert client.retrieve_list_member(LIST, "c", "c0", ["CUSTOMER_ID_"]) is not None
        assert client.stats.retries == 1
    deadline = time.monotonic() + 5
    while len(calls(emulator, "mergeListMembers")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Sent once, never resent: the emulator applied it after the client gave up waiting.
    assert len(calls(emulator, "mergeListMembers")) == 2
    assert len(emulator.store.list_members(LIST)) == 3


def test_connection_dropped_after_send_is_outcome_unknown(emulator):
    with make_client(emulator) as client:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
        emulator.faults.inject("drop_after_send", api="mergeListMembers")
        with pytest.raises(OutcomeUnknown):
            client.merge_list_members(LIST, FIELDS, people(1, 1), RULE)
    assert len(calls(emulator, "mergeListMembers")) == 2
    assert len(emulator.store.list_members(LIST)) == 2  # applied although no answer came


def test_mergefailed_rows_are_parsed(emulator):
    with make_client(emulator) as client:
        emulator.faults.inject("merge_failed", api="mergeListMembers", record_indexes=[1, 3])
        rows = client.merge_list_members(LIST, FIELDS, people(5), RULE)
        assert [r.ok for r in rows] == [True, False, True, False, True]
        assert rows[1].error_code == "INJECTED_FAILURE" and rows[1].riid is None
        assert rows[1].message.startswith("MERGEFAILED:")
        assert client.stats.records_failed["merge_list_members"] == 2


def test_async_submit_and_poll(emulator):
    with make_client(emulator) as client:
        rows = client.merge_list_members(LIST, FIELDS, people(4), RULE, async_mode=True)
        assert [r.ok for r in rows] == [True] * 4
        assert len(emulator.store.list_members(LIST)) == 4
        with pytest.raises(RequestRejected) as info:
            client.merge_list_members("NO_SUCH_LIST", FIELDS, people(1), RULE, async_mode=True)
        assert info.value.error_code == "LIST_NOT_FOUND"
    assert len(calls(emulator, "asyncMergeListMembers")) == 2
    polls = calls(emulator, "getAsyncResponse")
    assert 2 <= len(polls) <= 20 and all(p["status"] == 200 for p in polls)


def test_pet_round_trip(emulator):
    with make_client(emulator) as client:
        client.merge_list_members(LIST, FIELDS, people(2), RULE)
        client.create_pet(LIST, "VIP_PET", FOLDER, [("SCORE", "NUMBER"), ("TIER", "STR500")])
        pets = client.list_pets(LIST)
        assert [(p.name, p.folder) for p in pets] == [("VIP_PET", FOLDER)]
        assert ("TIER", "STR500") in pets[0].fields
        rows = client.merge_pet_members(
            LIST,
            "VIP_PET",
            ["CUSTOMER_ID_", "SCORE", "TIER"],
            [["c0", "9.5", "gold"], ["c1", "1", "tin"], ["ghost", "1", "x"]],
            match_column_1="CUSTOMER_ID",
        )
        assert [r.ok for r in rows] == [True, True, False]
        row = client.retrieve_pet_member(LIST, "VIP_PET", "c", "c0", ["TIER"])
        assert row is not None and row["TIER"] == "gold"
        deleted = client.delete_pet_members(LIST, "VIP_PET", "c", ["c1"])
        assert deleted[0].ok
    assert len(emulator.store.pet_rows(LIST, "VIP_PET")) == 1


def test_folder_and_supplemental_table(emulator):
    with make_client(emulator) as client:
        assert client.create_folder("Exports") is True
        assert client.create_folder("Exports") is False
        client.create_supplemental_table(
            "Exports", "ORDERS", [("ORDER_ID", "STR500"), ("AMOUNT", "NUMBER")], ["ORDER_ID"]
        )
        rows = client.merge_supplemental_rows(
            "Exports", "ORDERS", ["ORDER_ID", "AMOUNT"], [["o1", "10"], ["o2", "2.5"]]
        )
        assert [r.ok for r in rows] == [True, True]
        assert client.stats.errors == {}
    assert len(emulator.store.supp_rows("Exports", "ORDERS")) == 2


def test_email_triggers_and_custom_event(emulator):
    emulator.store.ensure_campaign("WELCOME", LIST)
    emulator.store.ensure_custom_event("VIP_ENTER")
    with make_client(emulator) as client:
        rows = client.merge_trigger_email(
            "WELCOME",
            LIST,
            FOLDER,
            FIELDS,
            people(2),
            [[("GREETING", "Grüezi €")], []],
            MergeRule(match_column_1="CUSTOMER_ID_", default_permission_status="OPTIN"),
        )
        assert [r.ok for r in rows] == [True, True]
        known = Recipient(LIST, FOLDER, customer_id="c0", optional_data=(("OFFER", "ü"),))
        unknown = Recipient(LIST, FOLDER, customer_id="nobody")
        rows = client.trigger_email("WELCOME", [known, unknown])
        assert rows[0].ok and not rows[1].ok and rows[1].riid is None
        rows = client.send_custom_event("VIP_ENTER", [known])
        assert rows[0].ok
        with pytest.raises(ValueError, match="system column"):
            client.merge_trigger_email(
                "WELCOME", LIST, FOLDER, FIELDS, people(1), [[("CITY_", "x")]], RULE
            )
    sends = emulator.store.email_sends("WELCOME")
    assert len(sends) == 3
    assert {"name": "GREETING", "value": "Grüezi €"} in sends[0]["optional_data"]
    assert len(emulator.store.custom_events("VIP_ENTER")) == 1


def test_wrong_password_is_invalid_credentials(emulator):
    wrong = "not-the-" + PASSWORD
    client = ResponsysClient(endpoint=emulator.base_url, username=USER, password=wrong)
    with client, pytest.raises(InvalidCredentials) as info:
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
    assert info.value.error_code == "INVALID_USER_NAME_PASSWORD"
    assert wrong not in str(info.value) and wrong not in repr(client)
    assert len(calls(emulator, "login")) == 1  # refused credentials are not retried


def test_http_endpoint_for_remote_host_is_refused():
    with pytest.raises(InsecureEndpoint, match="http://login2.responsys.net"):
        ResponsysClient(endpoint="http://login2.responsys.net", username=USER, password=PASSWORD)


class ToEmulator(httpx.HTTPTransport):
    """Carries requests for another host name to the emulator, keeping their Host header, so
    the emulator answers login with an endPoint on that host."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._target = httpx.URL(base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme="http", host=self._target.host, port=self._target.port
        )
        return super().handle_request(request)


def test_login_endpoint_outside_responsys_is_refused(emulator):
    transport = ToEmulator(emulator.base_url)
    client = ResponsysClient(
        endpoint="https://evil.example.com", username=USER, password=PASSWORD, transport=transport
    )
    with client, pytest.raises(InsecureEndpoint, match="not a Responsys host"):
        client.merge_list_members(LIST, FIELDS, people(1), RULE)
    assert [c["api"] for c in emulator.store.api_calls()] == ["login"]  # token never used


def test_secrets_and_emails_stay_out_of_errors_logs_and_repr(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    with make_client(emulator, max_attempts=2) as client:
        client.merge_list_members(LIST, FIELDS, people(2), RULE)
        tokens = {client._token}
        emulator.faults.inject("expired_token")
        client.merge_list_members(LIST, FIELDS, people(1, 2), RULE)
        tokens.add(client._token)
        for fault, kind in [
            ("rate_limit", ResponsysThrottled),
            ("server_error", ResponsysUnavailable),
        ]:
            emulator.faults.inject(fault, count=5, api="mergeListMembers")
            with pytest.raises(kind) as info:
                client.merge_list_members(LIST, FIELDS, people(1, 3), RULE)
            texts += [str(info.value), repr(info.value), str(info.value.detail)]
            emulator.faults.clear()
        with pytest.raises(RequestRejected) as info:
            client.merge_list_members("NO_SUCH_LIST", FIELDS, people(1), RULE)
        texts += [str(info.value), repr(client), repr(client.stats.snapshot())]
        # Retrieving by email puts the address in the URL, which httpx logs.
        assert client.retrieve_list_member(LIST, "e", "person0@example.com", ["RIID_"])
    bad = ResponsysClient(endpoint=emulator.base_url, username=USER, password=PASSWORD + "x")
    with bad, pytest.raises(InvalidCredentials) as info:
        bad.retrieve_list_member(LIST, "c", "c0", ["CUSTOMER_ID_"])
    texts += [str(info.value), repr(bad), caplog.text]
    blob = "\n".join(texts)
    assert len(tokens) == 2 and None not in tokens
    for secret in [PASSWORD, *tokens]:
        assert secret not in blob
    assert "@example.com" not in caplog.text and "%40example.com" not in caplog.text
    assert "[email]" in caplog.text
    assert "merge_list_members" in caplog.text  # the log does say what happened


def test_pacing_stays_under_the_limit_and_uses_90_percent(tmp_path):
    # The same arithmetic as Responsys' per-minute windows, on a 6-second window so it runs fast.
    window = 6.0
    limits = {**EmulatorSettings(USER, PASSWORD).rate_limits, "mergeListMembers": 60}
    settings = EmulatorSettings(
        username=USER, password=PASSWORD, rate_limits=limits, rate_window_seconds=window
    )
    with EmulatorServer(tmp_path / "api", settings) as server:
        server.store.ensure_list(LIST, FOLDER)
        with make_client(server, rate_window_seconds=window) as client:
            client.rate_limits()  # login + ratelimit before the clock starts
            started = time.monotonic()
            for i in range(130):
                assert client.merge_list_members(LIST, FIELDS, people(1, i), RULE)[0].ok
            elapsed = time.monotonic() - started
            assert client.stats.throttled == 0
        merges = calls(server, "mergeListMembers")
    assert len(merges) == 130
    assert all(c["error_code"] is None for c in merges)
    achieved_per_window = 130 / (elapsed / window)
    assert achieved_per_window >= 0.9 * 60, f"{achieved_per_window:.1f}/window in {elapsed:.1f}s"
