"""Throttling and every injectable fault, over real HTTP."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.sandbox.api.support import (
    LIST,
    V13,
    _start,
    assert_error,
    login,
    merge,
)


def test_rate_limit_triggers_after_configured_calls(tmp_path):
    server = _start(tmp_path, rate_limits={"getProfileExtensions": 3})
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
            token = login(http)
            codes = [
                http.get(
                    f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token}
                ).status_code
                for _ in range(5)
            ]
        assert codes == [200, 200, 200, 401, 401]
        calls = server.store.api_calls("getProfileExtensions")
        assert [c["error_code"] for c in calls].count("API_LIMIT_EXCEEDED") == 2
    finally:
        server.stop()


def test_fault_rate_limit_and_server_error(server, http, token):
    server.faults.inject("rate_limit", api="mergeListMembers")
    assert_error(merge(http, token, [["c1", "a@example.com", "A"]]), 401, "API_LIMIT_EXCEEDED")
    server.faults.inject("server_error", count=2)
    for _ in range(2):
        resp = merge(http, token, [["c1", "a@example.com", "A"]])
        assert resp.status_code == 503
        with pytest.raises(json.JSONDecodeError):
            resp.json()
    assert server.store.list_members(LIST) == []
    assert merge(http, token, [["c1", "a@example.com", "A"]]).status_code == 200


def test_fault_capacity_persists_for_its_window(server, http, token):
    server.faults.inject("capacity")
    auth = {"Authorization": token}
    first = http.get(f"{V13}/lists/{LIST}/listExtensions", headers=auth)
    assert_error(first, 401, "INTERNAL_CAPACITY_LIMIT_EXCEEDED")
    assert_error(
        merge(http, token, [["c1", "a@example.com", "A"]]), 401, "INTERNAL_CAPACITY_LIMIT_EXCEEDED"
    )
    time.sleep(0.6)
    assert http.get(f"{V13}/lists/{LIST}/listExtensions", headers=auth).status_code == 200


def test_fault_expired_token(server, http, token):
    server.faults.inject("expired_token")
    resp = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert_error(resp, 500, "UNEXPECTED_EXCEPTION")
    fresh = login(http)
    assert (
        http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": fresh}).status_code
        == 200
    )


def test_fault_slow(server, http, token):
    server.faults.inject("slow", delay_seconds=0.4, api="getProfileExtensions")
    started = time.monotonic()
    resp = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert resp.status_code == 200 and time.monotonic() - started >= 0.4


def test_fault_merge_failed_rows(server, http, token):
    server.faults.inject("merge_failed", record_indexes=[1, 2])
    rows = [[f"c{i}", f"u{i}@example.com", "N"] for i in range(4)]
    out = [r[0] for r in merge(http, token, rows).json()["recordData"]["records"]]
    assert out[0].isdigit() and out[3].isdigit()
    assert out[1].startswith("MERGEFAILED: Record 1 = ") and out[2].startswith(
        "MERGEFAILED: Record 2 = "
    )
    assert len(server.store.list_members(LIST)) == 2


def test_fault_drop_after_send_applies_the_write(server, http, token):
    server.faults.inject("drop_after_send", api="mergeListMembers")
    with pytest.raises(httpx.TransportError):
        merge(http, token, [["c1", "a@example.com", "A"]])
    assert [m["customer_id"] for m in server.store.list_members(LIST)] == ["c1"]
    assert server.store.api_calls("mergeListMembers")[-1]["error_code"] == "CONNECTION_DROPPED"


def test_payload_too_large_drops_the_connection(tmp_path):
    server = _start(tmp_path, max_body_bytes=50_000)
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
            token = login(http)
            rows = [[f"c{i}", f"u{i}@example.com", "x" * 400] for i in range(200)]
            with pytest.raises(httpx.TransportError):
                merge(http, token, rows)
        assert server.store.list_members(LIST) == []
    finally:
        server.stop()
